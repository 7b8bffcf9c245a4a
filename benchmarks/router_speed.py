"""Simulation speed: flits per wall-second for the RTL (cocotb on Verilator), the Python model and the compiled engine, same traffic."""

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from supernode.fabric.network import engine                          # noqa: E402
from supernode.fabric.network.traffic import TrafficSpec              # noqa: E402
from supernode.sim.router.common import Design, REFERENCE_DESIGNS, run_rtl_points  # noqa: E402
from supernode.sim.runner import CXX_LEVELS, OPTIMIZED_LEVEL                      # noqa: E402

DESIGNS = {
    "router 4-port, 2 VCs": REFERENCE_DESIGNS["router4"],
    "router 8-port VOQ iSLIP-2": Design("router", dict(ports=8, vcs=2, buffer_depth=8,
                                                       voq=True, allocator="islip",
                                                       islip_iterations=2)),
    "Clos 16 endpoints (4x4, 2 spines)": REFERENCE_DESIGNS["clos16"],
}

#: Larger Clos networks, beyond what the RTL bench runs in reasonable time: the compiled
#: engine alone (the system layer's figures at scale).
LARGE = {
    "Clos 64 endpoints (8x8, 8 spines)": Design("clos", dict(
        endpoints_per_leaf=8, leaves=8, spines=8, vcs=2, buffer_depth=8, allocator="islip",
        islip_iterations=2, voq=True)),
    "Clos 128 endpoints (16x8, 8 spines)": Design("clos", dict(
        endpoints_per_leaf=8, leaves=16, spines=8, vcs=2, buffer_depth=8, allocator="islip",
        islip_iterations=2, voq=True)),
}


def _python_loop(design, spec):
    """The Python reference model's run; seconds of its cycle loop only."""
    eps, net = design.endpoints(spec), design.model()
    start = time.perf_counter()
    while not eps.done:
        ejected, credits = net.outputs()
        inject, credits_out = eps.step(ejected, credits)
        net.step(inject, credits_out)
    seconds = time.perf_counter() - start
    eps.finish()
    return eps.result(), seconds


def _compiled(design, spec):
    """The compiled engine's run; seconds of :func:`engine.simulate` (its traffic
    generation, set-up and statistics included, the network's construction not)."""
    eps, net = design.endpoints(spec), design.model()
    start = time.perf_counter()
    result = engine.simulate(net, eps)
    return result, time.perf_counter() - start


def _first_call():
    """Seconds of the engine's first call in this process (compiling it, or loading it from
    numba's on-disk cache), and whether it was compiled."""
    design = Design("router", dict(ports=2, vcs=1, buffer_depth=1))
    spec = TrafficSpec(measure=20, warmup=0)
    eps, net = design.endpoints(spec), design.model()
    start = time.perf_counter()
    engine.simulate(net, eps)
    seconds = time.perf_counter() - start
    compiled = sum(engine._kernel.stats.cache_misses.values()) > 0
    return seconds, compiled


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sim", default="verilator")
    ap.add_argument("--measure", type=int, default=4000)
    ap.add_argument("--designs", default="1,3",
                    help="comma-separated indices (1-based) of DESIGNS (default 1,3; the 8-port "
                         "VOQ router takes 10+ minutes to build under Verilator)")
    ap.add_argument("--large", action="store_true",
                    help="also run the larger Clos networks on the compiled engine")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of the RTL and of each model; the fastest of each is reported "
                         "(the machine is shared)")
    ap.add_argument("--level", default=OPTIMIZED_LEVEL.lstrip("-"),
                    choices=[level.lstrip("-") for level in CXX_LEVELS],
                    help="C++ optimisation level of the Verilator build (default "
                         f"{OPTIMIZED_LEVEL.lstrip('-')}, that of SUPERNODE_VERILATOR_OPTIMIZE=1)")
    ap.add_argument("--json", help="write the rows to this JSON file")
    args = ap.parse_args(argv)
    os.environ["SUPERNODE_VERILATOR_OPTIMIZE"] = f"-{args.level}"
    spec = TrafficSpec(pattern="uniform", load=0.5, packet_length=4, warmup=200,
                       measure=args.measure, seed=5)
    chosen = {int(x) for x in args.designs.split(",") if x}
    first_s, compiled = _first_call()
    print(f"compiled engine, first call: {first_s:.2f} s "
          f"({'compiled' if compiled else 'loaded from the on-disk cache'}; not in the rates)")
    rows = []
    print(f"uniform traffic, 4-flit packets, offered load 0.5, {spec.measure} measured cycles; "
          f"flits per wall-second")
    print(f"{'design':36} {'build s':>8} {'RTL':>10} {'Python':>10} {'compiled':>11} "
          f"{'Py/RTL':>7} {'comp/RTL':>9} {'comp/Py':>8}")
    for k, (label, design) in enumerate(DESIGNS.items(), 1):
        if k not in chosen:
            continue
        # The RTL runs the spec `repeat` times in one simulator process (reset between);
        # the rest of the call is elaboration, the simulator build and start-up.
        start = time.perf_counter()
        points, _ = run_rtl_points(design, [spec] * args.repeat, sim=args.sim)
        build_s = time.perf_counter() - start - sum(p["wall_seconds"] for p in points)
        rtl = min(points, key=lambda p: p["wall_seconds"])
        python, python_s = min((_python_loop(design, spec) for _ in range(args.repeat)),
                               key=lambda r: r[1])
        fast, fast_s = min((_compiled(design, spec) for _ in range(args.repeat)),
                           key=lambda r: r[1])
        assert python == fast, "the compiled engine disagrees with the Python model"
        assert fast["flits_delivered"] == rtl["flits_delivered"]
        flits = rtl["flits_delivered"]
        row = {"design": label, "params": design.params, "sim": args.sim, "flits": flits,
               "build_and_startup_seconds": build_s,
               "cycles": rtl["cycles"], "rtl_seconds": rtl["wall_seconds"],
               "python_seconds": python_s, "compiled_seconds": fast_s,
               "rtl_flits_per_s": flits / rtl["wall_seconds"],
               "python_flits_per_s": flits / python_s, "compiled_flits_per_s": flits / fast_s,
               "first_call_seconds": first_s, "first_call_compiled": compiled}
        row["python_over_rtl"] = row["python_flits_per_s"] / row["rtl_flits_per_s"]
        row["compiled_over_rtl"] = row["compiled_flits_per_s"] / row["rtl_flits_per_s"]
        row["compiled_over_python"] = row["compiled_flits_per_s"] / row["python_flits_per_s"]
        rows.append(row)
        print(f"{label:36} {build_s:>8.1f} {row['rtl_flits_per_s']:>10,.0f} "
              f"{row['python_flits_per_s']:>10,.0f} "
              f"{row['compiled_flits_per_s']:>11,.0f} {row['python_over_rtl']:>6.1f}x "
              f"{row['compiled_over_rtl']:>8.0f}x {row['compiled_over_python']:>7.0f}x",
              flush=True)
    if args.large:
        for label, design in LARGE.items():
            fast, fast_s = min((_compiled(design, spec) for _ in range(args.repeat)),
                               key=lambda r: r[1])
            flits = fast["flits_delivered"]
            row = {"design": label, "params": design.params, "flits": flits,
                   "cycles": fast["cycles"], "compiled_seconds": fast_s,
                   "compiled_flits_per_s": flits / fast_s,
                   "compiled_cycles_per_s": fast["cycles"] / fast_s}
            rows.append(row)
            print(f"{label:36} {'-':>8} {'-':>10} {'-':>10} {row['compiled_flits_per_s']:>11,.0f}   "
                  f"({row['compiled_cycles_per_s']:,.0f} cycles/s)", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
