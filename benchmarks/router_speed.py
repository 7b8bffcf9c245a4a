"""Simulation speed: flits per wall-second for the RTL (cocotb on Verilator) and for the model, same traffic."""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fabric.network.traffic import TrafficSpec           # noqa: E402
from sim.router.common import Design, REFERENCE_DESIGNS, run_model_for, run_rtl_points  # noqa: E402

DESIGNS = {
    "router 4-port, 2 VCs": REFERENCE_DESIGNS["router4"],
    "router 8-port VOQ iSLIP-2": Design("router", dict(ports=8, vcs=2, buffer_depth=8,
                                                       voq=True, allocator="islip",
                                                       islip_iterations=2)),
    "Clos 16 endpoints (4x4, 2 spines)": REFERENCE_DESIGNS["clos16"],
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sim", default="verilator")
    ap.add_argument("--measure", type=int, default=4000)
    ap.add_argument("--designs", default="1,3",
                    help="comma-separated indices (1-based) of DESIGNS (default 1,3; the 8-port "
                         "VOQ router takes 10+ minutes to build under Verilator)")
    ap.add_argument("--json", help="write the rows to this JSON file")
    args = ap.parse_args(argv)
    spec = TrafficSpec(pattern="uniform", load=0.5, packet_length=4, warmup=200,
                       measure=args.measure, seed=5)
    chosen = {int(x) for x in args.designs.split(",") if x}
    rows = []
    print(f"uniform traffic, 4-flit packets, offered load 0.5, {spec.measure} measured cycles")
    print(f"{'design':36} {'RTL flits/s':>12} {'model flits/s':>14} {'model/RTL':>10}")
    for k, (label, design) in enumerate(DESIGNS.items(), 1):
        if k not in chosen:
            continue
        points, _ = run_rtl_points(design, [spec], sim=args.sim)
        rtl = points[0]
        t = time.perf_counter()
        model = run_model_for(design, spec)
        model_s = time.perf_counter() - t
        assert model["flits_delivered"] == rtl["flits_delivered"]
        row = {"design": label, "params": design.params, "sim": args.sim,
               "flits": rtl["flits_delivered"], "cycles": rtl["cycles"],
               "rtl_seconds": rtl["wall_seconds"], "model_seconds": model_s,
               "rtl_flits_per_s": rtl["flits_delivered"] / rtl["wall_seconds"],
               "model_flits_per_s": model["flits_delivered"] / model_s}
        row["speedup"] = row["model_flits_per_s"] / row["rtl_flits_per_s"]
        rows.append(row)
        print(f"{label:36} {row['rtl_flits_per_s']:>12,.0f} {row['model_flits_per_s']:>14,.0f} "
              f"{row['speedup']:>9.1f}x", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
