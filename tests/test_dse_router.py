"""Router points in sweeps: metrics straight from the network model, RTL spot-check agreement and mismatch."""

import pytest

from supernode.dse import ModelMismatchError
from supernode.dse.evaluators import router
from supernode.fabric.network.traffic import TrafficSpec
from supernode.sim.router.common import Design, run_model_for
from supernode.rtl.errors import UserError

HW = {"ports": 4, "vcs": 2, "buffer_depth": 3, "allocator": "islip", "voq": True}


def workload(**extra):
    return router.check_workload({"pattern": "all_to_all", "packet_length": 2, "warmup": 30,
                                  "measure": 200, **extra}, set())


def test_router_point_reports_the_model_run():
    metrics = router.evaluate({**HW, "load": 0.4}, workload())
    expected = run_model_for(Design("router", HW),
                             TrafficSpec(pattern="all_to_all", load=0.4, packet_length=2,
                                         warmup=30, measure=200, seed=1))
    assert metrics["throughput_flits_per_cycle_per_port"] == expected["accepted_throughput"]
    assert metrics["latency_mean_cycles"] == expected["latency_mean"]
    assert metrics["latency_p99_cycles"] == expected["latency_p99"]
    assert 0.3 < metrics["throughput_flits_per_cycle_per_port"] <= 0.5


def test_separable_iterations_are_a_swept_parameter():
    hw = {"ports": 4, "vcs": 4, "buffer_depth": 4, "allocator": "separable", "voq": False}
    router.check_point({**hw, "separable_iterations": 2})
    with pytest.raises(UserError, match="separable_iterations"):
        router.check_point({**hw, "separable_iterations": 0})
    traffic = workload(pattern="uniform", packet_length=1, measure=600)
    one = router.evaluate({**hw, "separable_iterations": 1, "load": 1.0}, traffic)
    two = router.evaluate({**hw, "load": 1.0}, traffic)        # two iterations: the default
    assert (two["throughput_flits_per_cycle_per_port"]
            > one["throughput_flits_per_cycle_per_port"] + 0.02)


def test_clos_topology_uses_the_largest_clos_of_the_radix():
    # 4 leaves of 2 endpoints: most packets cross a spine, so three hops instead of one.
    clos = router.evaluate({**HW, "load": 0.1}, workload(topology="clos"))
    single = router.evaluate({**HW, "load": 0.1}, workload())
    assert clos["latency_mean_cycles"] > single["latency_mean_cycles"] + single["hop_latency_cycles"]
    assert clos["measured_packets"] > single["measured_packets"]      # 8 endpoints, not 4


@pytest.mark.parametrize("table, words", [
    ({"pattern": "zigzag"}, ["'zigzag'", "all_to_all"]),
    ({"topology": "torus"}, ["'torus'", "router, clos"]),
    ({"leaves": 2}, ["clos"]),
    ({"measure": 0}, ["measure", "0"]),
    ({"colour": 1}, ["'colour'"]),
])
def test_bad_router_workload_names_the_value(table, words):
    with pytest.raises(ValueError) as info:
        router.check_workload(table, set())
    for word in words:
        assert word in str(info.value)


@pytest.mark.simulator("icarus")
def test_router_spot_check_agrees_with_the_rtl_and_fails_when_the_model_is_off(monkeypatch):
    rtl = {"simulator": "icarus", "measure": 60}
    point = {**HW, "load": 0.5}
    metrics = router.spot_check(point, workload(), rtl)
    assert metrics["rtl_measure_cycles"] == 60
    assert 0 < metrics["rtl_throughput_flits_per_cycle_per_port"] <= 0.6

    real = router.run_model_for

    def one_packet_short(design, spec, **kw):
        result = dict(real(design, spec, **kw))
        result["packets_delivered"] -= 1
        return result
    monkeypatch.setattr(router, "run_model_for", one_packet_short)
    with pytest.raises(ModelMismatchError, match=r"measured packets_delivered = \d+ but the "
                                                 r"model gives \d+"):
        router.spot_check(point, workload(), rtl)
