"""Calibration on Verilator: the model's latency-load curve and saturation within 5% of the RTL."""

import dataclasses

import pytest

from supernode.fabric.network.traffic import TrafficSpec
from supernode.sim.router.common import REFERENCE_DESIGNS, run_rtl_points, run_model_for

#: Every test here compares the model with the RTL on Verilator.
pytestmark = pytest.mark.simulator("verilator")

TOLERANCE = 0.05
LOADS = (0.2, 0.4, 0.6, 0.8, 1.0)
PATTERNS = ("uniform", "all_to_all")

DESIGNS = REFERENCE_DESIGNS
BASE = {
    "router4": TrafficSpec(packet_length=2, warmup=200, measure=1000, drain=3000, seed=31),
    "clos16": TrafficSpec(packet_length=4, warmup=200, measure=800, drain=3000, seed=32),
}

_RESULTS = {}


def _results(name):
    """RTL (one Verilator process for every point) and model, per pattern and load."""
    if name not in _RESULTS:
        design = DESIGNS[name]
        specs = [dataclasses.replace(BASE[name], pattern=p, load=x)
                 for p in PATTERNS for x in LOADS]
        rtl, _ = run_rtl_points(design, specs, sim="verilator")
        model = [run_model_for(design, s) for s in specs]
        _RESULTS[name] = {(s.pattern, s.load): (r, m) for s, r, m in zip(specs, rtl, model)}
    return _RESULTS[name]


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_latency_load_curve_within_tolerance(name, pattern):
    results = _results(name)
    compared = 0
    for load in LOADS:
        rtl, model = results[(pattern, load)]
        assert rtl["passed"], rtl["error"]
        assert model["accepted_throughput"] == pytest.approx(rtl["accepted_throughput"],
                                                             rel=TOLERANCE)
        if not rtl["saturated"]:
            assert model["latency_mean"] == pytest.approx(rtl["latency_mean"], rel=TOLERANCE)
            compared += 1
    assert compared >= 2


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_saturation_within_tolerance(name, pattern):
    rtl, model = _results(name)[(pattern, 1.0)]
    assert 0 < rtl["accepted_throughput"] < 1
    assert model["accepted_throughput"] == pytest.approx(rtl["accepted_throughput"],
                                                         rel=TOLERANCE)


@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_zero_load_latency_exact_on_every_path_length(name):
    """At the lightest load the least latency on each path length is its zero-load latency
    (``hops * Router.latency + length - 1``) in the RTL, and the model agrees."""
    rtl, model = _results(name)[("uniform", LOADS[0])]
    excess = rtl["min_excess_by_zero_load"]
    assert excess and set(excess.values()) == {0}
    assert len(excess) == (2 if DESIGNS[name].kind == "clos" else 1)
    assert model["min_excess_by_zero_load"] == excess


@pytest.mark.slow
@pytest.mark.parametrize("params", [
    dict(vcs=1, buffer_depth=8),
    dict(vcs=1, buffer_depth=16, voq=True, allocator="islip", islip_iterations=4),
    dict(vcs=4, buffer_depth=8, separable_iterations=2),
], ids=["fifo", "voq-islip4", "4vc-separable2"])
def test_8_port_router_saturation_on_rtl(params):
    """The saturation table's 8-port configurations (benchmarks/router_saturation.py):
    the RTL's accepted throughput at offered load 1.0 equals the model's within 5%."""
    from supernode.sim.router.common import Design
    design = Design("router", dict(ports=8, **params))
    spec = TrafficSpec(pattern="uniform", load=1.0, packet_length=1, warmup=1000,
                       measure=5000, drain=0, seed=7)
    (rtl,), _ = run_rtl_points(design, [spec], sim="verilator")
    model = run_model_for(design, spec)
    assert rtl["passed"]
    assert model["accepted_throughput"] == pytest.approx(rtl["accepted_throughput"],
                                                         rel=TOLERANCE)
