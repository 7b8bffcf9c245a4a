"""Routers wider than the RTL's 16 ports, in the models only: limits, agreement, and the CloudMatrix 384 plane."""

import pytest

from supernode.fabric.network.engine import ENGINE_MAX_PORTS, simulate
from supernode.fabric.network.model import (MODEL_MAX_PORTS, ModelRouterParams, clos_network,
                                  router_network)
from supernode.fabric.network.traffic import TrafficSpec, run_model
from supernode.rtl.router import Router


def test_the_rtl_keeps_its_radix_and_the_model_names_its_own():
    with pytest.raises(ValueError, match="ports must be an integer from 2 to 16, not 24"):
        Router(ports=24)
    ModelRouterParams(ports=24)
    with pytest.raises(ValueError, match=f"ports must be an integer from 2 to "
                                         f"{MODEL_MAX_PORTS}, not {MODEL_MAX_PORTS + 1}"):
        ModelRouterParams(ports=MODEL_MAX_PORTS + 1)
    with pytest.raises(ValueError, match=f"at most {ENGINE_MAX_PORTS} ports, not 64"):
        simulate(router_network(ports=64, vcs=1), None)


@pytest.mark.parametrize("allocator", ["separable", "islip"])
def test_a_wide_router_runs_the_same_on_the_engine_and_the_reference(allocator):
    """A 40-port VOQ router (40 x 2 = 80 queues per input) beyond every 16-port limit:
    the compiled engine and the Python reference give the same results."""
    spec = TrafficSpec(pattern="uniform", load=0.8, packet_length=2, warmup=30, measure=120,
                       seed=3)
    router = dict(ports=40, vcs=2, buffer_depth=4, voq=True, allocator=allocator,
                  islip_iterations=2)
    engine, reference = [run_model(router_network(**router), spec, flit_width=16, vcs=2,
                                   buffer_depth=4, model=model)
                         for model in ("compiled", "python")]
    assert engine == reference and engine["measured_packets"] > 1000


def test_the_cloudmatrix384_plane_is_modelled_whole():
    """The system file's Clos is one UB sub-plane: 768 link ports on 48 leaves of 32
    ports and 16 spines of 48; every package group of the supernode is inside it."""
    from supernode.fabric.system import load_system
    from supernode.fabric.system.comm import NetworkSource
    system = load_system("cloudmatrix384")
    shape = {k: system.router[k] for k in ("endpoints_per_leaf", "leaves", "spines")}
    assert shape == dict(endpoints_per_leaf=16, leaves=48, spines=16)
    net = clos_network(**shape)
    assert len(net.endpoints) == 768
    assert sorted({r.P for r in net.routers}) == [32, 48]
    source = NetworkSource(system)
    assert source.endpoints("all_to_all") == 768 >= 2 * 384
    fig = source("all_to_all")
    assert 0.5 < fig.saturation_throughput <= 1
    assert "768-endpoint folded Clos (48 leaves x 16 endpoints, 16 spines" in fig.source
