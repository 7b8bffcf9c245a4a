"""Expert load across the ranks of an expert-parallel group: popularity skew, redundant copies, placement and sampling noise."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

import numpy as np

__all__ = ["ExpertLoad", "expert_load", "expected_maximum", "step_spread", "popularity",
           "distinct_nodes"]

#: Seed of the fixed order in which experts of different popularity sit by index. Any
#: seed gives the same spread of loads; the order only decides which experts share a rank
#: when experts are placed by index.
_ORDER_SEED = 2025


@lru_cache(maxsize=64)
def popularity(experts: int, cv: float) -> tuple:
    """Relative load of each routed expert (mean 1) for a coefficient of variation ``cv``.

    The loads are the quantiles of a log-normal distribution with that spread, one per
    expert at evenly spaced probabilities, in a fixed shuffled order: a deterministic
    stand-in for a measured routing histogram with the same spread.
    """
    if cv <= 0:
        return tuple([1.0] * experts)
    sigma = math.sqrt(math.log1p(cv * cv))
    normal = NormalDist()
    loads = np.exp([sigma * normal.inv_cdf((i + 0.5) / experts) for i in range(experts)])
    loads /= loads.mean()
    order = np.random.default_rng(_ORDER_SEED).permutation(experts)
    return tuple(float(x) for x in loads[order])


@dataclass(frozen=True)
class ExpertLoad:
    """How routed-expert work lands on the ranks of one expert-parallel group.

    Members
    -------
    ranks : int
        Ranks hosting routed experts.
    slots : int
        Expert copies on the busiest rank.
    placement_imbalance : float
        Load of the busiest rank over the mean rank load, from popularity and placement.
    imbalance : float
        The expected load of one step's busiest rank over the mean, the step's drift and
        sampling noise included: the factor by which the busiest rank's expert work
        exceeds the mean.
    spread : float
        The standard deviation of one step's rank loads over their mean (what a routing
        histogram's "std / mean" measures).
    copies : int
        Routed expert copies in the group (experts plus redundant copies).
    """
    ranks: int
    slots: int
    placement_imbalance: float
    imbalance: float
    spread: float
    copies: int


@lru_cache(maxsize=4096)
def _placement(experts: int, ranks: int, redundant: int, balancer: bool, cv: float):
    """Each rank's long-run load (its copies' loads summed) and the sum of their squares."""
    loads = list(popularity(experts, cv))
    copies = [1] * experts
    if redundant:
        # Redundant copies go to the experts that carry the most load per copy.
        for _ in range(redundant):
            hottest = max(range(experts), key=lambda e: loads[e] / copies[e])
            copies[hottest] += 1
    items = [(loads[e] / copies[e], e) for e in range(experts) for _ in range(copies[e])]
    total = len(items)
    slots = math.ceil(total / ranks)
    rank_load = np.zeros(ranks)
    rank_square = np.zeros(ranks)
    if balancer:
        # Heaviest copy first onto the least loaded rank with a free slot, never two
        # copies of one expert on a rank.
        count = [0] * ranks
        hosted = [set() for _ in range(ranks)]
        for load, e in sorted(items, reverse=True):
            best = min((r for r in range(ranks) if count[r] < slots and e not in hosted[r]),
                       key=lambda r: rank_load[r], default=None)
            if best is None:
                best = min((r for r in range(ranks) if count[r] < slots),
                           key=lambda r: rank_load[r])
            rank_load[best] += load
            rank_square[best] += load * load
            count[best] += 1
            hosted[best].add(e)
    else:
        for i, (load, _) in enumerate(items):
            rank_load[i // slots if slots else 0] += load
            rank_square[i // slots if slots else 0] += load * load
    rank_load.flags.writeable = rank_square.flags.writeable = False
    return slots, rank_load, rank_square, total


def _normal_cdf(z: np.ndarray) -> np.ndarray:
    """The standard normal distribution function (Abramowitz and Stegun 7.1.26, error
    below 1e-7), on arrays."""
    x = np.abs(z) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741
                + t * (-1.453152027 + t * 1.061405429))))
    erf = 1.0 - poly * np.exp(-x * x)
    return 0.5 * (1.0 + np.sign(z) * erf)


def expected_maximum(mean: np.ndarray, sd: np.ndarray, points: int = 600) -> float:
    """The expected largest of independent normal variables of these means and standard
    deviations: ``E[max] = lo + integral from lo of (1 - F(x)) dx``, ``F`` the product of
    their distribution functions, ``lo`` far enough below the largest mean that ``F(lo)``
    is nil."""
    mean = np.asarray(mean, dtype=float)
    sd = np.maximum(np.asarray(sd, dtype=float), 1e-12)
    top = int(np.argmax(mean))
    lo = mean[top] - 9.0 * sd[top]
    hi = float(np.max(mean + 9.0 * sd))
    # Variables that can never be the largest change nothing; leave them out.
    keep = mean + 9.0 * sd >= lo
    mean, sd = mean[keep], sd[keep]
    x = np.linspace(lo, hi, points)
    below = np.exp(np.sum(np.log(np.maximum(
        _normal_cdf((x[:, None] - mean[None, :]) / sd[None, :]), 1e-300)), axis=1))
    tail = 1.0 - below
    return float(lo + np.sum((tail[1:] + tail[:-1]) * np.diff(x)) / 2.0)


def step_spread(sequence_cv: float, sequences: float) -> float:
    """The spread of one step's expert loads around their long-run values.

    The tokens of a sequence route alike, so a step gathering ``sequences`` sequences
    deviates from the long run by ``sequence_cv / sqrt(sequences)``.
    """
    return sequence_cv / math.sqrt(max(1.0, sequences))


@lru_cache(maxsize=4096)
def expert_load(*, experts: int, ranks: int, redundant: int = 0, balancer: bool = False,
                cv: float = 0.0, step_cv: float = 0.0,
                tokens_per_rank: float = 1.0) -> ExpertLoad:
    """The busiest rank's share of the routed-expert work.

    ``cv`` is the spread of the experts' long-run loads, which placement by load
    (``balancer``) and redundant copies even out; ``step_cv`` is the spread of one step's
    expert loads around their long-run values, which no placement made in advance can
    follow. ``tokens_per_rank`` is the mean number of (token, expert) assignments each
    rank receives in one step. In one step a rank receives its placed share of the tokens,
    each of its copies drifting by ``step_cv`` of its own load (independently), plus the
    Poisson noise of a finite count; taken as normal, the busiest rank's expected load is
    the expected maximum over the ranks (:func:`expected_maximum`).
    """
    slots, placed, square, copies = _placement(experts, ranks, redundant, balancer,
                                               round(cv, 6))
    tokens = max(tokens_per_rank, 1e-9)
    unit = tokens / float(placed.mean())
    mean = placed * unit
    variance = square * (unit * step_cv) ** 2 + mean
    spread = math.sqrt(float(np.mean((mean - tokens) ** 2 + variance))) / tokens
    busiest = expected_maximum(mean, np.sqrt(variance)) if ranks > 1 else tokens
    return ExpertLoad(ranks=ranks, slots=slots,
                      placement_imbalance=float(placed.max() / placed.mean()),
                      imbalance=busiest / tokens, spread=spread, copies=copies)


def distinct_nodes(picks: int, nodes: int, per_node: int, limit: int) -> float:
    """Expected number of nodes a token's ``picks`` experts fall on, at most ``limit``.

    Experts are spread evenly over ``nodes`` nodes of ``per_node`` expert slots each and
    picked without replacement; node-limited routing keeps a token to ``limit`` nodes.
    """
    if nodes <= 1:
        return 1.0
    total = nodes * per_node
    if picks >= total:
        return float(min(nodes, limit))
    # P(a node gets none of the picks) = C(total - per_node, picks) / C(total, picks).
    miss = 1.0
    for i in range(picks):
        miss *= (total - per_node - i) / (total - i) if total - per_node - i > 0 else 0.0
    return min(float(limit), nodes * (1.0 - miss))
