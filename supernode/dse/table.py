"""The tidy result table of a sweep: one row per point, every parameter and metric a column."""

import io

import numpy as np
import pandas as pd

from supernode.sim.outputs import write_atomic

from .pareto import pareto_mask

__all__ = ["build_table", "candidates", "mark_pareto", "write_table"]

#: Columns that describe how a row was obtained rather than the design point.
BOOKKEEPING = ("status", "rtl_checked", "seconds", "worker", "error")


def build_table(spec, rows) -> pd.DataFrame:
    """A DataFrame of ``rows`` (dicts with params, metrics and bookkeeping), by point index."""
    params = list(spec.space)
    metric_cols = []
    rows = sorted(rows, key=lambda r: r["point"])
    for row in rows:
        for name in row.get("metrics", {}):
            if name not in metric_cols:
                metric_cols.append(name)
    records = []
    for row in rows:
        rec = {"point": row["point"], "key": row["key"]}
        rec.update({p: row["params"][p] for p in params})
        rec.update({m: row.get("metrics", {}).get(m, np.nan) for m in metric_cols})
        rec.update({"status": row["status"], "rtl_checked": row["rtl_checked"],
                    "seconds": row.get("seconds", np.nan), "worker": row.get("worker", ""),
                    "error": row.get("error", "")})
        records.append(rec)
    columns = ["point", "key", *params, *metric_cols, *BOOKKEEPING]
    table = pd.DataFrame.from_records(records, columns=columns)
    for m in metric_cols:
        values = table[m].dropna()
        if all(isinstance(v, (int, float, np.number)) and not isinstance(v, (bool, np.bool_))
               for v in values):
            table[m] = pd.to_numeric(table[m])
        elif all(isinstance(v, (bool, np.bool_)) for v in values):
            table[m] = table[m].astype("boolean")
    return table


def candidates(table: pd.DataFrame, spec) -> np.ndarray:
    """Rows that may be on a Pareto front: evaluated without error and feasible.

    An evaluator that can score a point it could not run (a batch that does not fit in
    memory) names the column saying so in ``FEASIBLE``; such a point is kept in the
    table but never offered as a trade-off.
    """
    ok = (table["status"] == "ok").to_numpy()
    feasible = getattr(spec.evaluator, "FEASIBLE", None)
    if feasible is not None and feasible in table:
        ok &= table[feasible].fillna(False).astype(bool).to_numpy()
    return ok


def mark_pareto(table: pd.DataFrame, spec) -> pd.DataFrame:
    """Add a boolean ``pareto`` column: the feasible successful points no other dominates."""
    columns = [spec.evaluator.OBJECTIVES[o] for o in spec.objectives]
    directions = list(spec.objectives.values())
    mask = np.zeros(len(table), dtype=bool)
    ok = candidates(table, spec)
    if ok.any() and all(c in table for c in columns):
        mask[ok] = pareto_mask(table.loc[ok, columns].to_numpy(dtype=float), directions)
    table = table.copy()
    table["pareto"] = mask
    return table


def write_table(table: pd.DataFrame, out_dir, stem: str = "results") -> list:
    """Write ``<stem>.csv`` and ``<stem>.parquet`` atomically; return their paths."""
    csv_path = write_atomic(f"{out_dir}/{stem}.csv", table.to_csv(index=False))
    buf = io.BytesIO()
    table.to_parquet(buf, index=False)
    parquet_path = write_atomic(f"{out_dir}/{stem}.parquet", buf.getvalue())
    return [csv_path, parquet_path]
