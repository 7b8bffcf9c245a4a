"""cocotb traffic bench on Icarus and Verilator: scoreboard, watchdog, cfg port, agreement with the model."""

import json

import pytest

from supernode.fabric.network.traffic import TrafficSpec
from supernode.sim.router.common import Design, REFERENCE_DESIGNS, run_rtl, run_rtl_points, run_model_for
from supernode.sim.environment import random_seed
from supernode.sim.runner import SimulationError

#: The smallest useful router (the calibration and CLI tests share its builds).
SMALL = REFERENCE_DESIGNS["router4"].params
#: Seed of the bench scenarios; COCOTB_RANDOM_SEED=<n> (or ROUTER_SEED) reproduces or varies a run.
SEED = random_seed(21, "ROUTER_SEED")
COMPARED = ("offered_load_measured", "accepted_throughput", "latency_mean", "latency_p99",
            "latency_min", "measured_packets", "packets_delivered", "flits_delivered",
            "cycles", "min_excess_by_zero_load")


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_bench_delivers_everything_and_matches_the_model(sim):
    """Two scenarios in one simulator process (reset between): idle, periodic and random
    back-pressure; the RTL statistics equal the model's."""
    design = Design("router", SMALL)
    specs = [
        TrafficSpec(pattern="uniform", load=0.6, packet_length=3, warmup=50, measure=300,
                    backpressure="periodic:1110", seed=SEED),
        TrafficSpec(pattern="hotspot", load=0.9, packet_length=1, warmup=50, measure=300,
                    backpressure="random:0.7", seed=SEED + 1),
    ]
    print(f"seed {SEED} (COCOTB_RANDOM_SEED)")
    points, run = run_rtl_points(design, specs, sim=sim)
    assert run.sim == sim and len(points) == 2
    for spec, rtl in zip(specs, points):
        assert rtl["passed"], rtl["error"]
        assert rtl["measured_packets"] > 50
        model = run_model_for(design, spec)
        assert {k: rtl[k] for k in COMPARED} == {k: model[k] for k in COMPARED}


@pytest.mark.parametrize("sim", ["icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_two_iteration_separable_router_matches_the_model(sim):
    """The iterated separable allocator (inputs that lose ask again with another VC) on a
    simulator: saturated single-flit traffic and multi-flit traffic under back-pressure,
    the RTL statistics equal the model's."""
    design = Design("router", dict(SMALL, vcs=4, separable_iterations=2))
    specs = [
        TrafficSpec(pattern="uniform", load=1.0, packet_length=1, warmup=50, measure=300,
                    seed=SEED),
        TrafficSpec(pattern="uniform", load=0.8, packet_length=3, warmup=50, measure=300,
                    backpressure="random:0.7", seed=SEED + 1),
    ]
    print(f"seed {SEED} (COCOTB_RANDOM_SEED)")
    points, _ = run_rtl_points(design, specs, sim=sim)
    for spec, rtl in zip(specs, points):
        assert rtl["passed"], rtl["error"]
        assert rtl["measured_packets"] > 50
        model = run_model_for(design, spec)
        assert {k: rtl[k] for k in COMPARED} == {k: model[k] for k in COMPARED}


@pytest.mark.simulator("icarus")
def test_rtl_watchdog_catches_a_stuck_network():
    """An ejector that stops draining freezes the RTL; the bench fails with the watchdog."""
    spec = TrafficSpec(load=0.5, warmup=0, measure=200, seed=3, backpressure="periodic:0",
                       watchdog=40)
    with pytest.raises(SimulationError, match="watchdog: no flit moved for 40 cycles"):
        run_rtl(Design("router", SMALL), spec, sim="icarus")


@pytest.mark.simulator("icarus")
def test_rtl_misroute_through_cfg_port_is_caught():
    spec = TrafficSpec(load=0.5, warmup=0, measure=200, seed=3)
    with pytest.raises(SimulationError, match="misroute: .* output port 3"):
        run_rtl(Design("router", SMALL), spec, sim="icarus", cfg_writes=[(0, 2, 3)])


@pytest.mark.simulator("icarus")
def test_cli_router_sim_json_with_waves(capsys):
    from supernode.cli import main
    rc = main(["router", "sim", "--ports", "4", "--vcs", "2", "--buffer-depth", "2",
               "--pattern", "uniform", "--load", "0.4", "--measure", "200", "--warmup", "20",
               "--sim", "icarus", "--waves", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["passed"] is True
    for key in ("offered_load", "accepted_throughput", "latency_mean", "latency_p99"):
        assert out[key] == out[f"model_{key}"]
    assert out["sim"] == "icarus" and out["waves"].endswith(".fst")
    from pathlib import Path
    assert Path(out["waves"]).stat().st_size > 0


@pytest.mark.parametrize("sim", ["icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_balanced_clos_resequences_and_matches_the_model(sim):
    """Per-packet balanced up-routing on the 8-endpoint Clos: packets overtake across
    spines, the ejectors put every flow back in order, and RTL and model agree exactly."""
    design = Design("clos", dict(endpoints_per_leaf=2, leaves=4, spines=2,
                                 up_routing="balanced", vcs=2, buffer_depth=4))
    spec = TrafficSpec(pattern="uniform", load=0.7, packet_length=2, warmup=50, measure=400,
                       ordered=False, seed=SEED)
    rtl = run_rtl(design, spec, sim=sim).result
    assert rtl["passed"], rtl["error"]
    model = run_model_for(design, spec)
    keys = COMPARED + ("resequenced_packets", "resequence_max_held")
    assert {k: rtl[k] for k in keys} == {k: model[k] for k in keys}
    assert rtl["resequenced_packets"] > 0
