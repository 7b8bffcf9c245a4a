"""Simulation speed of the tile bench against cocotb's own floor and a Python-free C++ loop.

For each array size and simulator it reports:
  build       seconds to elaborate and compile the design (harness included);
  bench       simulated cycles per wall-second of a GEMM run (clock running, stimulus and
              capture in HDL, Python waiting on `done`);
  bench e2e   the same including simulator start-up, memory loading and scoring;
  clock-only  a cocotb coroutine that only awaits rising clock edges (cocotb's floor);
  C++         (Verilator only) the same Verilated model stepped from a small C++ main.

Run: `make bench` or `.venv/bin/python benchmarks/tile_speed.py [--sizes 4 8 16] [--json FILE]`.
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

from sim.runner import (FAST_BUILD_ARGS, TOPLEVEL, VERILATOR_ARGS,  # noqa: E402
                        _setup_verilator_env, _source_digest, design_dir, run_cocotb,
                        verilator_optimized)
from sim.tile.harness import TileHarness  # noqa: E402
from sim.tile.run import random_operands, run_gemm  # noqa: E402

CPP_MAIN = r"""
#include "Vtop.h"
#include "verilated.h"
#include <chrono>
#include <cstdio>
#include <cstdlib>
int main(int argc, char** argv) {
    long cycles = std::atol(argv[1]);
    Vtop* top = new Vtop;
    top->rst = 1; top->clk = 0; top->eval(); top->clk = 1; top->eval();
    top->rst = 0; top->a_count = DEPTH; top->b_count = DEPTH; top->c_count = 0;
    top->start = 1; top->clk = 0; top->eval(); top->clk = 1; top->eval(); top->start = 0;
    auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < cycles; i++) { top->clk = 0; top->eval(); top->clk = 1; top->eval(); }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%f\n", s);
    delete top;
    return 0;
}
"""


def bench_gemm(size, sim):
    m = n = 4 * size
    k = 1024
    params = {"rows": size, "cols": size, "dataflow": "os"}
    A, B = random_operands(m, k, n, in_width=8, signed=True, seed=1)
    start = time.perf_counter()
    first = run_gemm(params, A, B, sim=sim, seed=1)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    run_gemm(params, A, B, sim=sim, seed=2)
    warm = time.perf_counter() - start
    result = json.loads((Path(first.run_dir) / "result.json").read_text())
    cycles = first.counters["cycles"]
    return {
        "cycles": cycles, "build_s": max(cold - warm, 0.0),
        "bench_cycles_per_s": cycles / result["run_wall_s"],
        "bench_e2e_cycles_per_s": cycles / warm,
        "depth": _depth_of(first),
        "params": first.params,
        "inputs": json.loads((Path(first.run_dir) / "inputs.json").read_text())["inputs"],
    }


def _depth_of(run):
    return json.loads((Path(run.run_dir) / "inputs.json").read_text())["params"]["depth"]


def bench_clock_only(size, sim, cycles, depth, params, inputs):
    run = run_cocotb(kind="tile", component_factory=TileHarness,
                     params={**params, "depth": depth, "fault": None},
                     test_module="sim.tile.bench", testcase="clock_only",
                     inputs={**inputs, "cycles": cycles}, sim=sim)
    return cycles / run.result["wall_s"]


def bench_cpp(params, depth, cycles):
    _setup_verilator_env()
    harness_params = {**params, "depth": depth, "fault": None}
    optimized = verilator_optimized()
    source = design_dir("tile", {**harness_params, "_trace": None, "_optimized": optimized,
                                 "_source": _source_digest(TileHarness)}, "verilator", False)
    with tempfile.TemporaryDirectory() as tmp:
        main = Path(tmp) / "main.cpp"
        main.write_text(CPP_MAIN.replace("DEPTH", str(depth)))
        subprocess.run(["verilator", "--cc", "--exe", "--build", "-j", "2", "--top-module",
                        TOPLEVEL, "--prefix", "Vtop", "-Mdir", tmp, "-o", "Vbench",
                        *VERILATOR_ARGS, *([] if optimized else FAST_BUILD_ARGS),
                        str(source / f"{TOPLEVEL}.v"), str(main)],
                       check=True, capture_output=True)
        out = subprocess.run([str(Path(tmp) / "Vbench"), str(cycles)], check=True,
                             capture_output=True, text=True).stdout
    return cycles / float(out.strip())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--sims", nargs="+", default=["icarus", "verilator"])
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--fast-build", action="store_true",
                        help="compile Verilator's C++ without optimisation (as the tests do), "
                             "the C++ loop included")
    args = parser.parse_args()
    os.environ.setdefault("SUPERNODE_BUILD", str(Path("build") / "bench"))
    os.environ["SUPERNODE_VERILATOR_OPTIMIZE"] = "0" if args.fast_build else "1"

    rows = []
    print(f"{'sim':<10} {'tile':<6} {'cycles':>7} {'build s':>8} {'bench c/s':>10} "
          f"{'e2e c/s':>9} {'clock c/s':>10} {'C++ c/s':>9} {'bench/clock':>11}")
    for sim in args.sims:
        for size in args.sizes:
            r = bench_gemm(size, sim)
            r["clock_only_cycles_per_s"] = bench_clock_only(size, sim, r["cycles"], r["depth"],
                                                            r["params"], r.pop("inputs"))
            r["cpp_cycles_per_s"] = (bench_cpp(r["params"], r["depth"], r["cycles"] * 4)
                                     if sim == "verilator" else None)
            r.update(sim=sim, size=size)
            rows.append(r)
            cpp = f"{r['cpp_cycles_per_s']:>9.0f}" if r["cpp_cycles_per_s"] else f"{'-':>9}"
            print(f"{sim:<10} {f'{size}x{size}':<6} {r['cycles']:>7} {r['build_s']:>8.1f} "
                  f"{r['bench_cycles_per_s']:>10.0f} {r['bench_e2e_cycles_per_s']:>9.0f} "
                  f"{r['clock_only_cycles_per_s']:>10.0f} {cpp} "
                  f"{r['bench_cycles_per_s'] / r['clock_only_cycles_per_s']:>11.2f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
