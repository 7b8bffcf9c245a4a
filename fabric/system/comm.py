"""On-fabric communication time from the RTL-calibrated network figures, extrapolated to the full fabric."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from supernode.rtl.errors import UserError

from .hardware import SCALE_OUT_PLANE

if TYPE_CHECKING:
    from supernode.fabric.network.figures import NetworkFigures

    from .hardware import SystemSpec
    from .program import Comm

#: Network figures by traffic pattern: ``pattern -> NetworkFigures`` (or an object of the
#: same shape).
FigureSource: TypeAlias = "Callable[[str], NetworkFigures]"

__all__ = ["CommEstimate", "NetworkSource", "collective_time", "moe_time", "EXTRAPOLATION",
           "PATTERN_OF", "wire_bytes"]

#: Traffic pattern whose saturation figure applies to each collective. The direct
#: (one-shot) algorithms a non-blocking switch favours send equal chunks to every peer:
#: reduce-scatter / all-gather look like uniform random traffic to the switch, all-to-all
#: is the model's staggered all-to-all, a pipeline send is taken as uniform (conservative).
PATTERN_OF = {"all_reduce": "uniform", "all_gather": "uniform", "reduce_scatter": "uniform",
              "all_to_all": "all_to_all", "send": "uniform", "dispatch": "all_to_all",
              "combine": "all_to_all"}

#: Rounds of end-to-end latency each collective pays.
_ROUNDS = {"all_reduce": 2, "all_gather": 1, "reduce_scatter": 1, "all_to_all": 1, "send": 1,
           "dispatch": 1, "combine": 1}

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
    if kind in ("send", "dispatch", "combine"):
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
_FIGURES: dict[tuple[str, tuple[tuple[str, Any], ...]], NetworkFigures] = {}


class NetworkSource:
    """Network figures for one system, one traffic pattern at a time, memoised.

    By default the figures come from :func:`supernode.fabric.network.clos_figures` with the router
    parameters of the system file; ``figures`` may be any callable ``pattern ->
    NetworkFigures``-shaped object (tests use small fakes).
    """

    def __init__(self, system: SystemSpec, figures: FigureSource | None = None) -> None:
        self.system = system
        self._figures = figures
        self._memo: dict[str, NetworkFigures] = {}

    def __call__(self, pattern: str) -> NetworkFigures:
        if pattern not in self._memo:
            if self._figures is not None:
                self._memo[pattern] = self._figures(pattern)
            else:
                key = (pattern, tuple(sorted(self.system.router.items())))
                if key not in _FIGURES:
                    # deferred: the network model compiles its engine with numba
                    from supernode.fabric.network import clos_figures
                    _FIGURES[key] = clos_figures(pattern=pattern, **dict(self.system.router))
                self._memo[pattern] = _FIGURES[key]
        return self._memo[pattern]

    def endpoints(self, pattern: str) -> int:
        """Endpoints of the Clos the figures were measured on (0 when unknown)."""
        clos = getattr(self(pattern), "clos", None) or {}
        return int(clos.get("endpoints_per_leaf", 0) * clos.get("leaves", 0))


def moe_time(comm: Comm, system: SystemSpec, network: NetworkSource) -> CommEstimate:
    """Seconds for an expert dispatch or combine (``comm.kind``) as serving kernels run it.

    ``time = kernel latency + peers x peer latency + hops x hop latency + max over planes
    of the busiest rank's bytes / (saturation x line rate x end-point efficiency)``, or, for
    a bulk kernel inside one plane of a system that publishes it, over the bandwidth
    measured for such kernels at that group size (:meth:`SystemSpec.bulk_rate`). The
    busiest rank moves ``imbalance`` times the mean. Inside one scale-up domain every pair crosses that
    domain's links; a group spread over scale-up nodes sends the pairs whose expert is in
    another node over the scale-out plane, or, with node-level deduplication
    (``remote_nodes``), each token once per remote node and forwards it inside the node.
    """
    tier = system.tier(comm.tier)
    if comm.group > tier.span_chips:
        raise UserError(f"a group of {comm.group} ranks does not fit tier {tier.name!r} "
                        f"of {system.name}, which spans {tier.span_chips}")
    if system.low_latency_scale_out and comm.low_latency:
        # Low-latency kernels that reach every peer over the scale-out plane.
        tier = next((t for t in system.tiers if t.plane == SCALE_OUT_PLANE
                     and t.span_chips >= comm.group), tier)
    figures = network(PATTERN_OF[comm.kind])
    sat = float(figures.saturation_throughput)
    hop_s = figures.hop_latency_cycles / system.switch_clock_hz
    fixed = ((system.dispatch_latency_ns if comm.kind == "dispatch"
              else system.combine_latency_ns)
             + system.peer_latency_ns * (comm.group - 1)) * 1e-9
    group = comm.group
    pairs = comm.bytes_per_chip * comm.imbalance
    node = system.scale_up_tiers[0] if system.scale_up_tiers else tier
    planes = []
    if system.low_latency_scale_out and comm.low_latency:
        planes = [(pairs * (group - 1) / group, tier)]
        hops = tier.switch_hops
    elif tier.plane == SCALE_OUT_PLANE and node.span_chips < group:
        inside = node.span_chips
        if comm.remote_nodes and comm.copies:
            out = pairs / comm.copies * comm.remote_nodes
            forwarded = pairs * (inside - 1) / inside
        else:
            out = pairs * (group - inside) / group
            forwarded = pairs * (inside - 1) / group
        planes = [(out, tier), (forwarded, node)]
        hops = tier.switch_hops
    else:
        planes = [(pairs * (group - 1) / group, tier)]
        hops = tier.switch_hops
    # Bulk kernels over one plane run at the bandwidth measured for them at this group size,
    # where the system publishes it.
    bulk = (system.bulk_rate(comm.kind, group) if not comm.low_latency and len(planes) == 1
            else None)
    transfer, wire, roof = 0.0, 0.0, 0.0
    bandwidth = None
    for size, plane in planes:
        bw = bulk or (sat * plane.bandwidth_bytes_per_s * plane.efficiency
                      / plane.oversubscription)
        if size / bw >= transfer:
            transfer, bandwidth = size / bw, bw
        wire += size
        roof = max(roof, size / plane.bandwidth_bytes_per_s)
    latency = fixed + hops * hop_s
    return CommEstimate(name=comm.name, kind=comm.kind, tier=tier.name,
                        pattern=PATTERN_OF[comm.kind], bytes_per_chip=comm.bytes_per_chip,
                        group=group, wire_bytes=wire, hops=hops, latency_s=latency,
                        transfer_s=transfer, time_s=latency + transfer,
                        effective_bandwidth_bytes_per_s=bandwidth or 0.0,
                        saturation_throughput=sat, roofline_s=roof,
                        extrapolated=group > network.endpoints(PATTERN_OF[comm.kind]))


def collective_time(comm: Comm, system: SystemSpec, network: NetworkSource) -> CommEstimate:
    """Seconds for ``comm`` (a :class:`~supernode.fabric.system.program.Comm`) on ``system``.

    ``time = rounds x (end-point latency + hops x hop_latency_cycles / switch clock)
    + wire bytes / (saturation throughput x tier bandwidth / oversubscription)``;
    see :data:`EXTRAPOLATION` for how the figures reach groups larger than the model ran.
    """
    if comm.kind not in PATTERN_OF:
        raise UserError(f"collective {comm.kind!r} is not accepted; accepted: "
                        f"{', '.join(PATTERN_OF)}")
    if comm.kind in ("dispatch", "combine"):
        return moe_time(comm, system, network)
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
    bandwidth = sat * tier.bandwidth_bytes_per_s * tier.efficiency / tier.oversubscription
    transfer = wire / bandwidth
    return CommEstimate(name=comm.name, kind=comm.kind, tier=tier.name, pattern=pattern,
                        bytes_per_chip=comm.bytes_per_chip, group=comm.group, wire_bytes=wire,
                        hops=tier.switch_hops, latency_s=latency, transfer_s=transfer,
                        time_s=latency + transfer, effective_bandwidth_bytes_per_s=bandwidth,
                        saturation_throughput=sat,
                        roofline_s=wire / tier.bandwidth_bytes_per_s,
                        extrapolated=comm.group > network.endpoints(pattern))
