"""Expert load across the ranks of an expert-parallel group: popularity skew, redundant copies, placement and sampling noise."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

import numpy as np

__all__ = ["ExpertLoad", "expert_load", "step_spread", "popularity", "distinct_nodes"]

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
        The same with the sampling noise of a finite step added: the factor by which the
        busiest rank's expert work exceeds the mean.
    copies : int
        Routed expert copies in the group (experts plus redundant copies).
    """
    ranks: int
    slots: int
    placement_imbalance: float
    imbalance: float
    copies: int


@lru_cache(maxsize=4096)
def _placement(experts: int, ranks: int, redundant: int, balancer: bool, cv: float):
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
    rank_load = [0.0] * ranks
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
            count[best] += 1
            hosted[best].add(e)
    else:
        for i, (load, _) in enumerate(items):
            rank_load[i // slots if slots else 0] += load
    mean = sum(rank_load) / ranks
    return slots, max(rank_load) / mean, total


def step_spread(sequence_cv: float, sequences: float) -> float:
    """The spread of one step's expert loads around their long-run values.

    The tokens of a sequence route alike, so a step gathering ``sequences`` sequences
    deviates from the long run by ``sequence_cv / sqrt(sequences)``.
    """
    return sequence_cv / math.sqrt(max(1.0, sequences))


def expert_load(*, experts: int, ranks: int, redundant: int = 0, balancer: bool = False,
                cv: float = 0.0, step_cv: float = 0.0,
                tokens_per_rank: float = 1.0) -> ExpertLoad:
    """The busiest rank's share of the routed-expert work.

    ``cv`` is the spread of the experts' long-run loads, which placement by load
    (``balancer``) and redundant copies even out; ``step_cv`` is the spread of one step's
    expert loads around their long-run values, which no placement made in advance can
    follow. ``tokens_per_rank`` is the mean number of (token, expert) assignments each
    rank receives in one step. The busiest rank carries its placement share, times the
    expected maximum over the ranks of the step's deviation (each rank averages its
    ``slots`` copies: ``1 + sqrt(2 ln ranks) x step_cv / sqrt(slots)``), plus the expected
    maximum of the sampling noise (Poisson, normal tail: ``sqrt(2 ln ranks x load)``).
    """
    slots, placed, copies = _placement(experts, ranks, redundant, balancer, round(cv, 6))
    tail = math.sqrt(2.0 * math.log(ranks)) if ranks > 1 else 0.0
    drift = 1.0 + tail * step_cv / math.sqrt(slots)
    lam = max(tokens_per_rank, 1e-9) * placed * drift
    noise = math.sqrt(2.0 * math.log(ranks) * lam) if ranks > 1 else 0.0
    return ExpertLoad(ranks=ranks, slots=slots, placement_imbalance=placed,
                      imbalance=(lam + noise) / max(tokens_per_rank, 1e-9), copies=copies)


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
