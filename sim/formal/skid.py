"""A two-entry stream skid buffer and its proof: the runner's own known-good (and mutable) design."""

from __future__ import annotations

from amaranth.asserts import AnySeq
from amaranth.hdl import Assert, Assume, Cat, Cover, Module, ResetSignal, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from supernode.rtl.errors import UserError

from .harness import Harness
from .properties import stream_contract, valid_independent_of_ready
from .runner import StructuralCheck

__all__ = ["SkidBuffer", "SkidBufferHarness", "FAULTS"]

#: Deliberate design errors for the mutation tests: the proof must catch each one.
#: ``"overwrite_when_stalled"``: the output register takes new data while stalled;
#: ``"valid_from_ready"``: the output ``valid`` is gated by ``ready`` (valid waits for ready);
#: ``"drop_when_full"``: an input beat is accepted while both entries are full and lost.
FAULTS = ("overwrite_when_stalled", "valid_from_ready", "drop_when_full")


def _check_params(owner, width, fault):
    """Refuse bad parameters."""
    bad = None
    if not isinstance(width, int) or isinstance(width, bool) or not 1 <= width <= 64:
        bad = f"width must be an integer from 1 to 64, not {width!r}"
    elif fault is not None and fault not in FAULTS:
        bad = f"fault must be None or one of {', '.join(FAULTS)}, not {fault!r}"
    if bad:
        raise UserError(bad)


class SkidBuffer(wiring.Component):
    """A registered stream stage with one skid entry: full throughput, no ready path.

    Parameters
    ----------
    width : int
        Payload width in bits.
    fault : str or None
        One of :data:`FAULTS` to build a broken variant (for mutation tests), or None.

    Members
    -------
    i : In(stream.Signature(width))
        Input stream.
    o : Out(stream.Signature(width))
        Output stream.
    out_valid, out_data, skid_valid, skid_data : Signal
        The two entries (for the proof's invariants).
    """

    def __init__(self, *, width: int = 4, fault: str | None = None) -> None:
        _check_params(self, width, fault)
        self._width, self._fault = width, fault
        super().__init__({"i": In(stream.Signature(width)), "o": Out(stream.Signature(width))})
        self.skid_valid = Signal()
        self.skid_data = Signal(width)

    width = property(lambda self: self._width)
    fault = property(lambda self: self._fault)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        out_valid = Signal()
        out_data = Signal(self._width)
        if self._fault == "valid_from_ready":
            m.d.comb += self.o.valid.eq(out_valid & self.o.ready)
        else:
            m.d.comb += self.o.valid.eq(out_valid)
        m.d.comb += [self.o.payload.eq(out_data)]
        if self._fault == "drop_when_full":
            m.d.comb += self.i.ready.eq(1)
        else:
            m.d.comb += self.i.ready.eq(~self.skid_valid)

        accept = self.i.valid & self.i.ready
        with m.If(~out_valid | self.o.ready):
            # The output register is free (or being emptied): fill it from the skid entry
            # first, then from the input.
            with m.If(self.skid_valid):
                m.d.sync += [out_valid.eq(1), out_data.eq(self.skid_data),
                             self.skid_valid.eq(accept)]
                with m.If(accept):
                    m.d.sync += self.skid_data.eq(self.i.payload)
            with m.Else():
                m.d.sync += [out_valid.eq(accept), out_data.eq(self.i.payload)]
        with m.Else():
            with m.If(accept):
                m.d.sync += [self.skid_valid.eq(1), self.skid_data.eq(self.i.payload)]
                if self._fault == "overwrite_when_stalled":
                    m.d.sync += out_data.eq(self.i.payload)
        self.out_valid, self.out_data = out_valid, out_data
        return m


class SkidBufferHarness(Harness):
    """Proof of :class:`SkidBuffer` against a two-entry reference queue.

    Proves: the output keeps the stream contract (the input's is assumed); ``o.valid``
    does not depend on ``o.ready``; every beat leaves once, in order, with its payload
    (the output equals the head of a reference queue fed by the accepted input beats);
    no beat is created. Covers: both entries full, a stalled output, back-to-back beats.
    """

    kind = "skid_buffer"
    default_depth = 4
    cover_depth = 6

    def __init__(self, *, width: int = 4, fault: str | None = None) -> None:
        _check_params(self, width, fault)
        super().__init__(width=width, fault=fault)

    def design(self) -> SkidBuffer:
        return SkidBuffer(width=self.params["width"], fault=self.params["fault"])

    def structural_checks(self) -> list[StructuralCheck]:
        return [valid_independent_of_ready(self.design, "o")]

    def elaborate(self, platform: object) -> Module:
        m = Module()
        width = self.params["width"]
        m.submodules.dut = dut = self.design()
        m.d.comb += [
            dut.i.valid.eq(AnySeq(1)), dut.i.payload.eq(AnySeq(width)),
            dut.o.ready.eq(AnySeq(1)),
            Assume(~ResetSignal()),
        ]
        stream_contract(m, dut.i, name="i", role="assume")
        stream_contract(m, dut.o, name="o", role="assert")

        # Reference queue: entries ``ref[0]`` (head) and ``ref[1]``, ``count`` of them.
        ref = [Signal(width, name=f"ref{n}") for n in range(2)]
        count = Signal(range(3))
        push = dut.i.valid & dut.i.ready
        pop = dut.o.valid & dut.o.ready
        m.d.comb += [
            Assert(count <= 2, "no more than two beats held"),
            Assert(dut.o.valid == (count != 0), "o.valid when a beat is held"),
            Assert(~dut.o.valid | (dut.o.payload == ref[0]), "beats leave in order, intact"),
            Assert(~push | (count != 2) | pop, "no beat is accepted into a full buffer"),
            Assert(dut.skid_valid == (count == 2), "skid entry holds the second beat"),
            Assert(~dut.skid_valid | (dut.skid_data == ref[1]), "skid entry is the queue tail"),
        ]
        with m.Switch(Cat(pop, push)):
            with m.Case(0b10):
                m.d.sync += count.eq(count + 1)
                with m.If(count == 0):
                    m.d.sync += ref[0].eq(dut.i.payload)
                with m.Else():
                    m.d.sync += ref[1].eq(dut.i.payload)
            with m.Case(0b01):
                m.d.sync += [count.eq(count - 1), ref[0].eq(ref[1])]
            with m.Case(0b11):
                with m.If(count == 1):
                    m.d.sync += ref[0].eq(dut.i.payload)
                with m.Else():
                    m.d.sync += [ref[0].eq(ref[1]), ref[1].eq(dut.i.payload)]

        m.d.comb += [
            Cover(dut.skid_valid & dut.o.valid, "both entries full"),
            Cover(dut.o.valid & ~dut.o.ready, "output stalled"),
            Cover(pop & push & (count == 1), "back-to-back beats"),
        ]
        return m
