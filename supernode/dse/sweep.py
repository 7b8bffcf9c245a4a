"""Run a sweep end to end: spec -> points -> cache -> Dask -> table -> Pareto -> plots."""

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from supernode.rtl.errors import UserError
from supernode.sim.outputs import check_output_dir, write_atomic

from .cache import ResultCache
from .evaluators import code_fingerprint
from .execute import dask_client, run_tasks
from .table import build_table, mark_pareto, write_table

__all__ = ["SweepReport", "run_sweep", "default_out_dir"]

MANIFEST = "sweep.json"


@dataclass
class SweepReport:
    """What a sweep did.

    Members
    -------
    out_dir : Path
        Where the cache, tables and plots are.
    total, cached, computed : int
        Points in the space; answered from the cache; evaluated in this run.
    failures : list of (point index, params, message)
        Points that failed (model/RTL disagreement or error); not cached.
    files : list of Path
        Tables and plots written.
    """
    out_dir: Path
    total: int
    cached: int
    computed: int
    failures: list = field(default_factory=list)
    files: list = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"out_dir": str(self.out_dir), "total": self.total, "cached": self.cached,
                "computed": self.computed, "failed": len(self.failures),
                "failures": [{"point": i, "params": p, "error": m} for i, p, m in self.failures],
                "files": [str(f) for f in self.files], "seconds": round(self.seconds, 3)}


def default_out_dir(spec) -> Path:
    return Path("results") / f"sweep-{spec.name}"


def _record(task, outcome) -> dict:
    return {"key": task["key"], "point": task["index"], "params": task["params"],
            "kind": task["kind"], "rtl_checked": task["rtl"] is not None,
            "metrics": outcome["metrics"], "seconds": outcome["seconds"],
            "worker": outcome["worker"], "status": "ok"}


def run_sweep(spec, *, out_dir=None, workers: "int | None" = None, scheduler=None,
              resume: bool = False, progress: bool = True, plots: bool = True,
              log=None) -> SweepReport:
    """Evaluate every point of ``spec`` (reusing cached ones) and write tables and plots.

    Results are cached one file per point as each arrives, so an interrupted sweep
    loses no finished point; ``resume`` insists that ``out_dir`` holds an earlier run
    of this same spec.
    """
    started = time.perf_counter()
    log = sys.stderr if log is None else log
    if out_dir is not None:
        out_dir = check_output_dir(out_dir, flag="--out")
    else:       # the documented default, results/sweep-<name>/, is created with its parent
        out_dir = default_out_dir(spec)
        if out_dir.exists() and not out_dir.is_dir():
            raise UserError(f"{str(out_dir)!r} is a file; give --out a directory")
    manifest_path = out_dir / MANIFEST
    digest = spec.digest()
    if resume:
        try:
            previous = json.loads(manifest_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            raise UserError(f"--resume found no earlier sweep in {str(out_dir)!r}; "
                            f"run without --resume or give the --out of the interrupted sweep")
        if previous.get("spec_digest") != digest:
            raise UserError(f"--resume: {str(out_dir)!r} holds sweep {previous.get('name')!r} "
                            f"of a different spec than {str(spec.path)!r}; give the same spec "
                            f"or another --out")

    cache = ResultCache(out_dir / "cache")
    tasks = spec.tasks(code_fingerprint(spec.kind))
    required = [spec.evaluator.OBJECTIVES[o] for o in spec.objectives]
    rows, todo = [], []
    for task in tasks:
        hit = cache.get(task["key"], required)
        if hit is not None:
            rows.append({**hit, "point": task["index"], "params": task["params"]})
        else:
            todo.append(task)
    for path, reason in cache.rejected:
        print(f"supernode: cache entry {path} is not used ({reason}); evaluating its point "
              f"again", file=log)

    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = {"name": spec.name, "kind": spec.kind, "spec": str(spec.path),
                "spec_digest": digest, "description": spec.description,
                "points": len(tasks), "objectives": spec.objectives, "state": "running"}
    write_atomic(manifest_path, json.dumps(manifest, indent=2))
    write_atomic(out_dir / "spec.toml", spec.path.read_text())

    failures = []
    if todo:
        bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), unit="point",
                   desc=f"sweep {spec.name}", file=log, disable=not progress, dynamic_ncols=True)

        def on_done(task, outcome):
            record = _record(task, outcome)
            cache.put(task["key"], record)
            rows.append(record)

        def on_failed(task, message):
            failures.append((task["index"], task["params"], message))
            rows.append({"key": task["key"], "point": task["index"], "params": task["params"],
                         "rtl_checked": task["rtl"] is not None, "status": "failed",
                         "error": message})
            bar.write(f"POINT FAILED #{task['index']} {task['params']}: {message}", file=log)

        n_workers = workers if workers is not None else max(1, os.cpu_count() or 1)
        try:
            with dask_client(workers=n_workers, scheduler=scheduler) as client:
                dashboard = _dashboard(client)
                if progress and dashboard:
                    bar.write(f"Dask dashboard: {dashboard}", file=log)
                run_tasks(client, todo, on_done=on_done, on_failed=on_failed, progress=bar)
        finally:
            bar.close()

    table = mark_pareto(build_table(spec, rows), spec)
    files = write_table(table, out_dir)
    if plots:
        # Deferred: plots imports matplotlib (over half a second); --no-plots runs skip it.
        from .plots import draw_plots
        files += draw_plots(table, spec, out_dir)
    manifest["state"] = "failed" if failures else "complete"
    manifest["failed"] = len(failures)
    write_atomic(manifest_path, json.dumps(manifest, indent=2))
    return SweepReport(out_dir=out_dir, total=len(tasks), cached=len(tasks) - len(todo),
                       computed=len(todo) - len(failures), failures=failures, files=files,
                       seconds=time.perf_counter() - started)


def _dashboard(client) -> "str | None":
    """The address of the scheduler's dashboard, when it serves one."""
    try:
        services = client.scheduler_info().get("services", {})
    except (OSError, TimeoutError):
        return None
    return client.dashboard_link if "dashboard" in services else None
