"""Speed of the system estimator: one estimate, one SLO search, and a 1,000-configuration sweep on 2 cores."""

import argparse
import itertools
import json
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from supernode.fabric.system import estimate, load_system, load_workload  # noqa: E402

SYSTEMS = ("cloudmatrix384", "gb200-nvl72", "h800-cluster")
WORKLOADS = ("deepseek-r1", "llama3-70b")
PHASES = ("decode", "prefill")


def configurations(count: int):
    """``count`` distinct (system, workload, phase, batch per rank, seq_len) tuples."""
    per_chip = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 160, 192, 256, 320, 384,
                448, 512, 640, 768, 896, 1024]
    seqs = [512, 1024, 2048, 4096, 8192]
    grid = itertools.product(SYSTEMS, WORKLOADS, PHASES, per_chip, seqs)
    return list(itertools.islice(grid, count))


_STATE = {}


def _init():
    # Each worker loads the hardware once and warms the network figures.
    _STATE["systems"] = {s: load_system(s) for s in SYSTEMS}
    _STATE["workloads"] = {w: load_workload(w) for w in WORKLOADS}
    for s in _STATE["systems"].values():
        estimate(s, _STATE["workloads"]["deepseek-r1"], phase="decode")


def _one(config):
    from supernode.fabric.system import default_mapping, estimate
    system, workload, phase, per_rank, seq = config
    spec = _STATE["systems"][system]
    model = _STATE["workloads"][workload]
    mapping = default_mapping(spec, model, phase)
    if phase == "prefill":
        per_rank = max(1, per_rank // 16)
    e = estimate(spec, model, phase=phase, seq_len=seq, mapping=mapping,
                 batch=per_rank * mapping.ranks, refuse_unfit=False)
    return e.tokens_per_s


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--configs", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    system = load_system("cloudmatrix384")
    first = estimate(system, "deepseek-r1", phase="decode")
    cold_s = time.perf_counter() - start
    times = []
    for _ in range(10):
        start = time.perf_counter()
        estimate(load_system("cloudmatrix384"), "deepseek-r1", phase="decode")
        times.append(time.perf_counter() - start)

    from supernode.fabric.system.slo import slo_search
    slo_times = []
    for _ in range(3):
        start = time.perf_counter()
        found = slo_search(system, "deepseek-r1", phase="decode", limit_s=0.05)
        slo_times.append(time.perf_counter() - start)

    configs = configurations(args.configs)
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers, initializer=_init) as pool:
        results = list(pool.map(_one, configs, chunksize=25))
    sweep_s = time.perf_counter() - start
    assert len(results) == len(configs) and all(r > 0 for r in results)

    report = {
        "full_system_estimate_cold_s": cold_s,
        "full_system_estimate_warm_median_s": statistics.median(times),
        "full_system_chips": first.chips,
        "slo_search_median_s": statistics.median(slo_times),
        "slo_search_points": len(found.curve),
        "sweep_configs": len(configs),
        "sweep_workers": args.workers,
        "sweep_s": sweep_s,
        "cpu_count": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(f"{first.chips:g}-package estimate (DeepSeek-R1 decode on CloudMatrix 384): "
              f"{report['full_system_estimate_warm_median_s'] * 1e3:.0f} ms warm (median of "
              f"10, files loaded each time), {cold_s:.2f} s cold (imports, network figures)")
        print(f"TPOT <= 50 ms search: {report['slo_search_median_s']:.2f} s (median of 3, "
              f"{len(found.curve)} batches estimated, each with and without the mapping's "
              f"micro-batch overlap)")
        print(f"sweep of {len(configs)} configurations on {args.workers} workers: "
              f"{sweep_s:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
