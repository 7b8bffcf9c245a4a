"""A small stream FIFO and its cocotb bench, which counts its own transfers and stalls."""

import random

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out


class StreamFIFO(wiring.Component):
    """A :class:`SyncFIFO` behind two stream ports, with a small occupancy FSM.

    Members
    -------
    i : In(stream.Signature(width))
        Words in.
    o : Out(stream.Signature(width))
        Words out, in order.
    """

    def __init__(self, *, width=8, depth=4):
        if not isinstance(width, int) or width <= 0:
            raise ValueError(f"width must be a positive integer, not {width!r}")
        if not isinstance(depth, int) or depth <= 0:
            raise ValueError(f"depth must be a positive integer, not {depth!r}")
        self._width, self._depth = width, depth
        super().__init__({"i": In(stream.Signature(width)), "o": Out(stream.Signature(width))})

    @property
    def width(self):
        return self._width

    @property
    def depth(self):
        return self._depth

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = fifo = SyncFIFO(width=self._width, depth=self._depth)
        m.d.comb += [
            fifo.w_data.eq(self.i.payload), fifo.w_en.eq(self.i.valid), self.i.ready.eq(fifo.w_rdy),
            self.o.payload.eq(fifo.r_data), self.o.valid.eq(fifo.r_rdy), fifo.r_en.eq(self.o.ready),
        ]
        busy_cycles = Signal(16)
        with m.FSM(name="occupancy"):
            with m.State("EMPTY"):
                with m.If(fifo.w_en & fifo.w_rdy):
                    m.next = "HOLDING"
            with m.State("HOLDING"):
                m.d.sync += busy_cycles.eq(busy_cycles + 1)
                with m.If(fifo.level == 0):
                    m.next = "EMPTY"
                with m.Elif(~fifo.w_rdy):
                    m.next = "FULL"
            with m.State("FULL"):
                with m.If(fifo.w_rdy):
                    m.next = "HOLDING"
        return m


try:  # the bench half is only needed inside the simulator
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge
    from cocotb.utils import get_sim_time
except ImportError:  # pragma: no cover
    cocotb = None


class _Counter:
    """Per-interface counts of one stream, sampled as the rising edge sees it."""

    def __init__(self):
        self.transfers = self.stalls = self.idle = 0

    def sample(self, valid, ready):
        if valid and ready:
            self.transfers += 1
        elif valid:
            self.stalls += 1
        else:
            self.idle += 1

    def as_dict(self):
        return {"transfers": self.transfers, "stalls": self.stalls, "idle": self.idle}


if cocotb is not None:
    @cocotb.test()
    async def fifo_counts(dut):
        """Push ``count`` words through the FIFO with random gaps and back-pressure."""
        from supernode.sim.runner import load_bench_inputs, write_bench_result

        params, inputs = load_bench_inputs()
        rng = random.Random(inputs["seed"])
        count, p_valid, p_ready = inputs["count"], inputs["p_valid"], inputs["p_ready"]
        mask = (1 << params["width"]) - 1
        dut.i__valid.value = 0
        dut.i__payload.value = 0
        dut.o__ready.value = 0
        dut.rst.value = 1
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        for _ in range(2):
            await RisingEdge(dut.clk)
        dut.rst.value = 0

        counters = {"i": _Counter(), "o": _Counter()}
        sent, received, cycles, in_valid = 0, [], 0, 0
        first_edge_ps = last_edge_ps = None
        while len(received) < count:
            if cycles > 50 * count + 100:
                raise AssertionError(f"FIFO hung: {len(received)} of {count} words after {cycles} cycles")
            # Drive for the coming edge; valid is held until the word is taken.
            if not in_valid and sent < count and rng.random() < p_valid:
                in_valid = 1
                dut.i__payload.value = sent & mask
            dut.i__valid.value = in_valid
            dut.o__ready.value = int(rng.random() < p_ready)
            # Sample what the next rising edge sees: everything is settled by the falling edge.
            await FallingEdge(dut.clk)
            await ReadOnly()
            iv, ir = int(dut.i__valid.value), int(dut.i__ready.value)
            ov, orr = int(dut.o__valid.value), int(dut.o__ready.value)
            word = int(dut.o__payload.value)
            await RisingEdge(dut.clk)
            last_edge_ps = get_sim_time("ps")
            first_edge_ps = last_edge_ps if first_edge_ps is None else first_edge_ps
            cycles += 1
            counters["i"].sample(iv, ir)
            counters["o"].sample(ov, orr)
            if iv and ir:
                sent += 1
                in_valid = 0
            if ov and orr:
                received.append(word)
        dut.i__valid.value = 0
        dut.o__ready.value = 0
        await RisingEdge(dut.clk)
        expected = [k & mask for k in range(count)]
        assert received == expected, f"FIFO reordered or lost words: {received[:8]}"
        write_bench_result({"cycles": cycles, "first_edge_ps": first_edge_ps,
                            "last_edge_ps": last_edge_ps, **{k: c.as_dict() for k, c in counters.items()}})
