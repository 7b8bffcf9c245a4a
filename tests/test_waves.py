"""Waveform summaries checked against a cocotb bench's own counts on Icarus and Verilator."""

import gc
import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from amaranth.sim import Simulator
from vcdvcd import VCDVCD

from supernode.sim import waves
from supernode.sim.gtkw import fsm_state_names, write_gtkw
from supernode.sim.environment import random_seed
from supernode.sim.runner import SimulationError, run_cocotb
from supernode.sim.tile.run import Gaps, random_operands, run_gemm
from supernode import cli
from supernode.rtl.errors import UserError

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the bench module, for cocotb
from test_waves_fifo_bench import StreamFIFO  # noqa: E402

#: The waveform runs are shared by the tests of this file (session fixtures, so a worker
#: makes each once whatever order its tests come in). The group keeps the file on one
#: worker where pytest-xdist's ``loadgroup`` takes the mark (pytest-xdist 3.8 under pytest
#: 9.2 does not: its group suffix to the node id is lost, and the tests spread).
pytestmark = pytest.mark.xdist_group("waves")

PARAMS = {"width": 8, "depth": 4}
SEED = random_seed(20261125, "SEED")
COUNT = int(os.environ.get("COUNT", "60"))


def _run(sim, wave_format="fst", p_valid=0.7, p_ready=0.55):
    print(f"SEED={SEED} COUNT={COUNT} sim={sim} format={wave_format}")
    return run_cocotb(kind="waves-fifo", component_factory=StreamFIFO, params=PARAMS,
                      test_module="test_waves_fifo_bench",
                      inputs={"seed": SEED, "count": COUNT, "p_valid": p_valid, "p_ready": p_ready},
                      sim=sim, waves=True, wave_format=wave_format)


@pytest.fixture(scope="session")
def runs():
    """One traced run per simulator, shared by the tests of this module.

    Verilator's VCD run costs another Verilator build, so it is in the slow test below;
    the default suite reads VCD written by Amaranth's own simulator instead.
    """
    return _Runs()


class _Runs(dict):
    """``(sim, format) -> RunResult``, each run made when a test first asks for it, so
    that ``SIM=icarus`` never starts Verilator."""

    def __missing__(self, key):
        self[key] = _run(*key)
        return self[key]


def _amaranth_vcd(path, count=COUNT, p_valid=0.7, p_ready=0.55):
    """Run the FIFO in Amaranth's simulator, dumping VCD; return the bench's own counts."""
    dut = StreamFIFO(**PARAMS)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    counts = {"i": {"transfers": 0, "stalls": 0, "idle": 0}, "o": {"transfers": 0, "stalls": 0, "idle": 0}}

    async def bench(ctx):
        rng = random.Random(SEED)
        sent = got = cycles = 0
        while got < count:
            assert cycles < 50 * count, "FIFO hung"
            if not ctx.get(dut.i.valid) and sent < count and rng.random() < p_valid:
                ctx.set(dut.i.valid, 1)
                ctx.set(dut.i.payload, sent & 0xFF)
            ctx.set(dut.o.ready, int(rng.random() < p_ready))
            *_, iv, ir, ov, orr = await ctx.tick().sample(dut.i.valid, dut.i.ready,
                                                          dut.o.valid, dut.o.ready)
            cycles += 1
            for port, v, r in (("i", iv, ir), ("o", ov, orr)):
                counts[port]["transfers" if v and r else "stalls" if v else "idle"] += 1
            if iv and ir:
                sent += 1
                ctx.set(dut.i.valid, 0)
            got += bool(ov and orr)
        counts["cycles"] = cycles

    sim.add_testbench(bench)
    with sim.write_vcd(str(path)):
        sim.run()
    return counts


@pytest.fixture(scope="session")
def amaranth_vcd(tmp_path_factory):
    path = tmp_path_factory.mktemp("amaranth") / "fifo.vcd"
    return path, _amaranth_vcd(path)


def _window(result):
    return dict(start=f"{int(result['first_edge_ps'])}ps", end=f"{int(result['last_edge_ps'])}ps")


@pytest.mark.parametrize("key", [("icarus", "fst"), ("verilator", "fst")], ids=lambda k: "-".join(k))
def test_summary_agrees_with_bench_counters(runs, key):
    _check_against_bench(runs[key], key)


@pytest.mark.simulator("verilator")
@pytest.mark.slow
def test_verilator_vcd_agrees_with_bench_and_vcdvcd():
    run = _run("verilator", "vcd")
    _check_against_bench(run, ("verilator", "vcd"))
    _check_against_vcdvcd(run.waves)
    a = waves.summarize(_run("verilator", "fst").waves)
    b = waves.summarize(run.waves)
    for x, y in zip(a["interfaces"], b["interfaces"], strict=True):
        assert (x["name"], x["transfers"], x["stalls"], x["idle"]) == \
            (y["name"], y["transfers"], y["stalls"], y["idle"])


def test_amaranth_vcd_agrees_with_its_bench(amaranth_vcd):
    path, counts = amaranth_vcd
    s = waves.summarize(path)
    assert s["format"] == "vcd" and s["timescale"] == "1fs"
    assert s["window"]["cycles"] == counts["cycles"]
    for itf in s["interfaces"]:
        port = itf["name"].rsplit(".", 1)[-1]
        assert {k: itf[k] for k in ("transfers", "stalls", "idle")} == counts[port], port
    assert counts["o"]["stalls"] > 0
    (fsm,) = s["fsms"]
    assert {"EMPTY", "HOLDING"} <= set(fsm["cycles_in_state"]) <= {"EMPTY", "HOLDING", "FULL"}
    assert sum(fsm["cycles_in_state"].values()) == counts["cycles"]


def _check_against_bench(run, key):
    assert run.waves is not None and run.waves.suffix == "." + key[1]
    s = waves.summarize(run.waves, **_window(run.result))
    assert s["format"] == key[1]
    assert s["window"]["cycles"] == run.result["cycles"]
    by_name = {i["name"].rsplit(".", 1)[-1]: i for i in s["interfaces"]}
    assert sorted(by_name) == ["i", "o"]
    for port in ("i", "o"):
        bench, mine = run.result[port], by_name[port]
        assert (mine["transfers"], mine["stalls"], mine["idle"]) == \
            (bench["transfers"], bench["stalls"], bench["idle"]), port
        assert mine["transfers"] == COUNT
        assert mine["payload_bits"] == PARAMS["width"]
        over_time = mine["utilisation_over_time"]
        assert sum(over_time["bin_cycles"]) == run.result["cycles"]
        assert sum(u * n for u, n in zip(over_time["utilisation"], over_time["bin_cycles"])) \
            == pytest.approx(bench["transfers"])
    # Back-pressure was random, so both kinds of cycle must be there for the check to mean much.
    assert by_name["o"]["stalls"] > 0 and by_name["i"]["idle"] > 0


@pytest.mark.simulator("icarus")
def test_whole_file_counts_reset_apart(runs):
    run = runs[("icarus", "fst")]
    s = waves.summarize(run.waves)
    assert s["window"]["reset_cycles"] >= 1
    o = next(i for i in s["interfaces"] if i["name"].endswith(".o"))
    assert o["transfers"] == run.result["o"]["transfers"]
    assert o["cycles"] == o["transfers"] + o["stalls"] + o["idle"] == s["window"]["cycles"]
    s_all = waves.summarize(run.waves, reset=None)
    assert s_all["window"]["cycles"] == s["window"]["cycles"] + s["window"]["reset_cycles"]


def _check_against_vcdvcd(path):
    """Every bit-vector signal reads the same through vcdvcd (which drops string values)."""
    mine, ref = waves.load(path), VCDVCD(str(path))
    checked = 0
    for ref_name in ref.signals:
        name = ref_name.replace("\\", "")
        # vcdvcd appends a declared bit range ("[7:0]") to the name; the reader keeps it apart.
        name = name if name in mine.traces else re.sub(r"\[\d+:\d+\]$", "", name)
        tr = mine[name]
        if tr.kind != "bits":
            continue
        tv = ref[ref_name].tv
        assert [int(t) for t, _ in tv] == tr.times.tolist(), name
        assert [waves.reader._vcd_int(v) for _, v in tv] == tr.values, name
        checked += 1
    assert checked >= 10


def test_vcd_reader_agrees_with_vcdvcd(amaranth_vcd):
    _check_against_vcdvcd(amaranth_vcd[0])


@pytest.mark.simulator("icarus", "verilator")
def test_fst_of_icarus_and_verilator_agree(runs):
    a = waves.summarize(runs[("icarus", "fst")].waves)
    b = waves.summarize(runs[("verilator", "fst")].waves)
    for x, y in zip(a["interfaces"], b["interfaces"], strict=True):
        assert (x["name"], x["transfers"], x["stalls"], x["idle"]) == \
            (y["name"], y["transfers"], y["stalls"], y["idle"])


@pytest.mark.simulator("icarus")
def test_window_and_signal_filter(runs):
    path = runs[("icarus", "fst")].waves
    full = waves.summarize(path)
    t0, t1 = full["window"]["start"], full["window"]["end"]
    mid = (t0 + t1) // 2
    first = waves.summarize(path, end=mid)
    second = waves.summarize(path, start=mid + 1)
    for a, b, c in zip(first["interfaces"], second["interfaces"], full["interfaces"]):
        assert a["transfers"] + b["transfers"] == c["transfers"]
        assert a["stalls"] + b["stalls"] == c["stalls"]
    only_i = waves.summarize(path, signals="i__*")
    assert [i["name"].rsplit(".", 1)[-1] for i in only_i["interfaces"]] == ["i"]
    assert only_i["fsms"] == []


@pytest.mark.simulator("icarus")
def test_fsm_cycles_and_gtkw(runs, tmp_path):
    run = runs[("icarus", "fst")]
    s = waves.summarize(run.waves)
    (fsm,) = s["fsms"]
    assert fsm["name"].endswith("occupancy_state")
    assert sum(fsm["cycles_in_state"].values()) == s["window"]["cycles"]
    # State names come from the translate file the runner wrote beside the waves.
    assert "HOLDING" in fsm["cycles_in_state"]
    assert set(fsm["cycles_in_state"]) <= {"EMPTY", "HOLDING", "FULL"}
    # The runner wrote a save file beside the waves; check what it groups.
    assert run.gtkw == run.waves.with_suffix(".gtkw")
    text = run.gtkw.read_text()
    assert f'[dumpfile] "{run.waves.resolve()}"' in text
    for title in ("-stream top.i", "-stream top.o", "-FSM states", "-clock and reset"):
        assert text.count(title + "\n") == 2, title  # group begin and end
    assert "top.o__payload[7:0]" in text
    filter_line = next(line for line in text.splitlines() if line.startswith("^1 "))
    assert Path(filter_line[3:]).read_text() == "0 EMPTY\n1 HOLDING\n2 FULL\n"


def test_fsm_state_names_from_design():
    assert fsm_state_names(StreamFIFO(**PARAMS)) == {
        "occupancy_state": {0: "EMPTY", 1: "HOLDING", 2: "FULL"}}


@pytest.mark.simulator("verilator")
def test_png_timeline(runs, tmp_path):
    path = runs[("verilator", "fst")].waves
    out = waves.plot_timeline(path, tmp_path / "t.png", signals="*valid,*ready,*payload",
                              start="50ns", end="400ns")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    with pytest.raises(UserError, match="no signal of .* matches 'nothing_here'"):
        waves.plot_timeline(path, tmp_path / "u.png", signals="nothing_here")


def _cli(monkeypatch, capsys, *argv):
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["supernode.commands.waves"])
    capsys.readouterr()             # what a shared fixture printed is not the command's
    code = cli.main(["waves", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.simulator("icarus")
def test_cli_json_png_and_table(runs, tmp_path, monkeypatch, capsys):
    run = runs[("icarus", "fst")]
    png, gtkw = tmp_path / "w.png", tmp_path / "w.gtkw"
    code, out, err = _cli(monkeypatch, capsys, run.waves, "--from",
                          f"{int(run.result['first_edge_ps'])}ps", "--to",
                          f"{int(run.result['last_edge_ps']) / 1000}ns", "--png", png,
                          "--gtkw", gtkw, "--json")
    assert code == 0, err
    s = json.loads(out)
    o = next(i for i in s["interfaces"] if i["name"].endswith(".o"))
    assert o["stalls"] == run.result["o"]["stalls"]
    assert Path(s["png"]).exists() and Path(s["gtkw"]).exists()
    code, out, err = _cli(monkeypatch, capsys, run.waves.parent)  # a run directory will do
    assert code == 0 and "top.o" in out and "transfers" in out and "occupancy_state" in out
    assert str(run.waves) in out


def _expect_cli_error(monkeypatch, capsys, path, *fragments):
    code, out, err = _cli(monkeypatch, capsys, path)
    assert code == 2
    assert "Traceback" not in err and err.count("\n") == 1, err
    for f in fragments:
        assert f in err, (f, err)
    return err


def test_truncated_vcd_names_file_and_line(amaranth_vcd, tmp_path, monkeypatch, capsys):
    text = amaranth_vcd[0].read_text()
    lines = text.splitlines(keepends=True)
    # Cut in the middle of a vector change: "b0101" with its id lost.
    k = max(i for i, line in enumerate(lines) if line.startswith("b"))
    cut = tmp_path / "cut.vcd"
    cut.write_text("".join(lines[:k]) + lines[k][:3])
    _expect_cli_error(monkeypatch, capsys, cut, str(cut), f"line {k + 1}", "truncated")
    # Cut inside the header.
    k = next(i for i, line in enumerate(lines) if "$var" in line) + 1
    head = tmp_path / "head.vcd"
    head.write_text("".join(lines[:k]))
    _expect_cli_error(monkeypatch, capsys, head, str(head), f"line {k}", "$enddefinitions")


def test_vcd_body_comments_and_values(tmp_path):
    path = tmp_path / "ok.vcd"
    path.write_text("$timescale 10ns $end\n$scope module top $end\n$var wire 1 ! clk $end\n"
                    "$var wire 2 \" bus $end\n$upscope $end\n$enddefinitions $end\n"
                    "#0\n$dumpvars 0! bxx \" $end\n$comment a remark\nover two lines $end\n"
                    "#3\n1! b10 \"\n#5\n0!\n")
    wave = waves.load(path)
    assert wave.tick_s == pytest.approx(1e-8) and wave.end_time == 5
    assert wave["top.bus"].values == [None, 2] and wave["top.clk"].times.tolist() == [0, 3, 5]
    assert wave["top.bus"].sample([3, 4]).tolist() == [waves.UNKNOWN, 2]


@pytest.mark.parametrize("body, line, what", [
    ("#10\n1?\n", 10, "undeclared id '?'"),
    ("#10\n1!\n#5\n0!\n", 11, "time goes backwards from #10 to #5"),
    ("#10\nb10 \" extra\n", 10, "cannot read 'extra'"),
    ("#10\nb10\n", 10, "has no signal id after it"),
    ("#10\nq!\n", 10, "cannot read 'q!'"),
    ("#10\nb1x2 \"\n", 10, "characters other than 0/1/x/z"),
])
def test_malformed_vcd_lines(tmp_path, body, line, what):
    header = ("$timescale 1ps $end\n$scope module top $end\n$var wire 1 ! clk $end\n"
              "$var wire 2 \" bus $end\n$upscope $end\n$enddefinitions $end\n#0\n0!\n")
    path = tmp_path / "bad.vcd"
    path.write_text(header + body)
    with pytest.raises(UserError) as info:
        waves.load(path)
    assert f"{path}, line {line}:" in str(info.value) and what in str(info.value)


@pytest.mark.simulator("icarus")
def test_truncated_fst_is_a_user_error(runs, tmp_path, monkeypatch, capsys):
    data = runs[("icarus", "fst")].waves.read_bytes()
    cut = tmp_path / "cut.fst"
    cut.write_bytes(data[: len(data) // 2])
    _expect_cli_error(monkeypatch, capsys, cut, str(cut), "truncated or malformed")


@pytest.mark.simulator("icarus")
def test_bad_arguments(runs, tmp_path, monkeypatch, capsys):
    path = runs[("icarus", "fst")].waves
    with pytest.raises(UserError, match="time '3 apples' is not a number"):
        waves.summarize(path, start="3 apples")
    with pytest.raises(UserError, match="no clock signal named 'sysclk'"):
        waves.summarize(path, clock="sysclk")
    with pytest.raises(UserError, match="window end 100 is before its start 200"):
        waves.summarize(path, start=200, end=100)
    _expect_cli_error(monkeypatch, capsys, tmp_path / "missing.fst", "missing.fst", "does not exist")
    junk = tmp_path / "junk.vcd"
    junk.write_bytes(b"$date \xff\xfe $end\n")
    _expect_cli_error(monkeypatch, capsys, junk, "junk.vcd", "line 1", "not text")


@pytest.mark.simulator("verilator")
def test_written_gtkw_for_any_file(runs, amaranth_vcd, tmp_path):
    text = write_gtkw(runs[("verilator", "fst")].waves, tmp_path / "v.gtkw").read_text()
    assert "-stream top.i\n" in text and "top.i__valid" in text and "$rootio" not in text
    text = write_gtkw(amaranth_vcd[0], tmp_path / "a.gtkw").read_text()
    assert "-stream bench.top.o\n" in text and "bench.top.occupancy_state" in text


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize("kwargs, message", [
    ({"width": 0}, "width must be a positive integer, not 0"),
    ({"depth": "4"}, "depth must be a positive integer, not '4'"),
])
def test_bench_design_rejects_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        StreamFIFO(**kwargs)
    gc.collect()  # the half-built object warns when collected; let that happen under the filter


def _tile_run(sim):
    A, B = random_operands(6, 5, 4, in_width=8, signed=True, seed=SEED)
    print(f"SEED={SEED} sim={sim}")
    return run_gemm({"rows": 2, "cols": 2, "dataflow": "os"}, A, B, sim=sim, waves=True,
                    seed=SEED, a_gaps=Gaps(probability=0.3), b_gaps=Gaps(pattern=(0, 1, 0)),
                    c_gaps=Gaps(probability=0.5))


def _check_tile(run):
    s = waves.summarize(run.waves, signals="tile.*")
    got = {i["name"]: (i["transfers"], i["stalls"]) for i in s["interfaces"]}
    k = run.counters
    # The harness counts in hardware: beats and stalls of a and b, result rows and back-pressure.
    assert got == {"top.tile.a": (k["a_beats"], k["a_stalls"]),
                   "top.tile.b": (k["b_beats"], k["b_stalls"]),
                   "top.tile.c": (k["c_rows"], k["c_backpressure"])}
    assert min(k["a_stalls"], k["b_stalls"], k["c_backpressure"]) > 0
    # Icarus dumps the harness' wires and the tile's ports apart; one stream each is reported.
    names = [i["name"] for i in waves.summarize(run.waves)["interfaces"]]
    assert len(names) == len(set(n.rsplit(".", 1)[-1] for n in names)) == 3


@pytest.mark.simulator("icarus")
def test_tile_run_agrees_with_hardware_counters():
    _check_tile(_tile_run("icarus"))


@pytest.mark.simulator("verilator")
@pytest.mark.slow
def test_tile_run_agrees_with_hardware_counters_on_verilator():
    _check_tile(_tile_run("verilator"))


@pytest.mark.simulator("icarus")
@pytest.mark.skipif(not (shutil.which("gtkwave") and shutil.which("xvfb-run")),
                    reason="GTKWave and xvfb-run are not installed")
def test_gtkwave_opens_the_save_file(runs, tmp_path):
    script = tmp_path / "list.tcl"
    script.write_text(
        "set n [gtkwave::getTotalNumTraces]\n"
        "for {set i 0} {$i < $n} {incr i} {\n"
        "  puts \"TRACE [gtkwave::getTraceNameFromIndex $i]|[gtkwave::getTraceFlagsFromIndex $i]\"\n"
        "}\n"
        "gtkwave::/File/Quit\n")
    proc = subprocess.run(["xvfb-run", "-a", "gtkwave", "-S", str(script), str(runs[("icarus", "fst")].gtkw)],
                          capture_output=True, text=True, timeout=120)
    traces = [line[6:].rsplit("|", 1) for line in proc.stdout.splitlines() if line.startswith("TRACE ")]
    names = [n for n, _ in traces]
    # Four groups, each opened and closed, around their members.
    assert names == ["clock and reset", "clk", "rst", "clock and reset",
                     "stream top.i", "i__valid", "i__ready", "i__payload[7:0]", "stream top.i",
                     "stream top.o", "o__valid", "o__ready", "o__payload[7:0]", "stream top.o",
                     "FSM states", "occupancy_state[1:0]", "FSM states"], proc.stdout + proc.stderr
    fsm_flags = int(dict(traces)["occupancy_state[1:0]"])
    assert fsm_flags & 0x2000, "the FSM state is not shown through its translate file"


@pytest.mark.simulator("icarus")
def test_failed_run_still_gets_its_save_file():
    # Nothing is ever read out, so the bench reports a hang: a failure with waves to look at.
    with pytest.raises(SimulationError, match="FIFO hung") as info:
        run_cocotb(kind="waves-fifo", component_factory=StreamFIFO, params=PARAMS,
                   test_module="test_waves_fifo_bench",
                   inputs={"seed": SEED, "count": 2, "p_valid": 1.0, "p_ready": 0.0},
                   sim="icarus", waves=True)
    run_dir = Path(re.search(r"\((\S+)/sim\.log\)", str(info.value)).group(1))
    assert (run_dir / "waves.gtkw").exists()
    s = waves.summarize(run_dir / "waves.fst")
    o = next(i for i in s["interfaces"] if i["name"].endswith(".o"))
    assert o["transfers"] == 0 and o["stalls"] > 100


@pytest.mark.simulator("icarus")
@pytest.mark.slow
def test_router_run_agrees_with_its_flit_count(monkeypatch, capsys):
    # Router links are credit-flow streams: valid and payload, no ready.
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["supernode.commands.router"])
    code = cli.main(["router", "sim", "--sim", "icarus", "--waves", "--warmup", "20",
                     "--measure", "100", "--drain", "50", "--load", "0.3", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["waves"]
    s = waves.summarize(result["waves"])
    outs = [i for i in s["interfaces"] if re.search(r"\.outp__\d+$", i["name"])]
    assert len(outs) == 4 and all(i["ready"] is None and i["stalls"] == 0 for i in outs)
    assert sum(i["transfers"] for i in outs) == result["flits_delivered"] > 0
