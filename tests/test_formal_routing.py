"""Formal proofs of the router's routing stage: spread routing and run-time table writes."""

import json
import re

import pytest

from supernode.sim.formal.routing import MUTANTS, RoutingHarness
from supernode.sim.formal.runner import run_formal
from supernode.cli import main

COVERS = {
    "a body flit arrives after its destination's entry was rewritten mid-packet",
    "a head flit arrives in the cycle its destination's entry is rewritten",
    "input 0's spread turn wraps around",
    "inputs 0 and 1 are at different spread turns",
    "a flit leaves through spread port 3",
    "a write beyond the table",
}


def test_four_port_routing_with_spread_and_free_table_writes_is_proved():
    result = run_formal(RoutingHarness(ports=4, vcs=2, buffer_depth=2, spread=(2, 3)))
    assert result.status == "pass", result.to_dict()
    assert result.mode == "prove" and result.depth == 1
    for prop in (
            "table entry 5 holds the last write to it (or its initial route), writes beyond "
            "the table or of a missing port ignored",
            "in 3: a head flit enters its queue with the table's route as of its arrival or "
            "its spread turn's port",
            "in 2: a body flit enters its queue with its head's route",
            "in 1: the spread turn moves to the next spread port once per head routed to any "
            "of them, wrapping around",
            "in 0 vc 1: the route held for body flits is the head's route",
            "in 3 queue 1 slot 1: a buffered flit keeps the route it entered with",
            "in 2: a flit leaves through output 3 only when routed to it"):
        assert prop in result.asserts, prop
    assert set(result.covers) == COVERS
    assert all(result.covers.values()), result.covers


@pytest.mark.parametrize("mutant, depth, broken", [
    # The reference that applies writes a cycle late disagrees with the table at once.
    ("late_table_write", 2, "holds the last write to it"),
    # A turn that wraps to the second spread port shows up at the third spread head.
    ("spread_skips_port", 4, "the spread turn moves to the next spread port"),
    # Expecting a same-cycle write to be seen already: the router routes by the old entry.
    ("write_through_lookup", 3, "a head flit enters its queue with the table's route"),
], ids=MUTANTS)
def test_mutants_give_a_counterexample(mutant, depth, broken):
    result = run_formal(RoutingHarness(ports=4, vcs=2, mutant=mutant), mode="bmc",
                        depth=depth, cover=False, reuse=False)
    assert result.status == "fail", result.to_dict()
    assert any(broken in name for name in result.failed), result.failed
    assert result.trace.exists() and result.trace.suffix == ".vcd"


def test_a_table_write_of_a_port_the_router_lacks_is_ignored():
    """With 3 ports the ``cfg.port`` field can name port 3, which does not exist; the free
    writes include it, and the proof shows the table never takes it."""
    result = run_formal(RoutingHarness(ports=3, vcs=1, spread=(1, 2)))
    assert result.status == "pass", result.to_dict()
    for d in range(6):
        assert f"table entry {d} names a port of the router" in result.asserts


def test_a_write_of_a_missing_port_leaves_routing_alone_in_simulation():
    """On the RTL's own memory: after a write of port 3 into ``table[0]`` of a 3-port
    router, packets to 0 still leave through port 0, and the packet behind them too."""
    from amaranth.sim import Simulator

    from supernode.rtl.router import Router

    dut = Router(ports=3, vcs=1, buffer_depth=2, destinations=3)
    sent = []

    async def bench(ctx):
        ctx.set(dut.cfg.valid, 1)
        ctx.set(dut.cfg.dest, 0)
        ctx.set(dut.cfg.port, 3)
        await ctx.tick()
        ctx.set(dut.cfg.valid, 0)
        for dest in (0, 1):
            ctx.set(dut.inp[0].valid, 1)
            ctx.set(dut.inp[0].payload.first, 1)
            ctx.set(dut.inp[0].payload.last, 1)
            ctx.set(dut.inp[0].payload.dest, dest)
            await ctx.tick()
        ctx.set(dut.inp[0].valid, 0)
        for _ in range(20):
            sent.extend((o, ctx.get(dut.outp[o].payload.dest)) for o in range(3)
                        if ctx.get(dut.outp[o].valid))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert sent == [(0, 0), (1, 1)]


@pytest.mark.slow
@pytest.mark.parametrize("params", [
    {"ports": 4, "vcs": 2, "buffer_depth": 2, "spread": (1, 2, 3), "destinations": 5},
    {"ports": 3, "vcs": 2, "buffer_depth": 3, "spread": (0, 2), "destinations": 7},
    {"ports": 4, "vcs": 2, "buffer_depth": 2, "spread": (2, 3), "voq": True},
    {"ports": 4, "vcs": 2, "buffer_depth": 2, "spread": (2, 3), "allocator": "islip",
     "islip_iterations": 2, "voq": True},
    {"ports": 8, "vcs": 2, "buffer_depth": 2, "spread": (4, 5, 6, 7), "destinations": 12},
], ids=["3spread", "3p-d3", "voq", "islip2-voq", "8p-4spread"])
def test_other_routing_shapes_are_proved(params):
    result = run_formal(RoutingHarness(**params))
    assert result.status == "pass", result.to_dict()


def test_a_same_cycle_write_is_seen_from_the_next_cycle_in_simulation():
    """The proof replaces the table's ``Memory`` by registers; the RTL's own memory (read
    port combinational, write port synchronous) routes the same way: a head flit arriving
    in the cycle its destination's entry is rewritten goes by the old entry, the next one
    by the new entry; body flits follow their head."""
    from amaranth.sim import Simulator

    from supernode.rtl.router import Router

    dut = Router(ports=4, vcs=1, buffer_depth=2, destinations=6, spread=(2, 3))
    sent = []                  # (cycle, output port, dest) of every flit leaving

    def flit(link, *, first, last, dest):
        return [(link.valid, 1), (link.payload.first, first), (link.payload.last, last),
                (link.payload.dest, dest)]

    async def bench(ctx):
        script = [
            # A head to 1 arrives with a write of port 0 to entry 1: it goes to port 1.
            flit(dut.inp[0], first=1, last=0, dest=1) + [(dut.cfg.valid, 1),
                                                         (dut.cfg.dest, 1), (dut.cfg.port, 0)],
            # Its body flit follows its head to port 1, whatever the table says now.
            flit(dut.inp[0], first=0, last=1, dest=1) + [(dut.cfg.valid, 0)],
            # The next head to 1 sees the new entry: port 0. A write beyond the table
            # (entry 7 of 6) changes nothing.
            flit(dut.inp[0], first=1, last=1, dest=1) + [(dut.cfg.valid, 1),
                                                         (dut.cfg.dest, 7), (dut.cfg.port, 2)],
            # Entry 2 is a spread port: successive heads take 2, 3, 2.
            flit(dut.inp[1], first=1, last=1, dest=2) + [(dut.cfg.valid, 0)],
            flit(dut.inp[1], first=1, last=1, dest=2),
            flit(dut.inp[1], first=1, last=1, dest=3),
        ]
        for cycle in range(len(script) + 6):
            for port in (dut.inp[0].valid, dut.inp[1].valid, dut.cfg.valid):
                ctx.set(port, 0)
            if cycle < len(script):
                for signal, value in script[cycle]:
                    ctx.set(signal, value)
            for o in range(4):
                if ctx.get(dut.outp[o].valid):
                    sent.append((cycle, o, ctx.get(dut.outp[o].payload.dest)))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert [(o, d) for _, o, d in sent] == [(1, 1), (1, 1), (0, 1), (2, 2), (3, 2), (2, 3)], sent


def test_bad_parameters_are_refused():
    assert MUTANTS == ("late_table_write", "spread_skips_port", "write_through_lookup")
    with pytest.raises(ValueError, match="mutant must be None or one of late_table_write, "
                                         "spread_skips_port, write_through_lookup, not 'x'"):
        RoutingHarness(mutant="x")
    for spread in ((), (2,), (2, 2), (3, 4), (1, True)):
        with pytest.raises(ValueError, match=re.escape(
                f"spread must be at least two distinct output ports from 0 to 3, "
                f"not {spread!r}")):
            RoutingHarness(spread=spread)
    with pytest.raises(ValueError, match="destinations must be an integer from 2 to 4096, "
                                         "not 1"):
        RoutingHarness(destinations=1)


def test_cli_proves_routing_and_prints_one_json_object(capsys):
    assert main(["formal", "routing", "--ports", "4", "--spread", "2,3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "pass"
    (job,) = out["jobs"]
    assert job["kind"] == "routing" and job["params"]["spread"] == [2, 3]
    assert job["params"]["destinations"] == 6


@pytest.mark.parametrize("argv, message", [
    (["--spread", "2,x"], "spread must be comma-separated port numbers such as 2,3, "
                          "not '2,x'"),
    (["--spread", "2,2"], "spread must be at least two distinct output ports from 0 to 3, "
                          "not (2, 2)"),
    (["--mutant", "late"], "mutant must be None or one of late_table_write"),
    (["--routes", "0,1,2,9"], "routes[3] must be an output port from 0 to 3, not 9"),
    (["--destinations", "6", "--routes", "0,1"], "routes must have one entry per "
                                                 "destination (6), not 2 entries"),
], ids=["spread-text", "spread-twice", "mutant", "route-port", "routes-length"])
def test_cli_refuses_bad_input_in_one_sentence(argv, message, capsys):
    try:
        code = main(["formal", "routing", *argv])
    except SystemExit as stop:          # argparse refuses the option's text itself
        code = stop.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
