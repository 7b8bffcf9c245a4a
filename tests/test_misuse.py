"""Bad input and misuse of every command: one sentence naming the value, exit status 2,
nothing already written changed.

Each case runs the CLI in-process in a scratch directory that holds files a user would
not want to lose (an older Verilog export, plot, save file, waveform, sweep output). The
case passes when the command exits with the expected status, its error is one line
holding a fragment that names the bad value, no traceback is printed, and every file of
the scratch directory is byte for byte what it was (no temporary file left, no output
half written). Every case fails before any simulation, proof or sweep starts.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from supernode import cli
from supernode.cli import main

REPO = Path(__file__).resolve().parents[1]

#: A four-cycle waveform with one valid/ready stream (a__valid, a__ready, a__payload).
VCD = """$timescale 1ns $end
$scope module top $end
$var wire 1 ! clk $end
$var wire 1 " rst $end
$var wire 1 # a__valid $end
$var wire 1 $ a__ready $end
$var wire 8 % a__payload [7:0] $end
$upscope $end
$enddefinitions $end
#0
0!
0"
0#
1$
b0 %
#5
1!
#10
0!
1#
b101 %
#15
1!
#20
0!
0$
#25
1!
#30
0!
1$
0#
#35
1!
#40
0!
"""

SPEC = """[sweep]
name = "misuse"
kind = "tile"
[space]
rows = [2, 4]
cols = [2]
dataflow = ["os"]
[workload]
gemms = [{m = 8, k = 8, n = 8}]
[objectives]
throughput = "max"
"""

#: Spec bodies by name, written as ``<name>.toml`` in the scratch directory.
SPECS = {
    "spec": SPEC,
    "billion": SPEC.replace("rows = [2, 4]", "rows = {start = 1, stop = 1000000000, step = 1}"),
    "factor": SPEC.replace("rows = [2, 4]",
                           "rows = {start = 1, stop = 1e300, factor = 1.000001}"),
    "infinite": SPEC.replace("rows = [2, 4]", "rows = {start = 1, stop = inf, step = 1}"),
    "product": SPEC.replace("rows = [2, 4]", "rows = {start = 1, stop = 400, step = 1}")
                   .replace("cols = [2]", "cols = {start = 1, stop = 400, step = 1}"),
    "broken": "[sweep\nname = 'x'\n",
}

TILE = ["--rows", "2", "--cols", "2", "--dataflow", "os"]
GEMM = ["--m", "4", "--k", "4", "--n", "4"]
SLO = ["--tpot-slo", "50ms"]
SYSTEMS = ["cloudmatrix384", "gb200-nvl72"]

#: (case id, argv with {placeholders}, exit status, fragment of the one-line error).
#: {dir}: an existing directory holding a file; {keep.X}: an existing file of the scratch
#: directory; {wave}: a small VCD; {NAME.toml}: a spec of SPECS; {ro}: a place that
#: cannot be written (/sys refuses new files even to root).
CASES = [
    # --- output paths: a directory, a missing parent, a read-only place, a wrong ending
    ("tile-export-out-dir", ["tile", "export", *TILE, "--out", "{dir}"], 2, "is a directory"),
    ("tile-export-out-missing-parent", ["tile", "export", *TILE, "--out", "/nonexistent/t.v"],
     2, "directory '/nonexistent' does not exist"),
    ("tile-export-out-read-only", ["tile", "export", *TILE, "--out", "{ro}/t.v"], 2,
     "cannot write in directory '/sys'"),
    ("tile-export-out-suffix", ["tile", "export", *TILE, "--out", "{keep.png}"], 2,
     "must name a .v or .sv file"),
    ("tile-export-out-parent-is-file", ["tile", "export", *TILE, "--out", "{keep.v}/t.v"], 2,
     "is a file, not a directory"),
    ("router-export-out-dir", ["router", "export", "--out", "{dir}"], 2, "is a directory"),
    ("router-export-out-missing-parent", ["router", "export", "--out", "/nonexistent/r.v"], 2,
     "directory '/nonexistent' does not exist"),
    ("router-export-out-read-only", ["router", "export", "--out", "{ro}/r.v"], 2,
     "cannot write in directory '/sys'"),
    ("router-sweep-plot-dir", ["router", "sweep", "--model-only", "--plot", "{dir}"], 2,
     "is a directory"),
    ("router-sweep-plot-missing-parent",
     ["router", "sweep", "--model-only", "--plot", "/nonexistent/p.png"], 2,
     "directory '/nonexistent' does not exist"),
    ("router-sweep-plot-suffix", ["router", "sweep", "--model-only", "--plot", "{keep.v}"], 2,
     "must name a .png file"),
    ("fabric-sweep-plot-read-only", ["fabric", "sweep", "--model-only", "--plot", "{ro}/p.png"],
     2, "cannot write in directory '/sys'"),
    ("fabric-sweep-plot-dir", ["fabric", "sweep", "--model-only", "--plot", "{dir}"], 2,
     "is a directory"),
    ("waves-png-missing-parent", ["waves", "{wave}", "--png", "/nonexistent/t.png"], 2,
     "directory '/nonexistent' does not exist"),
    ("waves-png-dir", ["waves", "{wave}", "--png", "{dir}"], 2, "is a directory"),
    ("waves-png-read-only", ["waves", "{wave}", "--png", "{ro}/t.png"], 2,
     "cannot write in directory '/sys'"),
    ("waves-gtkw-missing-parent", ["waves", "{wave}", "--gtkw", "/nonexistent/t.gtkw"], 2,
     "directory '/nonexistent' does not exist"),
    ("waves-gtkw-suffix", ["waves", "{wave}", "--gtkw", "{keep.png}"], 2,
     "must name a .gtkw file"),
    ("estimate-plot-missing-parent", ["estimate", *SLO, "--plot", "/nonexistent/p.png"], 2,
     "directory '/nonexistent' does not exist"),
    ("estimate-plot-dir", ["estimate", *SLO, "--plot", "{dir}"], 2, "is a directory"),
    ("estimate-plot-read-only", ["estimate", *SLO, "--plot", "{ro}/p.png"], 2,
     "cannot write in directory '/sys'"),
    ("compare-plot-dir", ["compare", *SYSTEMS, "--plot", "{dir}"], 2, "is a directory"),
    ("compare-plot-read-only", ["compare", *SYSTEMS, "--plot", "{ro}/p.png"], 2,
     "cannot write in directory '/sys'"),
    ("sweep-out-is-file", ["sweep", "{spec.toml}", "--out", "{keep.v}"], 2,
     "is a file; give a directory"),
    ("sweep-out-missing-parent", ["sweep", "{spec.toml}", "--out", "/nonexistent/out"], 2,
     "directory '/nonexistent' does not exist"),
    ("sweep-out-read-only", ["sweep", "{spec.toml}", "--out", "{ro}/out"], 2,
     "cannot write in directory '/sys'"),
    # --- sizes that cannot be run
    ("tile-sim-petabyte-operands", ["tile", "sim", *TILE, "--m", "100000000", "--k",
                                    "100000000", "--n", "2"], 2,
     "operand A would hold 10,000,000,000,000,000 elements"),
    ("tile-sim-too-many-cycles", ["tile", "sim", *TILE, "--m", "1000", "--k", "1000", "--n",
                                  "1000"], 2, "takes 250,000,005 cycles"),
    ("sweep-billion-point-range", ["sweep", "{billion.toml}"], 2,
     "a range of at most 100000 values, not 1000000000"),
    ("sweep-huge-factor-range", ["sweep", "{factor.toml}"], 2,
     "a range of at most 100000 values"),
    ("sweep-infinite-range", ["sweep", "{infinite.toml}"], 2, "finite numeric start"),
    ("sweep-space-product", ["sweep", "{product.toml}"], 2, "160000 points"),
    ("estimate-batch-does-not-fit", ["estimate", "--batch", "100000"], 2,
     "batch 100000, sequence 4096"),
    # --- flags that would do nothing
    ("router-sim-islip-iterations-separable", ["router", "sim", "--islip-iterations", "2"], 2,
     "--islip-iterations 2 applies to --allocator islip only, not to 'separable'"),
    ("router-sweep-islip-iterations-separable",
     ["router", "sweep", "--model-only", "--islip-iterations", "3"], 2,
     "--islip-iterations 3 applies to --allocator islip only"),
    ("router-export-islip-iterations-separable",
     ["router", "export", "--islip-iterations", "2", "--out", "{keep.v}"], 2,
     "--islip-iterations 2 applies to --allocator islip only"),
    ("fabric-sim-islip-iterations-separable", ["fabric", "sim", "--islip-iterations", "1"], 2,
     "--islip-iterations 1 applies to --allocator islip only"),
    ("formal-router-islip-iterations-separable",
     ["formal", "router", "--islip-iterations", "2"], 2,
     "--islip-iterations 2 applies to --allocator islip only"),
    ("formal-routing-islip-iterations-separable",
     ["formal", "routing", "--islip-iterations", "2"], 2,
     "--islip-iterations 2 applies to --allocator islip only"),
    ("area-router-islip-iterations-separable", ["area", "router", "--islip-iterations", "2"],
     2, "--islip-iterations 2 applies to --allocator islip only"),
    ("router-sim-separable-iterations-islip",
     ["router", "sim", "--allocator", "islip", "--separable-iterations", "2"], 2,
     "--separable-iterations 2 applies to --allocator separable only, not to 'islip'"),
    ("formal-router-separable-iterations-islip",
     ["formal", "router", "--allocator", "islip", "--separable-iterations", "2"], 2,
     "--separable-iterations 2 applies to --allocator separable only, not to 'islip'"),
    ("tile-sim-vcd-without-waves", ["tile", "sim", *TILE, *GEMM, "--vcd"], 2,
     "--vcd chooses the format of --waves"),
    ("formal-router-body-bound-without-liveness", ["formal", "router", "--body-bound", "3"],
     2, "--body-bound 3 bounds the liveness proof; give --liveness"),
    ("formal-router-head-bound-without-liveness", ["formal", "router", "--head-bound", "auto"],
     2, "--head-bound auto bounds the liveness proof"),
    ("formal-router-credit-bound-without-liveness",
     ["formal", "router", "--credit-bound", "1"], 2, "--credit-bound 1 bounds the liveness"),
    ("formal-router-packet-length-without-liveness",
     ["formal", "router", "--packet-length", "3"], 2, "--packet-length 3 bounds the liveness"),
    ("router-sim-backpressure-never-drains",
     ["router", "sim", "--backpressure", "periodic:0000"], 2,
     "--backpressure 'periodic:0000' never lets an ejector drain"),
    ("fabric-sweep-backpressure-never-drains",
     ["fabric", "sweep", "--model-only", "--backpressure", "periodic:0"], 2,
     "--backpressure 'periodic:0' never lets an ejector drain"),
    ("waves-signals-match-nothing", ["waves", "{wave}", "--signals", "nothing_here*"], 2,
     "--signals pattern 'nothing_here*' matches no signal"),
    ("waves-one-of-signals-matches-nothing",
     ["waves", "{wave}", "--signals", "a__*,zzz", "--png", "{keep.png}"], 2,
     "--signals pattern 'zzz' matches no signal"),
    # --- values out of range or of the wrong kind
    ("tile-sim-unknown-simulator", ["tile", "sim", *TILE, *GEMM, "--sim", "modelsim"], 2,
     "--sim must be one of icarus, verilator, not 'modelsim'"),
    ("tile-sim-vcd-on-icarus", ["tile", "sim", *TILE, *GEMM, "--waves", "--vcd"], 2,
     "--vcd needs --sim verilator"),
    ("tile-sim-stall-probability", ["tile", "sim", *TILE, *GEMM, "--stall", "1.5"], 2,
     "not '1.5'"),
    ("tile-sim-zero-dimension", ["tile", "sim", *TILE, "--m", "0", "--k", "2", "--n", "2"], 2,
     "expected a positive integer, not '0'"),
    ("tile-export-bad-module-name", ["tile", "export", *TILE, "--out", "{keep.v}", "--name",
                                     "1bad"], 2, "--name must be a Verilog identifier, not '1bad'"),
    ("tile-export-rows-zero", ["tile", "export", "--rows", "0", "--cols", "2", "--dataflow",
                               "os", "--out", "{keep.v}"], 2, "rows must be an integer from 1"),
    ("router-sim-unknown-simulator", ["router", "sim", "--sim", "ghdl"], 2,
     "--sim must be one of icarus, verilator, not 'ghdl'"),
    ("router-sim-random-backpressure-zero", ["router", "sim", "--backpressure", "random:0"], 2,
     "not 'random:0'"),
    ("router-sim-unknown-pattern", ["router", "sim", "--pattern", "zigzag"], 2, "'zigzag'"),
    ("router-sweep-bad-loads", ["router", "sweep", "--loads", "0,2"], 2, "not '0,2'"),
    ("router-export-ports", ["router", "export", "--ports", "99", "--out", "{keep.v}"], 2,
     "99"),
    ("waves-missing-file", ["waves", "{tmp}/missing.vcd"], 2, "missing.vcd' does not exist"),
    ("waves-directory-without-waves", ["waves", "{dir}"], 2, "holds 0 .vcd/.fst files"),
    ("waves-unknown-clock", ["waves", "{wave}", "--clock", "clk2"], 2,
     "no clock signal named 'clk2'"),
    ("waves-window-backwards", ["waves", "{wave}", "--from", "30ns", "--to", "10ns"], 2,
     "is before its start '30ns'"),
    ("sweep-missing-spec", ["sweep", "{tmp}/none.toml"], 2, "none.toml' does not exist"),
    ("sweep-broken-toml", ["sweep", "{broken.toml}"], 2, "is not valid TOML"),
    ("sweep-resume-without-earlier", ["sweep", "{spec.toml}", "--out", "{dir}", "--resume"], 2,
     "--resume found no earlier sweep"),
    ("sweep-workers-with-scheduler", ["sweep", "{spec.toml}", "--workers", "2", "--scheduler",
                                      "tcp://127.0.0.1:1"], 2,
     "--workers 2 applies to the local cluster only"),
    ("estimate-bad-gemm", ["estimate", "--workload", "gemm:12x34"], 2, "'gemm:12x34'"),
    ("estimate-bad-slo-time", ["estimate", "--tpot-slo", "fast"], 2, "--tpot-slo 'fast'"),
    ("estimate-plot-without-slo", ["estimate", "--plot", "{keep.png}"], 2,
     "--plot draws the curve an SLO search makes"),
    ("estimate-slo-phase", ["estimate", "--ttft-slo", "2s", "--phase", "decode"], 2,
     "--ttft-slo bounds the time to first token"),
    ("compare-one-system", ["compare", "cloudmatrix384", "--plot", "{keep.png}"], 2,
     "at least two systems, got 1"),
    ("formal-tile-unknown-fault", ["formal", "tile", "--fault", "nosuch"], 2, "'nosuch'"),
    ("formal-router-drop-needs-liveness", ["formal", "router", "--drop", "credit_return"], 2,
     "needs liveness bounds"),
    ("formal-skid-width", ["formal", "skid", "--width", "0"], 2, "0"),
    ("area-component-no-module", ["area", "component", "nosuch_module:X"], 2,
     "cannot import module 'nosuch_module'"),
    ("area-component-not-a-component", ["area", "component", "supernode.rtl.errors:UserError"], 2,
     "'supernode.rtl.errors:UserError' is not an Amaranth wiring.Component class"),
    ("area-component-unknown-tile-parameter",
     ["area", "component", "supernode.rtl.tile:SystolicTile", "-p", "rows=2", "-p", "cols=2", "-p",
      "bogus=1"], 2, "tile parameter must be one of rows, cols"),
    ("area-component-missing-tile-parameter",
     ["area", "component", "supernode.rtl.tile:SystolicTile", "-p", "rows=2"], 2,
     "the tile needs cols, which has no default"),
    ("area-component-unknown-router-parameter",
     ["area", "component", "supernode.rtl.router:Router", "-p", "bogus=1"], 2,
     "unexpected keyword argument 'bogus'"),
    ("area-component-missing-argument",
     ["area", "component", "supernode.rtl.router_harness:PackedHarness"], 2,
     "missing a required argument: 'dut'"),
]


@pytest.fixture(autouse=True)
def _project_build(monkeypatch):
    """Builds and cached network figures stay in the project's build directory, so that a
    scratch directory holds only what the command itself might write."""
    build = Path(os.environ.get("SUPERNODE_BUILD", REPO / "build")).resolve()
    monkeypatch.setenv("SUPERNODE_BUILD", str(build))


def _scratch(tmp_path: Path) -> dict:
    """Fill ``tmp_path`` with files worth keeping; return the placeholder values."""
    (tmp_path / "keep.v").write_text("// an older export\n")
    (tmp_path / "keep.png").write_bytes(b"\x89PNG older plot")
    (tmp_path / "keep.gtkw").write_text("[*] older save file\n")
    (tmp_path / "adir").mkdir()
    (tmp_path / "adir" / "notes.txt").write_text("kept\n")
    (tmp_path / "w.vcd").write_text(VCD)
    values = {"tmp": str(tmp_path), "dir": str(tmp_path / "adir"), "wave": str(tmp_path / "w.vcd"),
              "ro": "/sys", "keep.v": str(tmp_path / "keep.v"),
              "keep.png": str(tmp_path / "keep.png"), "keep.gtkw": str(tmp_path / "keep.gtkw")}
    for name, text in SPECS.items():
        (tmp_path / f"{name}.toml").write_text(text)
        values[f"{name}.toml"] = str(tmp_path / f"{name}.toml")
    return values


def _snapshot(root: Path) -> dict:
    """Every file below ``root`` with its bytes, and every directory."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else "dir")
            for p in sorted(root.rglob("*"))}


def _fill(arg: str, values: dict) -> str:
    for name, value in values.items():
        arg = arg.replace("{" + name + "}", value)
    return arg


def _run(argv) -> int:
    try:
        return main(argv)
    except SystemExit as exc:        # argparse's own errors
        return exc.code


@pytest.mark.parametrize("argv, status, fragment", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_misuse_is_one_sentence_and_changes_nothing(argv, status, fragment, tmp_path,
                                                    monkeypatch, capsys):
    values = _scratch(tmp_path)
    monkeypatch.chdir(tmp_path)                 # a default output would land here
    before = _snapshot(tmp_path)
    code = _run([_fill(a, values) for a in argv])
    err = capsys.readouterr().err
    assert code == status, err
    assert fragment in err, err
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if "error" in line]
    assert len(lines) == 1, err
    assert _snapshot(tmp_path) == before
    assert not Path("/nonexistent").exists()


def test_there_is_a_case_for_each_way_in():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 60


def test_an_internal_error_is_a_short_report_and_status_3(monkeypatch, capsys):
    def broken(args):
        raise RuntimeError("the model lost a table")
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["supernode.commands.estimate"])
    monkeypatch.setattr("supernode.commands.estimate.run_validate", broken)
    assert main(["validate"]) == 3
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: the model lost a table" in err
    assert "--debug" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    monkeypatch.setenv("SUPERNODE_DEBUG", "1")
    assert main(["validate"]) == 3
    assert "Traceback" in capsys.readouterr().err


@pytest.mark.parametrize("error", [TypeError("unsupported operand type(s) for +: 'int' and "
                                             "'NoneType'"),
                                   ValueError("too many values to unpack (expected 2)")],
                         ids=["TypeError", "ValueError"])
def test_a_type_or_value_error_inside_a_command_is_a_bug_not_bad_input(error, monkeypatch,
                                                                      capsys):
    """Only :class:`UserError` means bad input: any other ValueError or TypeError raised
    while a command runs is an internal error, reported briefly with status 3."""
    def broken(args):
        raise error
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["supernode.commands.estimate"])
    monkeypatch.setattr("supernode.commands.estimate.run_validate", broken)
    assert main(["validate"]) == 3
    err = capsys.readouterr().err
    assert f"internal error: {type(error).__name__}: {error}" in err
    assert "--debug" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_user_error_inside_a_command_is_bad_input_status_2(monkeypatch, capsys):
    from supernode.rtl.errors import UserError

    def refusing(args):
        raise UserError("ports must be an integer from 2 to 16, not 40")
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["supernode.commands.estimate"])
    monkeypatch.setattr("supernode.commands.estimate.run_validate", refusing)
    assert main(["validate"]) == 2
    err = capsys.readouterr().err
    assert err == "supernode: error: ports must be an integer from 2 to 16, not 40\n"


def test_a_failed_check_is_status_1(monkeypatch, capsys):
    """A scoreboard that fails (here: the demo's first run) is 1, not bad input nor a crash."""
    from supernode.sim.runner import SimulationError

    def failing(*args, **kwargs):
        raise SimulationError("tile simulation on icarus failed: row 3 differs")
    monkeypatch.setattr("supernode.commands.demo.run_gemm", failing)
    assert main(["demo", "--json"]) == 1
    assert "FAILED: tile simulation on icarus failed: row 3 differs" in capsys.readouterr().err


def test_piping_into_head_prints_no_traceback():
    env = dict(os.environ, PYTHONPATH=str(REPO))
    run = subprocess.run(f"'{sys.executable}' -m supernode validate | head -n 1", shell=True,
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert run.stdout.count("\n") == 1
    assert "Traceback" not in run.stderr and "BrokenPipe" not in run.stderr, run.stderr


def test_export_json(tmp_path, capsys):
    out = tmp_path / "r.v"
    assert main(["router", "export", "--ports", "3", "--out", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["out"] == str(out) and data["module"] == "router" and data["params"]["ports"] == 3
    assert out.read_text().startswith("/* Generated by Amaranth")
    assert data["interface"] == str(out.with_suffix(".json"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "r.v"]   # no temporary file left


# --- the sweep cache and the Pareto front -----------------------------------------------------

SYSTEM_SPEC = """[sweep]
name = "misuse-system"
kind = "system"
[space]
batch_per_rank = [1, 2]
[workload]
layers = 1
[objectives]
throughput = "max"
latency = "min"
"""


def _system_spec(tmp_path):
    from supernode.dse import load_spec
    path = tmp_path / "system.toml"
    path.write_text(SYSTEM_SPEC)
    return path, load_spec(path)


def _keys(spec):
    from supernode.dse.evaluators import code_fingerprint
    return [t["key"] for t in spec.tasks(code_fingerprint(spec.kind))]


def test_a_cache_entry_without_its_metrics_is_evaluated_again_and_said_so(tmp_path):
    import io

    import pandas as pd

    from supernode.dse import ResultCache, run_sweep
    _, spec = _system_spec(tmp_path)
    out = tmp_path / "out"
    first = _keys(spec)[0]
    ResultCache(out / "cache").put(first, {"key": first, "point": 0, "status": "ok",
                                           "params": {"batch_per_rank": 1}, "metrics": {},
                                           "rtl_checked": False})
    log = io.StringIO()
    report = run_sweep(spec, out_dir=out, workers=1, progress=False, plots=False, log=log)
    assert (report.cached, report.computed, report.failures) == (0, 2, [])
    assert f"cache entry {out / 'cache' / (first + '.json')} is not used (it holds no metrics)" \
        in log.getvalue()
    table = pd.read_parquet(out / "results.parquet")
    assert table["tokens_per_s"].notna().all() and (table["status"] == "ok").all()


def test_a_cache_entry_lacking_an_objective_is_not_trusted(tmp_path):
    from supernode.dse import ResultCache
    cache = ResultCache(tmp_path)
    cache.put("k", {"key": "k", "status": "ok", "metrics": {"tokens_per_s": 5.0}})
    assert cache.get("k", ["tokens_per_s"])["metrics"] == {"tokens_per_s": 5.0}
    assert cache.get("k", ["tokens_per_s", "latency_s"]) is None
    assert cache.rejected == [(tmp_path / "k.json", "it lacks the metric(s) latency_s")]


def test_a_directory_in_place_of_a_cache_entry_is_one_sentence(tmp_path, monkeypatch, capsys):
    path, spec = _system_spec(tmp_path)
    out = tmp_path / "out"
    entry = out / "cache" / f"{_keys(spec)[1]}.json"
    entry.mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    before = _snapshot(tmp_path)
    assert main(["sweep", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"sweep cache entry {str(entry)!r} is a directory, not a result file" in err
    assert "Traceback" not in err and _snapshot(tmp_path) == before


def test_an_infeasible_point_is_never_on_the_pareto_front(tmp_path):
    from supernode.dse.table import build_table, mark_pareto
    _, spec = _system_spec(tmp_path)
    keys = _keys(spec)
    # The second point would dominate the first, but its batch does not fit in memory.
    rows = [{"key": keys[i], "point": i, "params": {"batch_per_rank": i + 1}, "status": "ok",
             "rtl_checked": False,
             "metrics": {"tokens_per_s": tokens, "latency_s": latency, "fits_in_hbm": fits}}
            for i, (tokens, latency, fits) in enumerate([(10.0, 1.0, True), (99.0, 0.5, False)])]
    table = mark_pareto(build_table(spec, rows), spec)
    assert table["pareto"].tolist() == [True, False]


# --- run directories and builds ----------------------------------------------------------------

def _tile_sim(build, extra=()):
    """``supernode tile sim`` with waves, as its own process building under ``build``."""
    env = dict(os.environ, PYTHONPATH=str(REPO), SUPERNODE_BUILD=str(build))
    return subprocess.Popen(
        [sys.executable, "-m", "supernode", "tile", "sim", *TILE, "--m", "3", "--k", "4",
         "--n", "3", "--waves", "--json", *extra],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_identical_runs_at_once_each_get_their_own_run_directory(tmp_path):
    runs = [_tile_sim(tmp_path) for _ in range(2)]
    results = []
    for run in runs:
        out, err = run.communicate(timeout=600)
        assert run.returncode == 0, err
        results.append(json.loads(out))
    dirs = {r["run_dir"] for r in results}
    assert len(dirs) == 2 and all(r["passed"] for r in results)
    assert {str(Path(r["waves"]).parent) for r in results} == dirs


def test_a_half_written_build_is_detected_and_built_again(tmp_path):
    from supernode.sim.runner import BUILD_COMPLETE
    first = _tile_sim(tmp_path)
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    build = Path(json.loads(out)["run_dir"]).parent
    assert (build / BUILD_COMPLETE).exists()
    # As a build killed half-way leaves it: a truncated simulator image, no marker.
    vvp = build / "sim.vvp"
    vvp.write_bytes(vvp.read_bytes()[:100])
    (build / BUILD_COMPLETE).unlink()
    again = _tile_sim(tmp_path)
    out, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    assert json.loads(out)["passed"] and (build / BUILD_COMPLETE).exists()


def test_a_failed_atomic_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    from supernode.sim.outputs import atomic_output, write_atomic
    target = write_atomic(tmp_path / "plot.png", b"older")
    with pytest.raises(RuntimeError, match="drawing failed"):
        with atomic_output(target) as tmp:
            assert tmp.parent == tmp_path and tmp.suffix == ".png"
            tmp.write_bytes(b"half")
            raise RuntimeError("drawing failed")
    assert [p.name for p in tmp_path.iterdir()] == ["plot.png"]
    assert target.read_bytes() == b"older"
    with pytest.raises(FileNotFoundError):          # a missing parent is never created
        write_atomic(tmp_path / "missing" / "x.txt", "text")
    assert not (tmp_path / "missing").exists()


def test_old_run_directories_of_ended_processes_are_pruned(tmp_path):
    from supernode.sim import runner
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    dead_pid, inputs = int(ended.stdout), {"A": [[1]]}
    prefix = f"run-{runner._digest(inputs)}-"
    dead = [tmp_path / f"{prefix}{dead_pid}-{i}" for i in range(runner.RUNS_KEPT + 3)]
    live = tmp_path / f"{prefix}{os.getpid()}-old"
    for age, path in enumerate([*dead, live]):
        path.mkdir()
        os.utime(path, (1_000_000 + age, 1_000_000 + age))
    new = runner._new_run_directory(tmp_path, inputs)
    assert new.name.startswith(f"{prefix}{os.getpid()}-") and new.is_dir()
    assert live.is_dir()                                   # a living process's run stays
    assert sorted(p for p in dead if p.is_dir()) == sorted(dead[-runner.RUNS_KEPT:])
