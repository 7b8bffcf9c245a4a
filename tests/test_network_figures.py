"""The seam to the system layer: NetworkFigures from clos_figures."""

import pytest

from supernode.fabric.network import NetworkFigures, clos_figures
from supernode.fabric.network import figures
from supernode.rtl.router_params import RouterParams
from supernode.rtl.errors import UserError

SMALL = dict(ports=4, vcs=2, buffer_depth=4, voq=True, allocator="islip")


def test_figures_come_from_the_rtl_and_the_model():
    fig = clos_figures(**SMALL)
    assert isinstance(fig, NetworkFigures)
    rtl = RouterParams(**SMALL)
    assert fig.hop_latency_cycles == rtl.latency
    assert fig.credit_round_trip_cycles == rtl.credit_round_trip
    assert 0 < fig.saturation_throughput <= 1
    assert fig.pattern == "uniform"
    assert fig.router["ports"] == 4 and fig.router["voq"] is True
    assert "model" in fig.source and "\n" not in fig.source


def test_repeated_calls_are_cached(monkeypatch):
    first = clos_figures(**SMALL)

    def ran_again(*args, **kwargs):
        pytest.fail("the network model ran again for figures already measured")

    monkeypatch.setattr(figures, "run_model", ran_again)
    assert clos_figures(**SMALL) == first                 # from memory
    monkeypatch.setattr(figures, "_MEMO", {})
    assert clos_figures(**SMALL) == first                 # from the cache on disk


def test_separable_iterations_reach_the_figures():
    # A second allocator iteration lets an input whose pick lost ask again: more VCs pay.
    router = dict(ports=8, vcs=4, buffer_depth=8, allocator="separable", voq=False)
    two = clos_figures(**router, separable_iterations=2)
    assert two.router["separable_iterations"] == 2
    # Two iterations are the default.
    assert clos_figures(**router).saturation_throughput == two.saturation_throughput
    one = clos_figures(**router, separable_iterations=1)
    assert one.router["separable_iterations"] == 1
    assert two.saturation_throughput > one.saturation_throughput + 0.05


def test_bad_pattern_and_parameter_are_named():
    with pytest.raises(UserError, match="'zigzag'"):
        clos_figures(pattern="zigzag")
    with pytest.raises(UserError, match="'radix'"):
        clos_figures(radix=8)
    with pytest.raises(ValueError, match="vcs must be an integer from 1 to 8, not 0"):
        clos_figures(vcs=0)


def test_all_to_all_cycles_from_the_model():
    from supernode.fabric.network.collectives import all_to_all_cycles
    small = all_to_all_cycles(flits_per_pair=4, ports=4)
    big = all_to_all_cycles(flits_per_pair=16, ports=4)
    assert small["endpoints"] == 8 and small["flits_per_endpoint"] == 7 * 4
    # An endpoint injects at most one flit per cycle, and the last flit needs a path.
    assert big["cycles"] >= big["flits_per_endpoint"] + 1
    assert big["cycles"] > small["cycles"]
    assert 0 < big["throughput"] <= 1


def test_all_reduce_cycles_use_the_figures():
    from supernode.fabric.network.collectives import all_reduce_cycles
    r = all_reduce_cycles(flits_per_endpoint=800, **SMALL)
    fig = clos_figures(**SMALL)
    assert r["steps"] == 2 * (r["endpoints"] - 1)
    assert r["step_cycles"] == 3 * fig.hop_latency_cycles + 100 / fig.saturation_throughput
    with pytest.raises(UserError, match="flits_per_endpoint must be a positive integer, not 0"):
        all_reduce_cycles(flits_per_endpoint=0)
