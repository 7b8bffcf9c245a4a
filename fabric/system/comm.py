"""On-fabric communication time from the RTL-calibrated network figures, extrapolated to the full fabric."""

from __future__ import annotations

from dataclasses import dataclass

from rtl.errors import UserError

__all__ = ["CommEstimate", "NetworkSource", "collective_time", "EXTRAPOLATION",
           "PATTERN_OF", "wire_bytes"]

#: Traffic pattern whose saturation figure applies to each collective. The direct
#: (one-shot) algorithms a non-blocking switch favours send equal chunks to every peer:
#: reduce-scatter / all-gather look like uniform random traffic to the switch, all-to-all
#: is the model's staggered all-to-all, a pipeline send is taken as uniform (conservative).
PATTERN_OF = {"all_reduce": "uniform", "all_gather": "uniform", "reduce_scatter": "uniform",
              "all_to_all": "all_to_all", "send": "uniform"}

#: Rounds of end-to-end latency each collective pays.
_ROUNDS = {"all_reduce": 2, "all_gather": 1, "reduce_scatter": 1, "all_to_all": 1, "send": 1}

EXTRAPOLATION = (
    "The network model runs a two-tier Clos of the router's micro-architecture of the "
    "shape the system file gives (its endpoint count is given with the figures); a group "
    "larger than that Clos gets the same figures: the per-hop latency is a property of "
    "one router and the per-port saturation throughput of a non-blocking Clos is set by "
    "its routers' allocators more than by its size; the size enters through the hop count "
    "of the tier the group spans (1 switch inside a node, 3 across a two-tier Clos) and "
    "the tier's oversubscription, which divides the per-port bandwidth. Link bandwidth "
    "per package is the published line rate (one flit per cycle per port); the switch "
    "clock that turns hop cycles into seconds is an assumption of the system file.")


def wire_bytes(kind: str, size: float, group: int) -> float:
    """Bytes each package injects for a collective of ``size`` bytes over ``group``."""
    if kind == "send":
        return size
    share = (group - 1) / group
    return (2.0 if kind == "all_reduce" else 1.0) * share * size


@dataclass(frozen=True)
class CommEstimate:
    """Time of one collective on one tier, with the figures it came from.

    Members
    -------
    name, kind, tier, pattern : str
    bytes_per_chip : float
        The collective's size per package.
    group : int
    wire_bytes : float
        Bytes each package injects.
    hops : int
        Switch chips crossed (from the tier).
    latency_s : float
        Rounds x (end-point latency + hops x hop latency / switch clock).
    transfer_s : float
        ``wire_bytes / effective bandwidth``.
    time_s : float
        ``latency_s + transfer_s``.
    effective_bandwidth_bytes_per_s : float
        Saturation throughput x tier bandwidth / oversubscription.
    saturation_throughput : float
        Accepted flits/cycle/port from the network model for ``pattern``.
    roofline_s : float
        ``wire_bytes / tier bandwidth``: the bandwidth-only bound, shown beside the estimate.
    extrapolated : bool
        The group is larger than the Clos the network model ran.
    """
    name: str
    kind: str
    tier: str
    pattern: str
    bytes_per_chip: float
    group: int
    wire_bytes: float
    hops: int
    latency_s: float
    transfer_s: float
    time_s: float
    effective_bandwidth_bytes_per_s: float
    saturation_throughput: float
    roofline_s: float
    extrapolated: bool


#: Figures already obtained in this process, by pattern and router parameters.
_FIGURES = {}


class NetworkSource:
    """Network figures for one system, one traffic pattern at a time, memoised.

    By default the figures come from :func:`fabric.network.clos_figures` with the router
    parameters of the system file; ``figures`` may be any callable ``pattern ->
    NetworkFigures``-shaped object (tests use small fakes).
    """

    def __init__(self, system, figures=None):
        self.system = system
        self._figures = figures
        self._memo = {}

    def __call__(self, pattern: str):
        if pattern not in self._memo:
            if self._figures is not None:
                self._memo[pattern] = self._figures(pattern)
            else:
                key = (pattern, tuple(sorted(self.system.router.items())))
                if key not in _FIGURES:
                    from fabric.network import clos_figures
                    _FIGURES[key] = clos_figures(pattern=pattern, **dict(self.system.router))
                self._memo[pattern] = _FIGURES[key]
        return self._memo[pattern]

    def endpoints(self, pattern: str) -> int:
        """Endpoints of the Clos the figures were measured on (0 when unknown)."""
        clos = getattr(self(pattern), "clos", None) or {}
        return int(clos.get("endpoints_per_leaf", 0) * clos.get("leaves", 0))


def collective_time(comm, system, network: NetworkSource) -> CommEstimate:
    """Seconds for ``comm`` (a :class:`~fabric.system.workload.Comm`) on ``system``.

    ``time = rounds x (end-point latency + hops x hop_latency_cycles / switch clock)
    + wire bytes / (saturation throughput x tier bandwidth / oversubscription)``;
    see :data:`EXTRAPOLATION` for how the figures reach groups larger than the model ran.
    """
    if comm.kind not in PATTERN_OF:
        raise UserError(f"collective {comm.kind!r} is not accepted; accepted: "
                        f"{', '.join(PATTERN_OF)}")
    tier = system.tier(comm.tier)
    if comm.group > tier.span_chips:
        raise UserError(f"a group of {comm.group} packages does not fit tier {tier.name!r} "
                        f"of {system.name}, which spans {tier.span_chips}")
    pattern = PATTERN_OF[comm.kind]
    figures = network(pattern)
    sat = float(figures.saturation_throughput)
    if not 0.0 < sat <= 1.0:
        raise UserError(f"network saturation throughput {sat!r} is outside (0, 1] flits per "
                        f"cycle per port")
    wire = wire_bytes(comm.kind, comm.bytes_per_chip, comm.group)
    if comm.group <= 1:
        wire = 0.0
    hop_s = figures.hop_latency_cycles / system.switch_clock_hz
    rounds = _ROUNDS[comm.kind] if wire else 0
    latency = rounds * (system.endpoint_latency_ns * 1e-9 + tier.switch_hops * hop_s)
    bandwidth = sat * tier.bandwidth_bytes_per_s / tier.oversubscription
    transfer = wire / bandwidth
    return CommEstimate(name=comm.name, kind=comm.kind, tier=tier.name, pattern=pattern,
                        bytes_per_chip=comm.bytes_per_chip, group=comm.group, wire_bytes=wire,
                        hops=tier.switch_hops, latency_s=latency, transfer_s=transfer,
                        time_s=latency + transfer, effective_bandwidth_bytes_per_s=bandwidth,
                        saturation_throughput=sat,
                        roofline_s=wire / tier.bandwidth_bytes_per_s,
                        extrapolated=comm.group > network.endpoints(pattern))
