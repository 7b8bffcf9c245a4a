"""Pareto front of a table of points under objectives that are maximised or minimised."""

import numpy as np

__all__ = ["pareto_mask"]

DIRECTIONS = ("max", "min")


def pareto_mask(values, directions) -> np.ndarray:
    """Which rows of ``values`` are not dominated by any other row.

    Parameters
    ----------
    values : array of shape (points, objectives)
        Objective values; a row with a NaN is never on the front.
    directions : sequence of "max" or "min", one per objective.

    A row is dominated when another row is at least as good in every objective and
    strictly better in one. Rows with equal values are all kept.
    """
    vals = np.asarray(values, dtype=float)
    if vals.ndim != 2:
        raise ValueError(f"values must be a 2-D array, not one of shape {vals.shape}")
    if len(directions) != vals.shape[1]:
        raise ValueError(f"expected {vals.shape[1]} directions, not {len(directions)}")
    for d in directions:
        if d not in DIRECTIONS:
            raise ValueError(f"direction must be 'max' or 'min', not {d!r}")
    sign = np.array([1.0 if d == "max" else -1.0 for d in directions])
    score = vals * sign  # larger is better in every column
    valid = ~np.isnan(score).any(axis=1)
    mask = np.zeros(len(score), dtype=bool)
    idx = np.flatnonzero(valid)
    good = score[idx]
    for pos, i in enumerate(idx):
        row = good[pos]
        dominated = np.all(good >= row, axis=1) & np.any(good > row, axis=1)
        mask[i] = not dominated.any()
    return mask
