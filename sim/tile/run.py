"""Run one GEMM on the tile RTL under cocotb and compare its cycles with the model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from supernode.fabric.tile_model import (TileEstimate, fold_schedule, predict, result_row_count,
                               result_rows_to_matrix)
from supernode.rtl.errors import UserError
from supernode.rtl.tile_params import TileParamsLike, as_tile_params
from supernode.sim.runner import run_cocotb
from supernode.sim.tile.harness import TileHarness

__all__ = ["GemmRun", "Gaps", "run_gemm", "harness_depth", "random_operands", "check_gemm_size",
           "MAX_OPERAND_ELEMENTS", "MAX_SIM_CYCLES"]

#: Elements of one operand matrix a run may hold (a limit of this software, not of the
#: tile): the operands travel to the bench as JSON and fill the harness's memories.
MAX_OPERAND_ELEMENTS = 1 << 22

#: Cycles a run may take by the cycle model: about 45 minutes on Icarus for a 4x4 tile at
#: the 3,570 cycles/s docs/tile.md measures. Longer runs are refused, not left to run.
MAX_SIM_CYCLES = 10_000_000


def check_gemm_size(m: int, k: int, n: int, params: TileParamsLike = None) -> None:
    """Refuse, in one sentence, a GEMM too large to simulate, before anything is allocated.

    Checks the operand sizes, and with the tile's ``params`` the cycles the model
    predicts for it.
    """
    for name, rows, cols in (("A", m, k), ("B", k, n)):
        if rows * cols > MAX_OPERAND_ELEMENTS:
            raise UserError(f"GEMM {m}x{k}x{n}: operand {name} would hold {rows * cols:,} "
                            f"elements; a simulation accepts at most "
                            f"{MAX_OPERAND_ELEMENTS:,} per operand")
    if params is not None:
        cycles = predict(params=as_tile_params(params), m=m, k=k, n=n).total_cycles
        if cycles > MAX_SIM_CYCLES:
            raise UserError(f"GEMM {m}x{k}x{n} takes {cycles:,} cycles on this tile by the "
                            f"cycle model; a simulation accepts at most {MAX_SIM_CYCLES:,} "
                            f"(use the model, `supernode estimate`, for this size)")


@dataclass(frozen=True)
class Gaps:
    """Idle cycles of one stream endpoint: a repeating pattern (1 = idle) and a random rate."""
    pattern: tuple = ()
    probability: float = 0.0

    def __post_init__(self):
        if len(self.pattern) > 32 or any(bit not in (0, 1) for bit in self.pattern):
            raise UserError(f"a gap pattern is up to 32 bits of 0 and 1, not {self.pattern!r}")
        if self.pattern and all(self.pattern) or not 0 <= self.probability < 1:
            raise UserError("gaps must leave the stream some cycles: pattern "
                            f"{self.pattern!r}, probability {self.probability!r}")

    @property
    def stalls(self):
        return bool(self.pattern and any(self.pattern)) or self.probability > 0


@dataclass
class GemmRun:
    """The outcome of one GEMM on the RTL.

    Members
    -------
    passed : bool
        Every result row matched the numpy reference bit for bit.
    C : numpy.ndarray
        The result as the tile computed it.
    measured_cycles, measured_first_result : int
        Cycles from first operand accepted to last (first) result delivered, as the
        harness counted them (``total`` includes both ends).
    model : TileEstimate
        The cycle model's prediction for the same GEMM with no stalls.
    counters : dict
        Every hardware counter of the harness.
    """
    passed: bool
    C: np.ndarray
    measured_cycles: int
    measured_first_result: int
    model: TileEstimate
    counters: dict
    sim: str
    waves: "str | None"
    run_dir: str
    params: dict = field(default_factory=dict)
    shape: tuple = ()

    @property
    def utilization(self):
        m, k, n = self.shape
        return m * k * n / (self.measured_cycles * self.model.peak_macs_per_cycle)

    def to_json(self) -> dict[str, Any]:
        m, k, n = self.shape
        return {
            "passed": self.passed, "sim": self.sim, "waves": self.waves,
            "params": self.params, "m": m, "k": k, "n": n,
            "measured_cycles": self.measured_cycles, "model_cycles": self.model.total_cycles,
            "measured_first_result": self.measured_first_result,
            "model_first_result": self.model.first_result_cycles,
            "utilization": self.utilization, "model_utilization": self.model.utilization,
            "macs_per_cycle": m * k * n / self.measured_cycles,
            "counters": self.counters, "run_dir": self.run_dir,
        }


def random_operands(m: int, k: int, n: int, *, in_width: int, signed: bool, seed: int,
                    extreme: str | None = None) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Random A and B within the operand range; ``extreme`` "min"/"max" fills them with
    the smallest/largest value instead."""
    check_gemm_size(m, k, n)
    lo, hi = (-(1 << (in_width - 1)), (1 << (in_width - 1)) - 1) if signed \
        else (0, (1 << in_width) - 1)
    if extreme == "min":
        return np.full((m, k), lo), np.full((k, n), lo)
    if extreme == "max":
        return np.full((m, k), hi), np.full((k, n), hi)
    rng = np.random.default_rng(seed)
    return rng.integers(lo, hi + 1, (m, k)), rng.integers(lo, hi + 1, (k, n))


def _capacity(needed: int) -> int:
    depth = 64
    while depth < needed:
        depth *= 2
    return depth


def _words_needed(params, folds) -> int:
    """Words the harness's largest memory holds for a GEMM of ``folds`` (its
    :func:`fold_schedule`): A or B beats, or result rows."""
    rows_out = result_row_count(folds, params)
    a_beats = sum(f.k_count if params.dataflow == "os" else f.m_count for f in folds)
    b_beats = a_beats if params.dataflow == "os" else len(folds) * params.rows
    return max(a_beats, b_beats, rows_out)


def harness_depth(params: TileParamsLike, m: int, k: int, n: int) -> int:
    """The harness memory depth :func:`run_gemm` picks for an ``m x k x n`` GEMM on a tile
    of ``params``: the smallest power of two from 64 that holds its operand beats and
    result rows."""
    params = as_tile_params(params)
    check_gemm_size(m, k, n, params)
    return _capacity(_words_needed(params, fold_schedule(params, m=m, k=k, n=n)))


def run_gemm(params: TileParamsLike, A: ArrayLike, B: ArrayLike, *, sim: str = "icarus",
             waves: bool = False, wave_format: str = "fst", seed: int = 1,
             a_gaps: Gaps = Gaps(), b_gaps: Gaps = Gaps(), c_gaps: Gaps = Gaps(),
             fault: str | None = None, hdl_clock: bool = True,
             depth: int | None = None) -> GemmRun:
    """Run ``A @ B`` under cocotb on a :class:`~supernode.rtl.tile.SystolicTile` of ``params`` (a
    :class:`~supernode.rtl.tile_params.TileParams` or a mapping of its parameters); returns a
    :class:`GemmRun`.

    Raises :class:`supernode.sim.runner.SimulationError` when a row differs from the reference
    (the bench's scoreboard names the first one) or the run times out. ``fault`` is
    passed to :class:`~supernode.sim.tile.harness.TileHarness` (a deliberate error, for testing
    the bench itself).

    The bench only starts the GEMM and waits for its end, so by default the harness
    generates its own clock (``hdl_clock``, see :class:`~supernode.sim.tile.harness.TileHarness`)
    and no clock edge passes through cocotb; ``hdl_clock=False`` runs the clock in
    cocotb's driver instead. Both give the same cycles and results.

    ``depth`` is the harness memory depth in words (default :func:`harness_depth`); the
    harness is built once per depth, so GEMMs of different sizes on one tile share a
    simulator build when they name the same depth, at least that of the largest.
    """
    params = as_tile_params(params)
    A, B = np.asarray(A), np.asarray(B)
    m, k = A.shape
    n = B.shape[1]
    check_gemm_size(m, k, n, params)
    folds = fold_schedule(params, m=m, k=k, n=n)
    needed = _words_needed(params, folds)
    if depth is None:
        depth = _capacity(needed)
    elif isinstance(depth, bool) or not isinstance(depth, int) or depth < needed:
        raise UserError(f"harness depth must be an integer of at least {needed} words for a "
                        f"{m}x{k}x{n} GEMM on this tile, not {depth!r}")
    model = predict(params=params, m=m, k=k, n=n)
    stall_factor = 1 + sum(20 for g in (a_gaps, b_gaps, c_gaps) if g.stalls)
    inputs = {
        "A": A.tolist(), "B": B.tolist(), "budget_cycles": model.total_cycles * stall_factor + 200,
        "gaps": {name: {"pattern": list(g.pattern), "threshold": round(g.probability * 256),
                        "seed": (seed * 2654435761 + index) & 0xFFFFFFFF}
                 for index, (name, g) in enumerate((("a", a_gaps), ("b", b_gaps),
                                                    ("c", c_gaps)))},
    }
    run = run_cocotb(kind="tile", component_factory=TileHarness,
                     params={**params.as_dict(), "depth": depth, "fault": fault,
                             "hdl_clock": hdl_clock},
                     test_module="supernode.sim.tile.bench", testcase="gemm", hdl_clock=hdl_clock,
                     inputs=inputs, sim=sim, waves=waves, wave_format=wave_format, seed=seed)
    counters = run.result["counters"]
    C = result_rows_to_matrix(run.result["rows"], folds, params, m=m, n=n)
    return GemmRun(
        passed=True, C=C,
        measured_cycles=counters["last_result"] - counters["first_operand"] + 1,
        measured_first_result=counters["first_result"] - counters["first_operand"],
        model=model, counters=counters, sim=sim,
        waves=str(run.waves) if run.waves else None, run_dir=str(run.run_dir),
        params=params.as_dict(), shape=(m, k, n))
