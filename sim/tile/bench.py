"""cocotb bench of the tile: load the harness, run one GEMM, score every row against numpy."""

import time

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge, with_timeout

from supernode.fabric.tile_model import expected_rows, operand_beats
from supernode.rtl.tile_params import TileParams
from supernode.sim.runner import CLOCK_PERIOD_NS, load_bench_inputs, start_clock, write_bench_result
from supernode.sim.tile.harness import COUNTERS
from supernode.sim.tile.packing import Packer

#: Cycles between two progress lines in the log of a long GEMM.
PROGRESS_CYCLES = 20_000


class TileBench:
    """Owns the clock, reset, stimulus memories, gap controls and the scoreboard."""

    def __init__(self, dut, params, inputs):
        self.dut = dut
        self.tile = TileParams(**{k: params[k] for k in TileParams.names()})
        self.packer = Packer(self.tile)
        self.A = np.array(inputs["A"], dtype=np.int64)
        self.B = np.array(inputs["B"], dtype=np.int64)
        self.gaps = inputs["gaps"]
        self.budget_cycles = inputs["budget_cycles"]
        # The harness generates its own clock (TileHarness(hdl_clock=True)), or the bench
        # runs it in cocotb's clock driver.
        self.hdl_clock = params.get("hdl_clock", False)
        self.log = dut._log

    async def reset(self):
        if not self.hdl_clock:
            start_clock(self.dut.clk)
        self.dut.rst.value = 1
        self.dut.start.value = 0
        await ClockCycles(self.dut.clk, 2)
        self.dut.rst.value = 0

    async def load(self):
        a, flags, b, self.folds = operand_beats(self.A, self.B, self.tile)
        for index, word in enumerate(self.packer.pack_a(a, flags)):
            self.dut.a_mem.mem[index].value = word
        for index, word in enumerate(self.packer.pack_b(b)):
            self.dut.b_mem.mem[index].value = word
        self.expected = expected_rows(self.A, self.B, self.folds, self.tile)
        self.dut.a_count.value = len(a)
        self.dut.b_count.value = len(b)
        self.dut.c_count.value = len(self.expected)
        for name in ("a", "b", "c"):
            gap = self.gaps[name]
            getattr(self.dut, f"{name}_pattern").value = sum(
                bit << i for i, bit in enumerate(gap["pattern"]))
            getattr(self.dut, f"{name}_period").value = len(gap["pattern"])
            getattr(self.dut, f"{name}_threshold").value = gap["threshold"]
            getattr(self.dut, f"{name}_seed").value = gap["seed"]
        # The simulator applies the words written above at the next edge (on Verilator
        # about 15 ms for the 4x4 benchmark's 32,000 words): part of loading, not of the
        # GEMM the bench times after it.
        await RisingEdge(self.dut.clk)

    async def run(self):
        self.dut.start.value = 1
        await RisingEdge(self.dut.clk)
        self.dut.start.value = 0
        waited = 0
        while True:
            # Waited for in slices, each ending with a line in the log: the runner shows
            # the newest one while a long GEMM runs.
            step = min(PROGRESS_CYCLES, self.budget_cycles - waited)
            try:
                await with_timeout(RisingEdge(self.dut.done), step * CLOCK_PERIOD_NS, "ns")
                break
            except cocotb.triggers.SimTimeoutError:
                waited += step
            rows = int(self.dut.c_rows.value)
            if waited >= self.budget_cycles:
                raise AssertionError(
                    f"timeout: {rows} of {len(self.expected)} result rows after "
                    f"{self.budget_cycles} cycles") from None
            self.log.info("%d of %d result rows after %d cycles", rows, len(self.expected),
                          waited)
        # The end of this time step: every counter as the edge that raised ``done`` left
        # it. (After the next clock edge, what a read sees would depend on whether the
        # clock edge came through cocotb, seen before the design reacts to it, or from the
        # HDL clock, inside Verilator's evaluation of it.)
        await ReadOnly()

    def score(self):
        """Compare every captured row with the reference; nothing may be left unmatched."""
        got = int(self.dut.c_rows.value)
        assert got == len(self.expected), \
            f"{got} result rows captured, {len(self.expected)} expected"
        rows = []
        for index, (values, last) in enumerate(self.expected):
            got_values, got_last = self.packer.unpack_c(int(self.dut.c_mem.mem[index].value))
            assert got_values == values, \
                f"result row {index}: got {got_values}, expected {values}"
            assert got_last == last, f"result row {index}: last is {got_last}, expected {last}"
            rows.append(got_values)
        return rows

    def counters(self):
        return {name: int(getattr(self.dut, name).value) for name in COUNTERS}


@cocotb.test()
async def gemm(dut):
    """One GEMM through the tile, every result bit-exact, cycles recorded."""
    params, inputs = load_bench_inputs()
    bench = TileBench(dut, params, inputs)
    await bench.reset()
    await bench.load()
    start, cpu = time.perf_counter(), time.process_time()
    await bench.run()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    rows = bench.score()
    # CPU seconds of the simulator process too: on a shared machine they measure the run
    # where the wall clock measures the load.
    write_bench_result({"rows": rows, "counters": bench.counters(), "run_wall_s": wall,
                        "run_cpu_s": cpu})


@cocotb.test()
async def clock_only(dut):
    """Reference point for speed: a cocotb loop that only awaits clock edges.

    The harness streams the same GEMM through the tile meanwhile, so the design is exactly
    as busy as in a ``gemm`` run (event-driven simulators slow down with activity); only
    the per-cycle Python differs.
    """
    params, inputs = load_bench_inputs()
    bench = TileBench(dut, params, inputs)
    await bench.reset()
    await bench.load()
    dut.start.value = 1
    await RisingEdge(dut.clk)
    dut.start.value = 0
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(inputs["cycles"]):
        await RisingEdge(dut.clk)
    write_bench_result({"cycles": inputs["cycles"], "wall_s": time.perf_counter() - start,
                        "cpu_s": time.process_time() - cpu})
