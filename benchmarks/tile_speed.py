"""Simulation speed of the tile bench against cocotb's own floor and a Python-free C++ loop.

For each array size and simulator it reports:
  build       seconds to elaborate and compile the design (harness included);
  bench       simulated cycles per wall-second of a GEMM run (the harness's own HDL clock,
              stimulus and capture in HDL, Python waiting on `done`), the faster of two
              runs;
  bench e2e   the same including simulator start-up, memory loading and scoring;
  clock-only  a cocotb coroutine that only awaits rising edges of the same clock (the
              floor of a bench with Python in every cycle);
  C++         (Verilator only) the same GEMM on the same Verilog (with a clock input
              instead of the HDL clock), built with the same C++ optimisation but without
              VPI or --timing, stepped from a small C++ main: the operand
              memories are loaded from `$readmemh` files and the loop runs until `done`;
              the fastest of three runs;
  C++ build   seconds to build that C++ loop (Verilator and the C++ compiler).
The rates are per wall-second, then (the CPU columns) per CPU-second of the simulator
process: on a shared machine the wall clock measures the load as much as the simulator.

Run: `make bench` or `.venv/bin/python benchmarks/tile_speed.py [--sizes 4 8 16] [--json FILE]`.
`--levels O0 O2` measures Verilator builds at several C++ optimisation levels in one run;
`--cocotb-clock` measures the bench with its clock in cocotb's driver instead.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from amaranth.hdl import Shape  # noqa: E402

from supernode.fabric.tile_model import expected_rows, operand_beats  # noqa: E402
from supernode.rtl.tile_params import as_tile_params  # noqa: E402
from supernode.sim.runner import (CXX_LEVELS, OPTIMIZED_LEVEL, TOPLEVEL, _setup_verilator_env,  # noqa: E402
                        export_verilog, run_cocotb, verilator_build_args)
from supernode.sim.tile.harness import TileHarness  # noqa: E402
from supernode.sim.tile.packing import Packer  # noqa: E402
from supernode.sim.tile.run import random_operands, run_gemm  # noqa: E402

CPP_MAIN = r"""
#include "Vtop.h"
#include "verilated.h"
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
// usage: Vbench A_BEATS B_BEATS C_ROWS BUDGET +a_mem=FILE +b_mem=FILE
static void tick(Vtop* top) { top->clk = 0; top->eval(); top->clk = 1; top->eval(); }
int main(int argc, char** argv) {
    Verilated::commandArgs(argc, argv);
    long budget = std::atol(argv[4]);
    Vtop* top = new Vtop;
    top->rst = 1; tick(top); tick(top); top->rst = 0;
    top->a_count = std::atol(argv[1]); top->b_count = std::atol(argv[2]);
    top->c_count = std::atol(argv[3]);
    top->start = 1; tick(top); top->start = 0;
    long cycles = 0;
    auto t0 = std::chrono::steady_clock::now();
    std::clock_t c0 = std::clock();
    while (!top->done && cycles < budget) { tick(top); cycles++; }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double cpu = double(std::clock() - c0) / CLOCKS_PER_SEC;
    std::printf("%ld %u %f %f\n", cycles, top->c_rows, s, cpu);
    delete top;
    return 0;
}
"""


def bench_gemm(size, sim, hdl_clock):
    m = n = 4 * size
    k = 1024
    params = {"rows": size, "cols": size, "dataflow": "os"}
    A, B = random_operands(m, k, n, in_width=8, signed=True, seed=1)
    start = time.perf_counter()
    first = run_gemm(params, A, B, sim=sim, seed=1, hdl_clock=hdl_clock)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    second = run_gemm(params, A, B, sim=sim, seed=2, hdl_clock=hdl_clock)
    warm = time.perf_counter() - start
    # The faster of the two runs' loops (the machine is shared); the C++ loop likewise.
    results = [json.loads((Path(run.run_dir) / "result.json").read_text())
               for run in (first, second)]
    run_wall_s = min(r["run_wall_s"] for r in results)
    run_cpu_s = min(r["run_cpu_s"] for r in results)
    cycles = first.counters["cycles"]
    return {
        "A": A, "B": B,
        "cycles": cycles, "build_s": max(cold - warm, 0.0), "build_and_run_s": cold,
        "bench_cycles_per_s": cycles / run_wall_s,
        "bench_cpu_cycles_per_s": cycles / run_cpu_s,
        "bench_e2e_cycles_per_s": cycles / warm,
        "depth": _depth_of(first),
        "params": first.params,
        "inputs": json.loads((Path(first.run_dir) / "inputs.json").read_text())["inputs"],
    }


def _depth_of(run):
    return json.loads((Path(run.run_dir) / "inputs.json").read_text())["params"]["depth"]


def bench_clock_only(size, sim, cycles, depth, params, inputs, hdl_clock):
    run = run_cocotb(kind="tile", component_factory=TileHarness,
                     params={**params, "depth": depth, "fault": None, "hdl_clock": hdl_clock},
                     test_module="supernode.sim.tile.bench", testcase="clock_only", hdl_clock=hdl_clock,
                     inputs={**inputs, "cycles": cycles}, sim=sim)
    return cycles / run.result["wall_s"], cycles / run.result["cpu_s"]


def bench_cpp(params, A, B, depth, level):
    """Build the bench's harness, with a clock input, and a C++ main at ``level``; run its
    GEMM until ``done``; returns ``(cycles per wall-second, cycles per CPU-second, build
    seconds)``, each rate the best of three runs."""
    _setup_verilator_env()
    tile = as_tile_params(params)
    packer = Packer(tile)
    a, flags, b, folds = operand_beats(A, B, tile)
    rows = len(expected_rows(A, B, folds, tile))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = export_verilog(TileHarness(**params, depth=depth, fault=None),
                                tmp / f"{TOPLEVEL}.v")
        for name, words, layout in (("a_mem", packer.pack_a(a, flags), packer.a_layout),
                                    ("b_mem", packer.pack_b(b), packer.b_layout)):
            digits = (Shape.cast(layout).width + 3) // 4
            (tmp / f"{name}.hex").write_text("".join(f"{w:0{digits}x}\n" for w in words))
        (tmp / "main.cpp").write_text(CPP_MAIN)
        start = time.perf_counter()
        subprocess.run(["verilator", "--cc", "--exe", "--build", "-j", "2", "--top-module",
                        TOPLEVEL, "--prefix", "Vtop", "-Mdir", str(tmp), "-o", "Vbench",
                        *verilator_build_args(level), str(source), str(tmp / "main.cpp")],
                       check=True, capture_output=True)
        build_s = time.perf_counter() - start
        rates, cpu_rates = [], []
        for _ in range(3):
            out = subprocess.run([str(tmp / "Vbench"), str(len(a)), str(len(b)), str(rows),
                                  "10000000", f"+a_mem={tmp / 'a_mem.hex'}",
                                  f"+b_mem={tmp / 'b_mem.hex'}"],
                                 check=True, capture_output=True, text=True).stdout
            cycles, got_rows, seconds, cpu = out.split()
            if int(got_rows) != rows:
                raise RuntimeError(f"the C++ loop captured {got_rows} result rows, {rows} expected")
            rates.append(int(cycles) / float(seconds))
            cpu_rates.append(int(cycles) / max(float(cpu), 1e-6))
    return max(rates), max(cpu_rates), build_s


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--sims", nargs="+", default=["icarus", "verilator"])
    parser.add_argument("--levels", nargs="+", default=[OPTIMIZED_LEVEL.lstrip("-")],
                        choices=[level.lstrip("-") for level in CXX_LEVELS],
                        help="C++ optimisation levels of the Verilator builds, bench and C++ "
                             f"loop alike (default {OPTIMIZED_LEVEL.lstrip('-')}, the level of "
                             "SUPERNODE_VERILATOR_OPTIMIZE=1)")
    parser.add_argument("--fast-build", action="store_true",
                        help="the tests' level instead: --levels O0")
    parser.add_argument("--cocotb-clock", action="store_true",
                        help="run the bench's clock in cocotb's clock driver instead of the "
                             "harness's own (the bench and clock-only columns)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    levels = ["-O0"] if args.fast_build else [f"-{level}" for level in args.levels]
    os.environ.setdefault("SUPERNODE_BUILD", str(Path("build") / "bench"))

    rows = []
    print(f"{'sim':<10} {'C++':<4} {'tile':<6} {'cycles':>7} {'build s':>8} {'total s':>8} "
          f"{'bench c/s':>10} {'e2e c/s':>9} {'clock c/s':>10} {'C++ c/s':>9} "
          f"{'C++ build':>9} {'bench/C++':>9} {'bench/clock':>11}   "
          f"{'CPU: bench':>10} {'clock':>8} {'C++':>9} {'bench/C++':>9}")
    for sim in args.sims:
        for level in (levels if sim == "verilator" else ["-"]):
            if sim == "verilator":
                os.environ["SUPERNODE_VERILATOR_OPTIMIZE"] = level
            for size in args.sizes:
                rows.append(_measure(sim, level, size, not args.cocotb_clock))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


def _measure(sim, level, size, hdl_clock):
    """One row of the table: bench, clock-only and (on Verilator) C++ loop figures."""
    r = bench_gemm(size, sim, hdl_clock)
    r["clock_only_cycles_per_s"], r["clock_only_cpu_cycles_per_s"] = bench_clock_only(
        size, sim, r["cycles"], r["depth"], r["params"], r.pop("inputs"), hdl_clock)
    A, B = r.pop("A"), r.pop("B")
    r["cpp_cycles_per_s"] = r["cpp_cpu_cycles_per_s"] = r["cpp_build_s"] = None
    if sim == "verilator":
        r["cpp_cycles_per_s"], r["cpp_cpu_cycles_per_s"], r["cpp_build_s"] = bench_cpp(
            r["params"], A, B, r["depth"], level)
    r.update(sim=sim, size=size, level=level, hdl_clock=hdl_clock)
    cpp = (f"{r['cpp_cycles_per_s']:>9.0f} {r['cpp_build_s']:>9.1f} "
           f"{r['bench_cycles_per_s'] / r['cpp_cycles_per_s']:>9.2f}"
           if r["cpp_cycles_per_s"] else f"{'-':>9} {'-':>9} {'-':>9}")
    print(f"{sim:<10} {level:<4} {f'{size}x{size}':<6} {r['cycles']:>7} {r['build_s']:>8.1f} "
          f"{r['build_and_run_s']:>8.1f} {r['bench_cycles_per_s']:>10.0f} "
          f"{r['bench_e2e_cycles_per_s']:>9.0f} {r['clock_only_cycles_per_s']:>10.0f} {cpp} "
          f"{r['bench_cycles_per_s'] / r['clock_only_cycles_per_s']:>11.2f}   "
          f"{r['bench_cpu_cycles_per_s']:>10.0f} {r['clock_only_cpu_cycles_per_s']:>8.0f} "
          + (f"{r['cpp_cpu_cycles_per_s']:>9.0f} "
             f"{r['bench_cpu_cycles_per_s'] / r['cpp_cpu_cycles_per_s']:>9.2f}"
             if r["cpp_cpu_cycles_per_s"] else f"{'-':>9} {'-':>9}"), flush=True)
    return r


if __name__ == "__main__":
    main()
