"""`supernode sweep` from the command line, on a local cluster and on a separately started one."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from supernode.fabric.tile_model import predict
from supernode import cli

REPO = Path(__file__).resolve().parents[1]

SPEC = """
[sweep]
name = "cli-tile"
kind = "tile"
[space]
rows = [2, 4]
cols = [2, 4]
dataflow = ["os", "ws"]
[workload]
gemms = [{m = 16, k = 24, n = 12}]
[objectives]
throughput = "max"
latency = "min"
"""


@pytest.fixture
def sweep_main(monkeypatch):
    """``supernode`` with only the sweep command, so this test does not hang on others."""
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["supernode.commands.sweep"])
    return cli.main


@pytest.fixture
def spec_path(tmp_path):
    path = tmp_path / "spec.toml"
    path.write_text(SPEC)
    return path


def test_sweep_cli_progress_bar_json_and_rerun_from_cache(sweep_main, spec_path, tmp_path, capsys):
    out = tmp_path / "out"
    assert sweep_main(["sweep", str(spec_path), "--out", str(out), "--workers", "1"]) == 0
    captured = capsys.readouterr()
    assert "sweep cli-tile" in captured.err and "8/8" in captured.err      # the progress bar
    assert "point/s" in captured.err or "s/point" in captured.err
    assert re.search(r"Dask dashboard: http://\S+:\d+/status\n", captured.err)
    assert "8 points, 0 from cache, 8 evaluated, 0 failed" in captured.out
    assert sweep_main(["sweep", str(spec_path), "--out", str(out), "--resume", "--json",
                       "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["total"], summary["cached"], summary["computed"]) == (8, 8, 0)
    assert {Path(f).name for f in summary["files"]} >= {"results.csv", "results.parquet"}


def test_sweep_cli_bad_input_exits_2_with_one_line(sweep_main, spec_path, tmp_path, capsys):
    spec_path.write_text(SPEC.replace('cols = [2, 4]', 'cols = ["wide"]'))
    assert sweep_main(["sweep", str(spec_path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "[space] cols" in err and "'wide'" in err
    assert sweep_main(["sweep", str(tmp_path / "missing.toml")]) == 2
    assert "missing.toml" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_unreachable_scheduler_is_a_user_error(sweep_main, spec_path, tmp_path, capsys,
                                               monkeypatch):
    from supernode.dse import execute
    monkeypatch.setattr(execute, "CONNECT_TIMEOUT_S", 2)
    with socket.socket() as s:                 # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    assert sweep_main(["sweep", str(spec_path), "--out", str(tmp_path / "o"), "--quiet",
                       "--scheduler", address]) == 2
    err = capsys.readouterr().err
    assert address in err and "running Dask scheduler" in err


def _dask_cli():
    exe = Path(sys.executable).parent / "dask"
    return str(exe) if exe.exists() else shutil.which("dask")


def _wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout} s")
        time.sleep(0.2)


def test_sweep_runs_on_a_separately_started_scheduler_and_worker(sweep_main, spec_path, tmp_path,
                                                                 capsys):
    dask = _dask_cli()
    assert dask, "the dask command-line tool is missing"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    scheduler_file = tmp_path / "scheduler.json"
    logs = tmp_path / "dask-logs"
    logs.mkdir()
    procs = []
    try:
        procs.append(subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(scheduler_file)],
            cwd=REPO, env=env, stdout=open(logs / "scheduler.log", "w"), stderr=subprocess.STDOUT))
        _wait_for(lambda: scheduler_file.exists() and scheduler_file.stat().st_size > 0, 60,
                  "the scheduler writing its address")
        address = json.loads(scheduler_file.read_text())["address"]
        worker = subprocess.Popen(
            [dask, "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard"],
            cwd=REPO, env=env, stdout=open(logs / "worker.log", "w"), stderr=subprocess.STDOUT)
        procs.append(worker)

        out = tmp_path / "out"
        assert sweep_main(["sweep", str(spec_path), "--out", str(out), "--scheduler", address,
                           "--json", "--quiet"]) == 0, capsys.readouterr().err
        summary = json.loads(capsys.readouterr().out)
        assert (summary["total"], summary["computed"], summary["failed"]) == (8, 8, 0)
        table = pd.read_parquet(out / "results.parquet")
        # Every point ran in the worker process started above, not in this one.
        assert set(table["worker"]) == {f"{socket.gethostname()}:{worker.pid}"}
        for _, row in table.iterrows():
            est = predict(rows=row["rows"], cols=row["cols"], dataflow=row["dataflow"],
                          m=16, k=24, n=12)
            assert row["mix_cycles"] == est.total_cycles
        # The same sweep again on that cluster answers from the cache.
        assert sweep_main(["sweep", str(spec_path), "--out", str(out), "--scheduler", address,
                           "--json", "--quiet"]) == 0
        assert json.loads(capsys.readouterr().out)["cached"] == 8
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in reversed(procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


ROUTER_SPEC = """
[sweep]
name = "interrupted"
kind = "router"
[space]
vcs = [1, 2]
buffer_depth = [2, 4]
load = [0.2, 0.4, 0.6]
[workload]
pattern = "all_to_all"
packet_length = 2
warmup = 100
measure = 1500
[objectives]
throughput = "max"
"""


@pytest.mark.slow
def test_an_interrupted_sweep_keeps_every_finished_point_and_resumes(sweep_main, tmp_path, capsys):
    spec_path = tmp_path / "spec.toml"
    spec_path.write_text(ROUTER_SPEC)
    out = tmp_path / "out"
    cache = out / "cache"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "supernode", "sweep", str(spec_path), "--out",
                             str(out), "--workers", "1", "--quiet"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: cache.exists() and len(list(cache.glob("*.json"))) >= 2, 120,
                  "two points finishing")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    finished = list(cache.glob("*.json"))
    assert 2 <= len(finished) < 12
    for path in finished:                      # every entry is whole
        assert json.loads(path.read_text())["status"] == "ok"
    assert not (out / "results.csv").exists()  # the table comes at the end only

    assert sweep_main(["sweep", str(spec_path), "--out", str(out), "--resume", "--quiet",
                       "--json", "--workers", "2"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["cached"] == len(finished)
    assert summary["computed"] == 12 - len(finished)
    assert len(pd.read_csv(out / "results.csv")) == 12
