"""SIM, WAVES, GUI and COCOTB_RANDOM_SEED do what a cocotb user expects of them."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from supernode.sim.environment import random_seed, selected_simulators
from supernode.sim.tile.run import random_operands, run_gemm
from supernode.cli import main
from supernode.rtl.errors import UserError

REPO = Path(__file__).resolve().parents[1]
SMALL = {"rows": 2, "cols": 2, "dataflow": "os"}


def _collected(sim):
    """Test ids ``SIM=sim pytest --collect-only tests/test_tile_rtl.py`` keeps."""
    env = {**os.environ, "SIM": sim}
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p",
                           "no:cacheprovider", "tests/test_tile_rtl.py", "-m", ""],
                          cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [line for line in proc.stdout.splitlines() if "::" in line]


@pytest.mark.parametrize("sim, other", [("icarus", "verilator"), ("verilator", "icarus")])
def test_sim_keeps_only_that_simulators_tests(sim, other):
    ids = _collected(sim)
    assert any(f"test_{sim}_" in i or f"[{sim}]" in i for i in ids)
    assert not any(other in i for i in ids)
    assert any("test_pysim" in i for i in ids)          # tests without a simulator stay


def test_bad_sim_is_one_sentence(monkeypatch, capsys):
    monkeypatch.setenv("SIM", "modelsim")
    with pytest.raises(UserError, match=r"^SIM='modelsim' is not a simulator this project "
                                        r"runs; use SIM=icarus or SIM=verilator$"):
        selected_simulators()
    assert main(["tile", "sim", "--rows", "2", "--cols", "2", "--dataflow", "os",
                 "--m", "1", "--k", "1", "--n", "1"]) == 2
    assert "SIM='modelsim'" in capsys.readouterr().err


def test_seed_comes_from_cocotb_random_seed_then_the_aliases(monkeypatch):
    for name in ("COCOTB_RANDOM_SEED", "ROUTER_SEED", "SUPERNODE_SEED"):
        monkeypatch.delenv(name, raising=False)
    assert random_seed(5, "ROUTER_SEED") == 5
    monkeypatch.setenv("ROUTER_SEED", "9")
    assert random_seed(5, "ROUTER_SEED") == 9
    monkeypatch.setenv("COCOTB_RANDOM_SEED", "12")
    assert random_seed(5, "ROUTER_SEED") == 12
    monkeypatch.setenv("COCOTB_RANDOM_SEED", "twelve")
    with pytest.raises(UserError, match=r"^COCOTB_RANDOM_SEED='twelve' is not an integer seed$"):
        random_seed(5)


def _tile_sim_json(capsys, *extra):
    code = main(["tile", "sim", "--rows", "2", "--cols", "2", "--dataflow", "os", "--m", "3",
                 "--k", "4", "--n", "3", "--sim", "icarus", "--stall", "0.3", "--json", *extra])
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    return out


def _inputs(run_json) -> dict:
    """What the bench of a run was given (operands, stall patterns and their seeds)."""
    return json.loads((Path(run_json["run_dir"]) / "inputs.json").read_text())


@pytest.mark.simulator("icarus")
def test_cocotb_random_seed_reproduces_the_stimulus(monkeypatch, capsys):
    """The seed picks the operands and the stall pattern: COCOTB_RANDOM_SEED=N gives the
    very run ``--seed N`` gives, another N another run, and the bench's ``random`` is
    seeded with N as cocotb does it."""
    monkeypatch.setenv("COCOTB_RANDOM_SEED", "77")
    from_env = _tile_sim_json(capsys)
    monkeypatch.delenv("COCOTB_RANDOM_SEED")
    explicit = _tile_sim_json(capsys, "--seed", "77")
    other = _tile_sim_json(capsys, "--seed", "78")
    assert _inputs(from_env) == _inputs(explicit)          # the same operands and stalls
    assert from_env["counters"] == explicit["counters"]
    assert _inputs(other) != _inputs(explicit)
    log = (Path(explicit["run_dir"]) / "sim.log").read_text()
    assert "Seeding Python random module with 77" in log


@pytest.mark.simulator("icarus")
def test_waves_env_traces_a_design_already_built_without_tracing(monkeypatch):
    A, B = random_operands(2, 3, 2, in_width=8, signed=True, seed=3)
    monkeypatch.delenv("WAVES", raising=False)
    plain = run_gemm(SMALL, A, B, sim="icarus")
    assert plain.waves is None
    monkeypatch.setenv("WAVES", "1")
    traced = run_gemm(SMALL, A, B, sim="icarus")
    assert traced.waves is not None and Path(traced.waves).stat().st_size > 0
    assert Path(traced.waves).parent == Path(traced.run_dir) != Path(plain.run_dir)
    assert Path(traced.waves).with_suffix(".gtkw").is_file()
    assert not (Path(traced.run_dir).parent / "top.fst").exists()   # no shared file


@pytest.mark.simulator("icarus")
def test_gui_opens_the_run_in_the_chosen_viewer(monkeypatch, tmp_path):
    """GUI=1 traces and, at the end of the run, starts COCOTB_WAVEFORM_VIEWER on the
    waveform (GTKWave gets the save file, which names the waveform)."""
    record = tmp_path / "argv.txt"
    for name in ("surfer", "gtkwave"):
        viewer = tmp_path / name
        viewer.write_text(f"#!/bin/sh\necho {name} \"$@\" >> {record}\n")
        viewer.chmod(viewer.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("GUI", "1")
    A, B = random_operands(2, 2, 2, in_width=8, signed=True, seed=4)
    monkeypatch.setenv("COCOTB_WAVEFORM_VIEWER", "surfer")
    run = run_gemm(SMALL, A, B, sim="icarus")
    monkeypatch.setenv("COCOTB_WAVEFORM_VIEWER", "gtkwave")
    again = run_gemm(SMALL, A, B, sim="icarus")
    assert record.read_text().splitlines() == [
        f"surfer {run.waves}", f"gtkwave {Path(again.waves).with_suffix('.gtkw')}"]
    monkeypatch.setenv("COCOTB_WAVEFORM_VIEWER", "no-such-viewer")
    with pytest.raises(UserError, match=r"^COCOTB_WAVEFORM_VIEWER='no-such-viewer' is not a "):
        run_gemm(SMALL, A, B, sim="icarus")


def test_bad_waves_value_is_one_sentence(monkeypatch, capsys):
    monkeypatch.setenv("WAVES", "maybe")
    assert main(["tile", "sim", "--rows", "2", "--cols", "2", "--dataflow", "os", "--sim",
                 "icarus", "--m", "1", "--k", "1", "--n", "1"]) == 2
    assert "WAVES='maybe' is not a yes/no value; use WAVES=1 or WAVES=0" in capsys.readouterr().err
