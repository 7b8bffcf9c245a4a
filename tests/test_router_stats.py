"""The router's performance counters, read from the RTL and checked against the flits the scoreboard saw."""

from collections import Counter

import pytest

from supernode.fabric.network.traffic import TrafficSpec
from supernode.rtl.router import Router
from supernode.sim.router.common import Design, run_rtl, run_model_for


def test_stats_parameter_is_checked_and_adds_the_counters():
    with pytest.raises(ValueError, match="stats must be True or False, not 1"):
        Router(ports=4, stats=1)
    plain = Router(ports=4)
    counted = Router(ports=4, stats=True)
    assert "stats" not in plain.signature.members
    assert len(counted.stats.sent) == len(counted.stats.blocked) == 4
    assert counted.params.stats is True and counted.has_stats and not plain.has_stats


def _stats_run(design, spec, sim="icarus"):
    result = run_rtl(design, spec, sim=sim).result
    assert result["passed"], result["error"]
    # The model counts the same: every counter of every router, and the traffic, agree.
    model = run_model_for(design, spec)
    assert model["router_stats"] == result["router_stats"]
    assert model == {k: v for k, v in result.items()
                     if k not in ("passed", "error", "wall_seconds", "ejected_flits")}
    return result


@pytest.mark.simulator("icarus")
def test_router_counters_match_the_scoreboard():
    """``sent`` per output equals the flits that left there; with a buffer as deep as
    the credit round trip and ejectors that always drain, no output ever waits for a
    credit; inputs are blocked only by output conflicts, never longer than the run."""
    design = Design("router", dict(ports=4, vcs=2, buffer_depth=4, stats=True))
    spec = TrafficSpec(pattern="uniform", load=0.6, packet_length=2, warmup=20, measure=300,
                       seed=5)
    result = _stats_run(design, spec)
    stats = result["router_stats"]["router"]
    per_port = Counter(port for port, _, _ in result["ejected_flits"])
    assert stats["sent"] == [per_port[p] for p in range(4)]
    assert sum(stats["sent"]) == result["flits_delivered"]
    assert stats["credit_stalls"] == [0, 0, 0, 0]
    assert 0 < sum(stats["blocked"]) and max(stats["blocked"]) < result["cycles"]


@pytest.mark.simulator("icarus")
def test_slow_ejectors_show_as_credit_stalls_and_blocked_inputs():
    """Ejectors that drain one cycle in four: every output runs out of credits, so the
    credit stalls and blocked inputs are counted, and flits are still counted exactly."""
    design = Design("router", dict(ports=4, vcs=1, buffer_depth=2, stats=True))
    spec = TrafficSpec(pattern="uniform", load=0.5, packet_length=1, warmup=20, measure=300,
                       seed=6, backpressure="periodic:1000")
    result = _stats_run(design, spec)
    stats = result["router_stats"]["router"]
    per_port = Counter(port for port, _, _ in result["ejected_flits"])
    assert stats["sent"] == [per_port[p] for p in range(4)]
    cycles = result["cycles"]
    for o in range(4):
        assert cycles // 8 < stats["credit_stalls"][o] < cycles
        assert cycles // 8 < stats["blocked"][o] < cycles


@pytest.mark.simulator("icarus")
@pytest.mark.parametrize("up_routing", ["deterministic", "balanced"])
def test_clos_link_counters_account_for_every_flit(up_routing):
    """On the 8-endpoint Clos the leaf down-links carry what each endpoint received, the
    up-links carry exactly the flits that left their leaf (to spine ``dest % spines``
    under deterministic routing), and the spines forward all of them."""
    E, L, S = 2, 4, 2
    design = Design("clos", dict(endpoints_per_leaf=E, leaves=L, spines=S, vcs=2,
                                 buffer_depth=4, up_routing=up_routing, stats=True))
    spec = TrafficSpec(pattern="uniform", load=0.5, packet_length=2, warmup=20, measure=300,
                       seed=7, ordered=up_routing == "deterministic")
    result = _stats_run(design, spec)
    stats = result["router_stats"]
    flits = result["ejected_flits"]
    received = Counter(port for port, _, _ in flits)
    for e in range(E * L):
        assert stats[f"leaf{e // E}"]["sent"][e % E] == received[e]
    crossing = [(src, dest) for _, src, dest in flits if src // E != dest // E]
    assert len(crossing) > 100
    for leaf in range(L):
        up = stats[f"leaf{leaf}"]["sent"][E:]
        leaving = [dest for src, dest in crossing if src // E == leaf]
        assert sum(up) == len(leaving)
        if up_routing == "deterministic":
            assert up == [sum(1 for d in leaving if d % S == s) for s in range(S)]
    assert sum(sum(stats[f"spine{s}"]["sent"]) for s in range(S)) == len(crossing)
    for s in range(S):     # spine port p goes down to leaf p
        arriving = Counter(dest // E for src, dest in crossing)
        if up_routing == "deterministic":
            assert stats[f"spine{s}"]["sent"] == [
                sum(1 for src, dest in crossing if dest // E == p and dest % S == s)
                for p in range(L)]
    assert sum(stats[f"spine{s}"]["sent"][p] for s in range(S) for p in range(L)) == \
        sum(arriving.values())


@pytest.mark.simulator("icarus")
def test_cli_reports_the_counters(capsys, tmp_path):
    import json
    from supernode.cli import main
    rc = main(["router", "sim", "--ports", "4", "--stats", "--pattern", "uniform",
               "--load", "0.4", "--measure", "200", "--warmup", "20", "--sim", "icarus",
               "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["passed"]
    assert sum(out["router_stats"]["router"]["sent"]) == out["flits_delivered"]
    assert out["model_router_stats"] == out["router_stats"] and out["model_matches_rtl_exactly"]
    assert main(["router", "export", "--ports", "3", "--stats",
                 "--out", str(tmp_path / "r.v")]) == 0
    assert "stats__credit_stalls__2" in (tmp_path / "r.v").read_text()
