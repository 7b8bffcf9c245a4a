"""Two-tier Clos: parameters, zero-load latency per path length, and RTL (Amaranth sim) against the model."""

import pytest

from supernode.fabric.network.traffic import TrafficSpec
from supernode.rtl.clos import Clos
from supernode.rtl.router_params import RouterParams

ROUTER_LATENCY = RouterParams().latency
from supernode.sim.router.common import Design, run_amaranth, run_model_for


@pytest.mark.parametrize("kwargs, message", [
    (dict(endpoints_per_leaf=0), "endpoints_per_leaf must be an integer from 1 to 15, not 0"),
    (dict(leaves=1), "leaves must be an integer from 2 to 16, not 1"),
    (dict(spines=0), "spines must be an integer from 1 to 15, not 0"),
    (dict(endpoints_per_leaf=10, spines=8),
     "endpoints_per_leaf + spines is the leaf radix and must be at most 16, not 18"),
    (dict(up_routing="adaptive"),
     "up_routing must be one of deterministic, balanced, not 'adaptive'"),
    (dict(spines=1, up_routing="balanced"),
     "balanced up-routing needs at least 2 spines, not 1"),
    (dict(ports=8), "router parameter must be one of vcs, buffer_depth, flit_width, "
                    "allocator, separable_iterations, islip_iterations, voq, stats, "
                    "packet_id_width, not 'ports'"),
    (dict(vcs=9), "vcs must be an integer from 1 to 8, not 9"),
])
def test_invalid_parameters_are_named(kwargs, message):
    with pytest.raises(ValueError) as info:
        Clos(**kwargs)
    assert message in str(info.value)


def test_shape_and_paths():
    c = Clos(endpoints_per_leaf=4, leaves=4, spines=2)
    p = c.params
    assert c.endpoints == 16 and len(c.inp) == 16 and len(p.wires) == 8
    assert p.hops(0, 3) == 1 and p.hops(0, 4) == 3
    assert p.zero_load_latency(0, 4, 2) == 3 * ROUTER_LATENCY + 1
    assert p.leaf_params[1].routes[5] == 1          # local endpoint 5 on leaf 1, port 1
    assert p.leaf_params[1].routes[2] == 4 + 2 % 2  # remote: up to spine dest % spines
    assert p.spine_params[0].routes[13] == 3        # spine: down to leaf 13 // 4


@pytest.mark.parametrize("length", [1, 3])
def test_zero_load_latency_exact_for_both_path_lengths(length):
    """At near-zero load the fastest packet on each path length takes exactly
    ``hops * latency + length - 1`` cycles, in the RTL and in the model."""
    design = Design("clos", dict(endpoints_per_leaf=2, leaves=2, spines=2, vcs=1))
    spec = TrafficSpec(load=0.02, packet_length=length, warmup=0, measure=500, seed=4)
    rtl = run_amaranth(design, spec)
    model = run_model_for(design, spec)
    one_hop = str(ROUTER_LATENCY + length - 1)
    three_hops = str(3 * ROUTER_LATENCY + length - 1)
    assert rtl["min_excess_by_zero_load"] == {one_hop: 0, three_hops: 0}
    assert model == rtl


@pytest.mark.parametrize("routing, traffic", [
    ("deterministic", dict(pattern="all_to_all", load=0.6, packet_length=2,
                           backpressure="periodic:1110")),
    ("balanced", dict(pattern="uniform", load=0.7, packet_length=1, ordered=False)),
    ("deterministic", dict(pattern="transpose", load=0.9, packet_length=3)),
])
def test_model_matches_rtl_cycle_for_cycle(routing, traffic):
    design = Design("clos", dict(endpoints_per_leaf=2, leaves=2, spines=2, vcs=2,
                                 buffer_depth=2, up_routing=routing))
    spec = TrafficSpec(warmup=20, measure=150, seed=9, **traffic)
    rtl = run_amaranth(design, spec)
    assert rtl["measured_packets"] > 30
    assert run_model_for(design, spec) == rtl
    if routing == "balanced":     # packets did overtake across spines, and were resequenced
        assert rtl["resequenced_packets"] > 0
