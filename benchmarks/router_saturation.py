"""Saturation throughput of an 8-port router under uniform random single-flit traffic, per configuration."""

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from supernode.fabric.network.traffic import TrafficSpec           # noqa: E402
from supernode.sim.router.common import Design, run_model_for, run_rtl_points  # noqa: E402

#: (label, router parameters); every configuration is an 8-port router. Rows 1-11 hold the
#: buffer at 8 flits per VC and change only the VCs and the allocator ("separable-N": N
#: iterations; the router's default is 2, rows 2-4 and 12 ask for 1 explicitly), so what
#: more VCs buy under each allocator reads down the table; rows 12-17 are virtual output
#: queues. Default rows leave ``separable_iterations`` out, as the command line does, so
#: they share its build directories.
CONFIGS = [
    ("FIFO, 1 VC, separable-2 (default)", dict(vcs=1, buffer_depth=8)),
    ("2 VCs, separable-1", dict(vcs=2, buffer_depth=8, separable_iterations=1)),
    ("4 VCs, separable-1", dict(vcs=4, buffer_depth=8, separable_iterations=1)),
    ("8 VCs, separable-1", dict(vcs=8, buffer_depth=8, separable_iterations=1)),
    ("2 VCs, separable-2 (default)", dict(vcs=2, buffer_depth=8)),
    ("4 VCs, separable-2 (default)", dict(vcs=4, buffer_depth=8)),
    ("8 VCs, separable-2 (default)", dict(vcs=8, buffer_depth=8)),
    ("8 VCs, separable-3", dict(vcs=8, buffer_depth=8, separable_iterations=3)),
    ("4 VCs, iSLIP-1", dict(vcs=4, buffer_depth=8, allocator="islip")),
    ("4 VCs, iSLIP-2", dict(vcs=4, buffer_depth=8, allocator="islip", islip_iterations=2)),
    ("8 VCs, iSLIP-2", dict(vcs=8, buffer_depth=8, allocator="islip", islip_iterations=2)),
    ("VOQ, 1 VC, separable-1", dict(vcs=1, buffer_depth=16, voq=True,
                                    separable_iterations=1)),
    ("VOQ, 1 VC, separable-2 (default)", dict(vcs=1, buffer_depth=16, voq=True)),
    ("VOQ, 1 VC, iSLIP-1", dict(vcs=1, buffer_depth=16, voq=True, allocator="islip")),
    ("VOQ, 1 VC, iSLIP-4", dict(vcs=1, buffer_depth=16, voq=True, allocator="islip",
                                islip_iterations=4)),
    ("VOQ, 2 VCs, iSLIP-2", dict(vcs=2, buffer_depth=8, voq=True, allocator="islip",
                                 islip_iterations=2)),
    ("VOQ, 1 VC, iSLIP-4, 32 deep", dict(vcs=1, buffer_depth=32, voq=True, allocator="islip",
                                          islip_iterations=4)),
]
SPEC = TrafficSpec(pattern="uniform", load=1.0, packet_length=1, warmup=1000, measure=5000,
                   drain=0, seed=7)

#: Saturation of an input-queued switch with one FIFO per input under uniform traffic as the
#: number of ports grows: 2 - sqrt(2) (Karol, Hluchyj and Morgan, "Input versus output
#: queueing on a space-division packet switch", IEEE Transactions on Communications, 1987).
HOL_LIMIT_MANY_PORTS = 2 - 2 ** 0.5


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rtl", default="", help="comma-separated config numbers (1-based) to "
                    "also run on the RTL, or 'all'")
    ap.add_argument("--sim", default="verilator")
    ap.add_argument("--measure", type=int, default=SPEC.measure)
    ap.add_argument("--json", help="write the rows to this JSON file")
    args = ap.parse_args(argv)
    spec = dataclasses.replace(SPEC, measure=args.measure)
    rtl_set = set(range(1, len(CONFIGS) + 1)) if args.rtl == "all" else \
        {int(x) for x in args.rtl.split(",") if x}
    rows = []
    print(f"8-port router, uniform random single-flit traffic, offered load 1.0, "
          f"{spec.measure} measured cycles")
    print(f"{'#':>2} {'configuration':34} {'buffer':>6} {'model':>7} {'RTL':>7}")
    for k, (label, params) in enumerate(CONFIGS, 1):
        design = Design("router", dict(ports=8, **params))
        t = time.perf_counter()
        model = run_model_for(design, spec)
        row = {"config": label, "params": design.params,
               "model_saturation": model["accepted_throughput"],
               "model_seconds": time.perf_counter() - t}
        if k in rtl_set:
            points, _ = run_rtl_points(design, [spec], sim=args.sim)
            row["rtl_saturation"] = points[0]["accepted_throughput"]
            row["rtl_sim"] = args.sim
        rows.append(row)
        rtl = f"{row['rtl_saturation']:.3f}" if "rtl_saturation" in row else "-"
        print(f"{k:>2} {label:34} {params['buffer_depth']:>6} "
              f"{row['model_saturation']:>7.3f} {rtl:>7}", flush=True)
    print(f"head-of-line limit: row 1 (one FIFO per input, 8 ports); "
          f"{HOL_LIMIT_MANY_PORTS:.3f} for many ports")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
