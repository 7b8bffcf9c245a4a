"""A user's own cocotb bench for the Verilog of ``supernode tile export``.

Nothing here knows the tile's Amaranth source: the bench reads the interface description
written beside the Verilog (``systolic_tile.json``: ports, payload fields, timing), drives
the operand streams with the shipped :class:`supernode.sim.stream.StreamSource`, takes the results
with a :class:`supernode.sim.stream.StreamSink`, watches every stream with a
:class:`supernode.sim.stream.StreamMonitor`, and checks the GEMM against numpy.

Run it as any cocotb test, from this directory::

    supernode tile export --rows 2 --cols 3 --dataflow os --out build/systolic_tile.v
    SIM=icarus python test_tile_bench.py          # or: pytest test_tile_bench.py

``SIM``, ``WAVES=1``, ``TESTCASE`` and ``COCOTB_RANDOM_SEED`` work as cocotb's runner
defines them.
"""

import itertools
import os
import random
import subprocess
import sys
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles

from supernode.fabric.tile_model import (operand_beats, reference_gemm, result_row_count,
                               result_rows_to_matrix)
from supernode.sim.stream import PayloadLayout, StreamMonitor, StreamSink, StreamSource, load_interface

HERE = Path(__file__).resolve().parent
TOPLEVEL = "systolic_tile"

#: Idle (sources) and back-pressure (sink) patterns every GEMM is run under.
PAUSES = {
    "none": None,
    "periodic": lambda: itertools.cycle([0, 0, 1]),
    "random": lambda: (random.random() < 0.4 for _ in itertools.count()),
}


class TileBench:
    """Clock, reset, a source per operand stream, a sink for results, monitors on all three."""

    def __init__(self, dut, interface):
        self.dut = dut
        self.params = interface["parameters"]
        self.layouts = {name: PayloadLayout.of_stream(interface, name) for name in "abc"}
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        self.a = StreamSource(dut, "a", dut.clk, dut.rst)
        self.b = StreamSource(dut, "b", dut.clk, dut.rst)
        self.c = StreamSink(dut, "c", dut.clk, dut.rst)
        self.monitors = [StreamMonitor(dut, name, dut.clk, dut.rst) for name in "abc"]

    def set_pauses(self, pattern):
        make = PAUSES[pattern]
        for endpoint in (self.a, self.b, self.c):
            endpoint.set_pause_generator(make() if make else None)

    async def reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0

    async def gemm(self, A, B, timeout_cycles=2000):
        """Stream ``A @ B`` through the tile; the result as the tile computed it."""
        a, flags, b, folds = operand_beats(A, B, self.params)
        for values, (last, accumulate, emit) in zip(a, flags):
            # Fields the layout lacks (accumulate and emit, output-stationary) are ignored.
            self.a.send_nowait(self.layouts["a"].pack(
                {"data": values, "last": last, "accumulate": accumulate, "emit": emit}))
        for values in b:
            self.b.send_nowait(self.layouts["b"].pack({"data": values}))
        rows = []
        for _ in range(result_row_count(folds, self.params)):
            beat = self.layouts["c"].unpack(await self.c.recv(timeout_cycles=timeout_cycles))
            rows.append(beat["data"])
        await self.a.wait()
        await self.b.wait()
        for monitor in self.monitors:
            monitor.check()
        return result_rows_to_matrix(rows, folds, self.params, m=A.shape[0], n=B.shape[1])


def _operands(params, m, k, n):
    """Random operands from cocotb's seeded ``random`` (COCOTB_RANDOM_SEED reproduces them)."""
    rng = np.random.default_rng(random.getrandbits(32))
    width, signed = params["in_width"], params["signed"]
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
    return rng.integers(lo, hi + 1, (m, k)), rng.integers(lo, hi + 1, (k, n))


@cocotb.test()
@cocotb.parametrize(pauses=list(PAUSES))
async def random_gemm(dut, pauses):
    """A GEMM larger than the array, bit-exact, under each idle and back-pressure pattern."""
    bench = TileBench(dut, load_interface(os.environ["TILE_INTERFACE"]))
    await bench.reset()
    bench.set_pauses(pauses)
    params = bench.params
    A, B = _operands(params, params["rows"] * 2 + 1, 5, params["cols"] + 2)
    C = await bench.gemm(A, B)
    expected = reference_gemm(A, B, acc_width=params["acc_width"], signed=params["signed"])
    assert (C == expected).all(), f"C differs from numpy:\n{C}\nexpected\n{expected}"
    dut._log.info("GEMM %s x %s bit-exact with pauses %s; stalls per stream %s",
                  A.shape, B.shape, pauses, [m.stalls for m in bench.monitors])


def export(build_dir: Path, *, rows=2, cols=3, dataflow="os") -> Path:
    """Run ``supernode tile export`` as a user would; the Verilog file's path."""
    verilog = Path(build_dir) / f"{TOPLEVEL}.v"
    verilog.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "supernode", "tile", "export", "--rows", str(rows),
                    "--cols", str(cols), "--dataflow", dataflow, "--out", str(verilog)],
                   check=True)
    return verilog


def simulate(verilog: Path, interface: Path, *, sim=None, testcase=None):
    """Build ``verilog`` and run this module's cocotb tests on it with cocotb's own runner;
    the results file. ``TESTCASE`` chooses tests when ``testcase`` is not given."""
    from cocotb_tools.runner import get_runner
    from supernode.sim.runner import prepare_simulator

    sim = sim or os.environ.get("SIM", "icarus")
    prepare_simulator(sim)
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))          # the test module, for the simulator
    runner = get_runner(sim)
    sim_dir = Path(verilog).parent / sim
    runner.build(sources=[verilog], hdl_toplevel=TOPLEVEL, build_dir=sim_dir,
                 timescale=("1ns", "1ps"), build_args=["-Wno-fatal"] if sim == "verilator" else [])
    return runner.test(hdl_toplevel=TOPLEVEL, test_module="test_tile_bench", build_dir=sim_dir,
                       test_dir=sim_dir, timescale=("1ns", "1ps"),
                       testcase=testcase or os.environ.get("TESTCASE") or None,
                       extra_env={"TILE_INTERFACE": str(interface)})


def run(build_dir: Path, *, sim=None, rows=2, cols=3, dataflow="os", testcase=None):
    """Export the tile into ``build_dir`` and run the bench on it."""
    verilog = export(build_dir, rows=rows, cols=cols, dataflow=dataflow)
    return simulate(verilog, verilog.with_suffix(".json"), sim=sim, testcase=testcase)


def test_tile_bench(tmp_path):
    """pytest entry: the bench above on the exported tile."""
    run(tmp_path)


if __name__ == "__main__":
    run(HERE / "build")
