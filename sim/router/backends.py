"""Lock-step backends for the RTL behind the packed harness: cocotb and Amaranth's simulator."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from supernode.fabric.network.flit import Flit, FlitCodec

if TYPE_CHECKING:
    from amaranth.sim import SimulatorContext
    from cocotb.handle import HierarchyObject

    from supernode.rtl.router_harness import PackedHarness

    from .common import Design

__all__ = ["PackedBackend", "CocotbBackend", "AmaranthBackend"]


class PackedBackend:
    """The bench side of :class:`supernode.rtl.router_harness.PackedHarness`: one ``status`` read
    and one ``drive`` write per cycle, unpacked to and packed from per-endpoint flits
    and credits. A simulator's backend gives :meth:`read`, :meth:`write` and ``tick``.

    Parameters
    ----------
    design : supernode.sim.router.common.Design
        The design under test: its parameter object gives the harness's packing and the
        flit layout, so no harness is built to learn them.
    """

    def __init__(self, design: Design) -> None:
        self.codec = design.codec
        self.flits = FlitCodec(design.design_params.flit_layout)

    def observe(self) -> tuple[list[Flit | None], list[int]]:
        """``(flit at each ejection link, credit pulses at each injection link)``."""
        raw, credits = self.codec.unpack_status(self.read())
        unpack = self.flits.unpack
        return [None if f is None else unpack(f) for f in raw], credits

    def drive(self, inject: Sequence[Flit | None], credits: Sequence[int],
              cfg: tuple[int, int] | None = None) -> None:
        """Drive the flits, credit pulses and routing-table write ``(dest, port)`` of this
        cycle; the design samples them at the next rising edge."""
        pack = self.flits.pack
        self.write(self.codec.pack_drive([None if f is None else pack(f) for f in inject],
                                         credits, cfg))

    def read(self) -> int:
        raise NotImplementedError

    def write(self, value: int) -> None:
        raise NotImplementedError


class CocotbBackend(PackedBackend):
    """The harness under cocotb: exchanges at the falling edge of ``dut.clk``.

    Parameters
    ----------
    dut : cocotb handle
        The harness top level.
    design : supernode.sim.router.common.Design
    """

    def __init__(self, dut: HierarchyObject, design: Design) -> None:
        # Deferred: cocotb's triggers load only inside a running simulator.
        from cocotb.triggers import FallingEdge
        super().__init__(design)
        self.dut = dut
        self._falling = FallingEdge(dut.clk)

    def read(self) -> int:
        return self.dut.status.value.to_unsigned()

    def write(self, value: int) -> None:
        self.dut.drive.value = value

    async def tick(self) -> None:
        await self._falling


class AmaranthBackend(PackedBackend):
    """The harness in Amaranth's simulator, from a testbench's context ``ctx``.

    Parameters
    ----------
    ctx : amaranth.sim.SimulatorContext
    design : supernode.sim.router.common.Design
    top : PackedHarness
        The harness being simulated.
    """

    def __init__(self, ctx: SimulatorContext, design: Design, top: PackedHarness) -> None:
        super().__init__(design)
        self.ctx = ctx
        self.top = top

    def read(self) -> int:
        return self.ctx.get(self.top.status)

    def write(self, value: int) -> None:
        self.ctx.set(self.top.drive, value)

    async def tick(self) -> None:
        await self.ctx.tick()
