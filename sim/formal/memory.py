"""A register-array model of ``amaranth.lib.memory.Memory`` whose cells a proof can name."""

from __future__ import annotations

from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any

from amaranth.hdl import Array, Elaboratable, Module, ShapeLike, Signal

__all__ = ["RegisterMemory"]


class RegisterMemory(Elaboratable):
    """Same ports and timing as ``Memory`` (synchronous writes, combinational reads).

    A proof by induction needs invariants on what a buffer holds, and Amaranth gives no
    way to name a memory's contents in a property. A design that takes its memory class as
    a parameter (``Router(..., memory=RegisterMemory)``) is built with this model for a
    proof: it keeps every word in a named register (``cells``), which the harness reads.
    Synchronous read ports and write granularity are not modelled; asking for them is an
    error, not a silent difference.

    Members
    -------
    cells : list of Signal
        The words, index 0 first.
    """

    def __init__(self, *, shape: ShapeLike, depth: int, init: Iterable[Any] = (),
                 attrs: dict[str, Any] | None = None, src_loc_at: int = 0) -> None:
        self.shape, self.depth = shape, depth
        init = list(init)
        self.cells = [Signal(shape, name=f"formal_mem_{k}",
                             **({"init": init[k]} if k < len(init) else {}))
                      for k in range(depth)]
        self._reads: list[SimpleNamespace] = []
        self._writes: list[SimpleNamespace] = []

    def read_port(self, *, domain: str = "sync", transparent_for: Iterable[Any] = (),
                  src_loc_at: int = 0) -> SimpleNamespace:
        if domain != "comb":
            raise NotImplementedError("the proof's memory model has combinational read "
                                      f"ports only, not domain={domain!r}")
        port = SimpleNamespace(addr=Signal(range(self.depth)), data=Signal(self.shape))
        self._reads.append(port)
        return port

    def write_port(self, *, domain: str = "sync", granularity: int | None = None,
                   src_loc_at: int = 0) -> SimpleNamespace:
        if domain != "sync" or granularity is not None:
            raise NotImplementedError("the proof's memory model has whole-word synchronous "
                                      "write ports only")
        port = SimpleNamespace(addr=Signal(range(self.depth)), data=Signal(self.shape),
                               en=Signal())
        self._writes.append(port)
        return port

    def elaborate(self, platform: object) -> Module:
        m = Module()
        cells = Array(self.cells)
        for port in self._reads:
            m.d.comb += port.data.eq(cells[port.addr])
        for port in self._writes:
            with m.If(port.en):
                m.d.sync += cells[port.addr].eq(port.data)
        return m
