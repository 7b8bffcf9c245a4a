"""Cycle model of the systolic tile: how a GEMM is cut into folds and how many cycles it takes.

The model mirrors ``rtl/tile.py`` and reads the timing facts the RTL publishes
(``fill_latency``, ``fold_interval``, ...) from the same :class:`supernode.rtl.tile_params.TileParams`;
tests run the RTL on many GEMMs and fail if the predicted cycle counts differ from the
measured ones by a single cycle. Every function takes the tile as a ``TileParams`` or as
its keyword parameters (``rows=4, cols=4, dataflow="ws"``), the defaults filled in from
``TileParams``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import ceil
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from supernode.rtl.errors import UserError
from supernode.rtl.tile_params import TileParams, TileParamsLike, as_tile_params

#: A weight-stationary timing state: three cycle numbers (see ``_ws_fold_step``).
_State = tuple[int, ...]

__all__ = ["Fold", "TileEstimate", "fold_schedule", "operand_beats", "reference_gemm",
           "expected_rows", "result_rows_to_matrix", "result_row_count", "predict"]


@dataclass(frozen=True)
class Fold:
    """One pass of operands over the array.

    Members
    -------
    m0, m_count : int
        First row of A/C and how many rows this fold covers.
    k0, k_count : int
        First index of the reduction dimension and how many it covers.
    n0, n_count : int
        First column of B/C and how many columns this fold covers.
    accumulate : bool
        Weight-stationary: add to the partial sums kept from the previous fold.
    emit : bool
        The fold's results go to the result stream (always true in output-stationary).
    """
    m0: int
    m_count: int
    k0: int
    k_count: int
    n0: int
    n_count: int
    accumulate: bool
    emit: bool


@dataclass(frozen=True)
class TileEstimate:
    """Predicted cycles of one GEMM on one tile with no stalls.

    Members
    -------
    total_cycles : int
        Cycles from the first operand beat accepted to the last result row delivered,
        both included.
    first_result_cycles : int
        Cycles from the first operand beat accepted to the first result row delivered.
    macs : int
        Useful multiply-accumulates, ``m * k * n``.
    peak_macs_per_cycle : int
        ``rows * cols``.
    macs_per_cycle : float
        ``macs / total_cycles``.
    utilization : float
        ``macs_per_cycle / peak_macs_per_cycle``.
    folds : int
        Passes over the array.
    """
    total_cycles: int
    first_result_cycles: int
    macs: int
    peak_macs_per_cycle: int
    macs_per_cycle: float
    utilization: float
    folds: int


def _check_gemm(m: int, k: int, n: int) -> None:
    for name, value in (("m", m), ("k", k), ("n", n)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise UserError(f"GEMM dimension {name} must be a positive integer, not {value!r}")


def _blocks(total: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(size, total - start)) for start in range(0, total, size)]


def fold_schedule(params: TileParamsLike = None, *, m: int, k: int, n: int,
                  **tile: Any) -> list[Fold]:
    """The folds of ``C[m, n] = A[m, k] @ B[k, n]`` in the order the tile receives them.

    Output-stationary: for each block of ``rows`` rows of C, for each block of ``cols``
    columns, one fold streams the whole reduction (``k`` beats).

    Weight-stationary: for each block of ``cols`` columns, for each chunk of up to
    ``acc_depth`` rows of A, for each block of ``rows`` reduction indices, one fold loads
    a ``rows`` x ``cols`` block of B as weights and streams the chunk's rows of A.
    """
    p = as_tile_params(params, **tile)
    rows, cols, acc_depth = p.rows, p.cols, p.acc_depth
    _check_gemm(m, k, n)
    folds = []
    if p.dataflow == "os":
        for m0, mc in _blocks(m, rows):
            for n0, nc in _blocks(n, cols):
                folds.append(Fold(m0, mc, 0, k, n0, nc, False, True))
    else:
        kblocks = _blocks(k, rows)
        for n0, nc in _blocks(n, cols):
            for m0, mc in _blocks(m, acc_depth):
                for index, (k0, kc) in enumerate(kblocks):
                    folds.append(Fold(m0, mc, k0, kc, n0, nc, index > 0,
                                      index == len(kblocks) - 1))
    return folds


def operand_beats(A: ArrayLike, B: ArrayLike, params: TileParamsLike = None, **tile: Any
                  ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], list[Fold]]:
    """The operand streams of a GEMM as arrays of beats, zero-padded at the array's edges.

    Returns ``(a, a_flags, b, folds)``: ``a`` has one row of ``rows`` values per ``a`` beat,
    ``a_flags`` one row ``(last, accumulate, emit)`` per ``a`` beat, ``b`` one row of
    ``cols`` values per ``b`` beat.
    """
    p = as_tile_params(params, **tile)
    rows, cols = p.rows, p.cols
    A, B = np.asarray(A), np.asarray(B)
    (m, k), (k2, n) = A.shape, B.shape
    if k != k2:
        raise UserError(f"A is {m}x{k} but B is {k2}x{n}: inner dimensions differ")
    folds = fold_schedule(p, m=m, k=k, n=n)
    a_beats, a_flags, b_beats = [], [], []
    for f in folds:
        if p.dataflow == "os":
            a = np.zeros((f.k_count, rows), dtype=np.int64)
            a[:, :f.m_count] = A[f.m0:f.m0 + f.m_count, :].T
            b = np.zeros((f.k_count, cols), dtype=np.int64)
            b[:, :f.n_count] = B[:, f.n0:f.n0 + f.n_count]
            flags = np.zeros((f.k_count, 3), dtype=np.int64)
        else:
            a = np.zeros((f.m_count, rows), dtype=np.int64)
            a[:, :f.k_count] = A[f.m0:f.m0 + f.m_count, f.k0:f.k0 + f.k_count]
            b = np.zeros((rows, cols), dtype=np.int64)
            b[:f.k_count, :f.n_count] = B[f.k0:f.k0 + f.k_count, f.n0:f.n0 + f.n_count]
            flags = np.zeros((f.m_count, 3), dtype=np.int64)
            flags[:, 1] = f.accumulate
            flags[:, 2] = f.emit
        flags[-1, 0] = 1
        a_beats.append(a)
        a_flags.append(flags)
        b_beats.append(b)
    return (np.concatenate(a_beats), np.concatenate(a_flags), np.concatenate(b_beats), folds)


def result_rows_to_matrix(rows_out: Sequence[Sequence[int]] | NDArray[Any], folds: Sequence[Fold],
                          params: TileParamsLike, *, m: int, n: int) -> NDArray[np.int64]:
    """Place the result rows (one array row of ``cols`` values each) into ``C[m, n]``."""
    params = as_tile_params(params)
    C = np.zeros((m, n), dtype=np.int64)
    index = 0
    for f in folds:
        if not f.emit:
            continue
        count = params.rows if params.dataflow == "os" else f.m_count
        block = np.asarray(rows_out[index:index + count])
        C[f.m0:f.m0 + f.m_count, f.n0:f.n0 + f.n_count] = block[:f.m_count, :f.n_count]
        index += count
    if index != len(rows_out):
        raise ValueError(f"expected {index} result rows, got {len(rows_out)}")
    return C


def result_row_count(folds: Sequence[Fold], params: TileParamsLike) -> int:
    """How many result rows the tile sends for these folds."""
    params = as_tile_params(params)
    if params.dataflow == "os":
        return params.rows * len(folds)
    return sum(f.m_count for f in folds if f.emit)


def reference_gemm(A: ArrayLike, B: ArrayLike, *, acc_width: int, signed: bool
                   ) -> NDArray[np.object_]:
    """``A @ B`` with the tile's arithmetic: exact products, sums wrapped to ``acc_width`` bits."""
    C = np.asarray(A, dtype=object) @ np.asarray(B, dtype=object)
    modulus = 1 << acc_width
    C = np.vectorize(lambda v: v % modulus, otypes=[object])(C)
    if signed:
        C = np.vectorize(lambda v: v - modulus if v >= modulus >> 1 else v, otypes=[object])(C)
    return C


# --- weight-stationary timing -----------------------------------------------------------------
#
# Each fold's timing is a max-plus function of the previous folds' times. The recurrence is
# homogeneous (shifting every input time by d shifts every output by d), so once a run of
# steps moves every state variable by the same amount over one or two steps, it keeps doing
# so; `_repeat` uses that to jump over millions of identical folds exactly.

_NEVER = -(1 << 62)


def _repeat(step: Callable[[_State], _State], state: _State, count: int) -> _State:
    """Apply ``step`` to ``state`` ``count`` times, jumping ahead once it is periodic."""
    history = [state]
    done = 0
    while done < count:
        state = step(state)
        done += 1
        history.append(state)
        for period in (1, 2):
            if len(history) > 2 * period:
                a, b, c = history[-1 - 2 * period], history[-1 - period], history[-1]
                d1 = [y - x for x, y in zip(a, b) if x > _NEVER // 2]
                d2 = [y - x for x, y in zip(b, c) if x > _NEVER // 2]
                if (len(d1) == len(a) and d1 and len(set(d1)) == 1 and d1 == d2):
                    jumps = (count - done) // period
                    shift = jumps * d1[0]
                    state = tuple(v + shift for v in state)
                    done += jumps * period
                    history = [state]
                    break
    return state


def _ws_fold_step(timing: TileParams, rows: int, m_count: int
                  ) -> Callable[[_State], _State]:
    """One weight-stationary fold of ``m_count`` rows of A, as a step on the state
    ``(first weight beat, last A beat, last A beat of the fold before)``."""
    def step(state: _State) -> _State:
        load_prev, last_prev, last_prev2 = state
        # Weights load into the bank the fold before last used, once it is released.
        load = max(load_prev + rows, last_prev2 + timing.weight_release_latency)
        start = max(load + rows, last_prev + 1)
        return (load, start + m_count - 1, last_prev)
    return step


def predict(params: TileParamsLike = None, *, m: int, k: int, n: int,
            **tile: Any) -> TileEstimate:
    """Cycles the tile takes for ``C[m, n] = A[m, k] @ B[k, n]`` when nothing stalls.

    Exact for the RTL in ``rtl/tile.py`` (tests compare the two cycle for cycle); runs in
    constant time for any GEMM size.
    """
    timing = as_tile_params(params, **tile)
    rows, cols, acc_depth = timing.rows, timing.cols, timing.acc_depth
    _check_gemm(m, k, n)
    macs = m * k * n
    if timing.dataflow == "os":
        folds = ceil(m / rows) * ceil(n / cols)
        last_beat = (k - 1) + (folds - 1) * max(k, timing.fold_interval)
        first_result = (k - 1) + timing.fill_latency
        last_result = last_beat + timing.drain_latency
    else:
        kb, nb = ceil(k / rows), ceil(n / cols)
        full, rest = divmod(m, acc_depth)
        start: _State = (-rows, _NEVER, _NEVER)         # so that the first load starts at cycle 0

        def chunk(m_count: int) -> Callable[[_State], _State]:
            inner = _ws_fold_step(timing, rows, m_count)
            return lambda state: _repeat(inner, state, kb)

        def column_block(state: _State) -> _State:
            state = _repeat(chunk(acc_depth), state, full)
            return _repeat(chunk(rest), state, 1) if rest else state

        first_chunk = min(acc_depth, m)
        first_state = _repeat(_ws_fold_step(timing, rows, first_chunk), start, kb)
        first_result = (first_state[1] - first_chunk + 1) + timing.fill_latency
        last_beat = _repeat(column_block, start, nb)[1]
        last_result = last_beat + timing.drain_latency
        folds = kb * nb * ceil(m / acc_depth)
    total = last_result + 1
    peak = timing.peak_macs_per_cycle
    return TileEstimate(total_cycles=total, first_result_cycles=first_result, macs=macs,
                        peak_macs_per_cycle=peak, macs_per_cycle=macs / total,
                        utilization=macs / total / peak, folds=folds)


def expected_rows(A: ArrayLike, B: ArrayLike, folds: Sequence[Fold], params: TileParamsLike
                  ) -> list[tuple[list[int], int]]:
    """The result rows the tile must send, in order: ``(values, last)`` per row.

    Rows and columns past the edge of C are zero (the operands are zero-padded there).
    """
    params = as_tile_params(params)
    C = reference_gemm(A, B, acc_width=params.acc_width, signed=params.signed)
    out = []
    for f in folds:
        if not f.emit:
            continue
        count = params.rows if params.dataflow == "os" else f.m_count
        for r in range(count):
            values = [0] * params.cols
            if r < f.m_count:
                values[:f.n_count] = [int(v) for v in C[f.m0 + r, f.n0:f.n0 + f.n_count]]
            out.append((values, int(r == count - 1)))
    return out
