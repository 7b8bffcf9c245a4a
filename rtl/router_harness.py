"""Bench wrapper that packs every endpoint link of a router or fabric into two wide ports."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from amaranth import Cat, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .clos import Clos, ClosParams
from .router import Router, RouterParams

__all__ = ["PackedHarness", "PackedCodec", "make_top", "design_params"]


class PackedHarness(wiring.Component):
    """Wrap a component with ``inp``/``outp`` link arrays (and optionally ``cfg``) so that
    a bench moves a whole cycle with one write and one read.

    ``drive`` holds, from bit 0: per endpoint ``valid`` then the flit of its injection
    link; then per endpoint the credit pulses of its ejection link; then (if the design
    has one) the ``cfg`` port. ``status`` holds per endpoint ``valid`` and flit of its
    ejection link, then per endpoint the credit pulses of its injection link.
    :class:`PackedCodec` packs and unpacks these integers.

    Parameters
    ----------
    dut : wiring.Component
        A :class:`supernode.rtl.router.Router` or :class:`supernode.rtl.clos.Clos`.

    Members
    -------
    drive : In(...)
        Everything the bench drives.
    status : Out(...)
        Everything the bench observes.
    """

    def __init__(self, dut: Router | Clos) -> None:
        self._dut = dut
        codec = PackedCodec.of(dut.params)
        self.n, self.flit_bits, self.vcs = codec.n, codec.fb, codec.V
        self.cfg_fields = codec.cfg_fields
        self.cfg_bits = 0 if codec.cfg_fields is None else 1 + sum(codec.cfg_fields)
        super().__init__({
            "drive": In(self.n * (1 + self.flit_bits) + self.n * self.vcs + self.cfg_bits),
            "status": Out(self.n * (1 + self.flit_bits) + self.n * self.vcs),
        })

    @property
    def codec(self) -> "PackedCodec":
        """The Python packer for this harness."""
        return PackedCodec(n=self.n, flit_bits=self.flit_bits, vcs=self.vcs,
                           cfg_fields=self.cfg_fields)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.dut = dut = self._dut
        n, fb, V = self.n, self.flit_bits, self.vcs
        pos = 0
        for e in range(n):
            m.d.comb += [dut.inp[e].valid.eq(self.drive[pos]),
                         dut.inp[e].payload.eq(self.drive[pos + 1:pos + 1 + fb])]
            pos += 1 + fb
        for e in range(n):
            m.d.comb += dut.outp[e].credit.eq(self.drive[pos:pos + V])
            pos += V
        if self.cfg_bits:
            m.d.comb += Cat(dut.cfg.valid, dut.cfg.dest, dut.cfg.port).eq(
                self.drive[pos:pos + self.cfg_bits])
        m.d.comb += self.status.eq(Cat(
            *[Cat(dut.outp[e].valid, dut.outp[e].payload) for e in range(n)],
            *[dut.inp[e].credit for e in range(n)]))
        return m


class PackedCodec:
    """Python side of :class:`PackedHarness`: integers to and from per-endpoint values.

    Parameters
    ----------
    n : int
        Endpoints.
    flit_bits : int
        Bits of one flit.
    vcs : int
        Virtual channels (credit bits per link).
    cfg_fields : (int, int) or None
        Widths of the ``cfg`` ``dest`` and ``port`` fields, when the design has ``cfg``.
    """

    def __init__(self, *, n: int, flit_bits: int, vcs: int,
                 cfg_fields: tuple[int, int] | None = None) -> None:
        self.n, self.fb, self.V = n, flit_bits, vcs
        self.cfg_fields = cfg_fields
        self._stride = 1 + flit_bits
        self._fmask = (1 << flit_bits) - 1
        self._vmask = (1 << vcs) - 1
        self._credit_base = n * self._stride

    @classmethod
    def of(cls, params: "RouterParams | ClosParams") -> "PackedCodec":
        """The packer for the harness around a router or a Clos of these parameters."""
        if isinstance(params, RouterParams):
            return cls(n=params.ports, flit_bits=params.flit_layout.size, vcs=params.vcs,
                       cfg_fields=(params.dest_bits, params.port_bits))
        return cls(n=params.endpoints, flit_bits=params.flit_layout.size, vcs=params.vcs)

    def pack_drive(self, flits: Sequence[int | None], credits: Sequence[int],
                   cfg: tuple[int, int] | None = None) -> int:
        """``flits[e]`` (int or None) to inject, ``credits[e]`` pulses to return,
        ``cfg`` = ``(dest, port)`` to write one routing entry, or None."""
        value = 0
        stride = self._stride
        for e, f in enumerate(flits):
            if f is not None:
                value |= (1 | (f << 1)) << (e * stride)
        base = self._credit_base
        for e, c in enumerate(credits):
            if c:
                value |= c << (base + e * self.V)
        if cfg is not None:
            if self.cfg_fields is None:
                raise TypeError("a cfg write needs a design with a cfg port")
            dest, port = cfg
            dw, _ = self.cfg_fields
            value |= (1 | (dest << 1) | (port << (1 + dw))) << (base + self.n * self.V)
        return value

    def unpack_status(self, value: int) -> tuple[list[int | None], list[int]]:
        """``(flit int or None per endpoint, credit pulses per endpoint)``."""
        stride, fmask = self._stride, self._fmask
        flits = []
        for e in range(self.n):
            chunk = value >> (e * stride)
            flits.append((chunk >> 1) & fmask if chunk & 1 else None)
        base, V, vmask = self._credit_base, self.V, self._vmask
        credits = [(value >> (base + e * V)) & vmask for e in range(self.n)]
        return flits, credits


def design_params(design: str, **params: Any) -> "RouterParams | ClosParams":
    """The parameter object of a ``design`` (``"router"`` or ``"clos"``) given as keywords."""
    if design == "router":
        return RouterParams(**params)
    if design == "clos":
        return ClosParams.from_options(**params)
    raise ValueError(f"design must be 'router' or 'clos', not {design!r}")


def make_top(*, design: str, **params: Any) -> PackedHarness:
    """Factory for the runner: ``design`` is ``"router"`` or ``"clos"``."""
    p = design_params(design, **params)
    return PackedHarness(Router(p) if isinstance(p, RouterParams) else Clos(p))
