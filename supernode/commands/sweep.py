"""`supernode sweep`: explore a design space in parallel on Dask, with tables, Pareto and plots."""

import json
import sys

from supernode.rtl.errors import UserError

from . import positive_int

__all__ = ["register"]


def register(subparsers):
    p = subparsers.add_parser(
        "sweep", help="evaluate a design space (models, RTL spot-checks, area) on Dask",
        description="Evaluate every point of a sweep spec through the fast models, a sample "
                    "of points on the RTL, and write a tidy table (CSV, Parquet) with the "
                    "Pareto front marked, plus plots. Finished points are cached, so a "
                    "re-run or --resume recomputes nothing already done.")
    p.add_argument("spec", metavar="SPEC.toml",
                   help="sweep specification: a TOML file, or the name of an example shipped "
                        "with supernode, such as tile_array_shapes (an unknown name lists them)")
    p.add_argument("--out", metavar="DIR",
                   help="output and cache directory (default: results/sweep-<spec name>/)")
    p.add_argument("--workers", type=positive_int, metavar="N",
                   help="worker processes of the local Dask cluster (default: one per core)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on this existing Dask scheduler (e.g. tcp://127.0.0.1:8786) "
                        "instead of a local cluster")
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted sweep in --out (must be the same spec)")
    p.add_argument("--no-plots", action="store_true", help="write the tables only")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.set_defaults(func=run)


def run(args) -> int:
    # Deferred: supernode.dse imports pandas (half a second) and every CLI start would pay it.
    from supernode.dse import load_spec, run_sweep

    spec = load_spec(args.spec)
    if args.scheduler is not None and args.workers is not None:
        raise UserError(f"--workers {args.workers} applies to the local cluster only; "
                        f"size the cluster at {args.scheduler!r} with its own workers")
    report = run_sweep(spec, out_dir=args.out, workers=args.workers, scheduler=args.scheduler,
                       resume=args.resume, progress=not args.quiet, plots=not args.no_plots)
    if args.json:
        print(json.dumps({"name": spec.name, "kind": spec.kind, **report.as_dict()}))
    else:
        print(f"sweep {spec.name}: {report.total} points, {report.cached} from cache, "
              f"{report.computed} evaluated, {len(report.failures)} failed "
              f"({report.seconds:.1f} s)")
        for path in report.files:
            print(f"  wrote {path}")
    if report.failures:
        for index, params, message in report.failures:
            print(f"supernode: point #{index} {json.dumps(params)} FAILED: {message}",
                  file=sys.stderr)
        return 1
    return 0
