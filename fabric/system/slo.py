"""Serving under a latency limit: the batch that gives the most throughput within a time-per-token or time-to-first-token limit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from supernode.rtl.errors import UserError

from .estimate import Estimate, estimate, resolve

if TYPE_CHECKING:     # annotations only
    from .chip import TilePredict
    from .comm import FigureSource
    from .hardware import SystemSpec
    from .mapping import Mapping
    from .workload import Workload

__all__ = ["SloPoint", "SloResult", "slo_search", "latency_of"]

#: Batch sizes per rank tried for the curve (a bisection then finds the exact limit).
_GRID = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 80, 96, 112, 128, 160, 192, 256, 320,
         384, 512, 768, 1024, 1536, 2048, 3072, 4096)


def latency_of(e: Estimate) -> float:
    """The latency an SLO bounds: time per output token (decode) or to the first token
    (prefill: the step that processes the prompt)."""
    return e.time_per_output_token_s if e.phase == "decode" else e.step_s


@dataclass(frozen=True)
class SloPoint:
    """One batch on the throughput-latency curve.

    Members
    -------
    batch_per_rank : int
    batch : int
        Over the instance.
    latency_s : float
        Time per output token (decode) or time to first token (prefill).
    tokens_per_s_per_chip : float
    fits : bool
        Weights and KV cache fit the HBM left after the reserve.
    """
    batch_per_rank: int
    batch: int
    latency_s: float
    tokens_per_s_per_chip: float
    fits: bool


@dataclass(frozen=True)
class SloResult:
    """The best batch within the limit and the curve searched.

    Members
    -------
    limit_s : float
    best : Estimate
    curve : tuple of SloPoint
        Every batch estimated, smallest first.
    """
    limit_s: float
    best: Estimate
    curve: tuple

    def to_dict(self) -> dict:
        return {"limit_s": self.limit_s, "best": self.best.to_dict(),
                "batch_per_rank": self.best.batch // self.best.ranks,
                "curve": [vars(p) for p in self.curve]}


def slo_search(system: SystemSpec | str, workload: Workload | str, *, phase: str,
               limit_s: float, mapping: Mapping | str | None = None,
               network: FigureSource | None = None, predict: TilePredict | None = None,
               seq_len: int | None = None, max_batch_per_rank: int = 1024,
               **run: object) -> SloResult:
    """The batch per rank that maximises throughput with latency at most ``limit_s``.

    Decode bounds the time per output token, prefill the time to first token (one
    prefill step). Where the deployment runs two-batch overlap or a spatial pipeline, each
    batch is estimated with and without it and the faster kept (servers turn it off at
    small batches). The batch grid is estimated for the curve; then the largest batch
    within the limit and within HBM is found by bisection (latency and throughput rise
    with the batch). Raises :class:`UserError` when even one sequence per rank misses the
    limit or does not fit.
    """
    if isinstance(limit_s, bool) or not isinstance(limit_s, (int, float)) or not limit_s > 0:
        raise UserError(f"latency limit must be a positive time, not {limit_s!r}")
    workload, system, mapping = resolve(workload, system, mapping, phase)
    ranks = mapping.ranks
    cache = {}

    # Two-batch overlap, like a spatial pipeline, pays only above some batch (both run
    # every kernel twice, on half the sequences; the pipeline also gives each op only its
    # stream's cores); a server switches it off below that, so where the deployment
    # overlaps micro-batches each batch takes the faster of that and the serial program.
    overlapped = mapping.two_batch_overlap or mapping.pipeline != "none"
    choices = [mapping] + ([mapping.without_overlap()] if overlapped else [])

    def at(per_rank: int):
        if per_rank not in cache:
            runs = [estimate(system, workload, phase=phase, batch=per_rank * ranks,
                             seq_len=seq_len, mapping=m, network=network, predict=predict,
                             refuse_unfit=False, **run) for m in choices]
            cache[per_rank] = min(runs, key=latency_of)
        return cache[per_rank]

    def ok(per_rank):
        e = at(per_rank)
        return e.fits_in_hbm and latency_of(e) <= limit_s

    first = at(1)
    if not first.fits_in_hbm:
        raise UserError(f"one sequence per rank of {first.workload} does not fit "
                        f"{first.system}'s HBM at sequence {first.seq_len}; accepted: a "
                        f"shorter sequence or another deployment")
    if not ok(1):
        raise UserError(
            f"no batch meets the {'time per output token' if phase == 'decode' else 'time to first token'} "
            f"limit of {limit_s * 1e3:g} ms on {first.system}: one sequence per rank already "
            f"takes {latency_of(first) * 1e3:.1f} ms; accepted: a limit above that")
    grid = [b for b in _GRID if b <= max_batch_per_rank]
    for b in grid:
        at(b)
    lo = max(b for b in grid if ok(b))
    bigger = [b for b in grid if b > lo]
    hi = bigger[0] if bigger else lo
    while hi - lo > 1 and not ok(hi):
        mid = (lo + hi) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid
    best = at(lo)
    curve = tuple(SloPoint(batch_per_rank=b, batch=at(b).batch, latency_s=latency_of(at(b)),
                           tokens_per_s_per_chip=at(b).tokens_per_s_per_chip,
                           fits=at(b).fits_in_hbm)
                  for b in sorted(cache))
    return SloResult(limit_s=float(limit_s), best=best, curve=curve)
