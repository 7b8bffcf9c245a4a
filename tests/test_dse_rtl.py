"""RTL spot-checks in sweeps: real cocotb runs agree with the tile model, and a disagreement fails the point."""

import json
import re

import pandas as pd
import pytest

from supernode.dse import load_spec
from supernode.dse.evaluators import tile
from supernode import cli

RTL = {"simulator": "icarus", "max_dim": 6, "tolerance_cycles": 0}
WORKLOAD = {"name": "mix", "gemms": [{"name": "g", "m": 40, "k": 5, "n": 7, "count": 2}]}


def _off_by_one(monkeypatch):
    """Make the model the RTL check compares against predict one cycle too many."""
    import dataclasses

    import supernode.sim.tile.run as run_module
    real = run_module.predict

    def wrong(**kwargs):
        est = real(**kwargs)
        return dataclasses.replace(est, total_cycles=est.total_cycles + 1)
    monkeypatch.setattr(run_module, "predict", wrong)


@pytest.mark.parametrize("dataflow, sim", [
    ("os", "icarus"),
    pytest.param("ws", "icarus", marks=pytest.mark.slow),
    pytest.param("ws", "verilator", marks=pytest.mark.slow),
])
def test_spot_check_runs_the_rtl_and_agrees_with_the_model(dataflow, sim):
    rtl = {**RTL, "simulator": sim}
    metrics = tile.evaluate({"rows": 2, "cols": 3, "dataflow": dataflow}, WORKLOAD, rtl=rtl)
    assert metrics["rtl_gemms"] == 1
    assert metrics["rtl_cycles"] == metrics["rtl_model_cycles"] > 0
    assert metrics["rtl_max_cycle_error"] == 0
    # The RTL ran the clipped GEMM (6x5x6), not the workload's 40x5x7.
    from supernode.fabric.tile_model import predict
    assert metrics["rtl_cycles"] == predict(rows=2, cols=3, dataflow=dataflow, m=6, k=5,
                                            n=6).total_cycles


SPEC = """
[sweep]
name = "rtl-check"
kind = "tile"
[space]
rows = [2, 3]
cols = [2]
[workload]
gemms = [{m = 40, k = 5, n = 7}]
[objectives]
throughput = "max"
[rtl]
spot_checks = 1
seed = 3
simulator = "icarus"
max_dim = 6
"""


@pytest.mark.simulator("icarus")
def test_a_disagreeing_point_fails_the_sweep_and_is_retried_next_run(tmp_path, monkeypatch, capsys):
    # An in-process cluster, reached through --scheduler like any other: the patched model
    # is then the one its worker uses.
    from distributed import LocalCluster

    monkeypatch.setattr(cli, "COMMAND_MODULES", ["supernode.commands.sweep"])
    spec_path = tmp_path / "spec.toml"
    spec_path.write_text(SPEC)
    spec = load_spec(spec_path)
    (checked,) = spec.spot_check_indices()
    out = tmp_path / "out"
    argv = ["sweep", str(spec_path), "--out", str(out), "--quiet", "--json"]
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as cluster:
        with monkeypatch.context() as patch:
            _off_by_one(patch)
            assert cli.main([*argv, "--scheduler", cluster.scheduler_address]) == 1
        captured = capsys.readouterr()
        assert f"point #{checked}" in captured.err and "FAILED" in captured.err
        assert re.search(r"ModelMismatchError: .* the RTL \(icarus\) took (\d+) cycles but the "
                         r"model predicts (\d+)", captured.err)
        summary = json.loads(captured.out)
        assert (summary["failed"], summary["computed"]) == (1, 1)
        table = pd.read_csv(out / "results.csv")
        failed = table[table["status"] == "failed"]
        assert failed["point"].tolist() == [checked] and failed["rtl_checked"].all()
        assert not table.loc[failed.index, "pareto"].any()
        assert json.loads((out / "sweep.json").read_text())["state"] == "failed"

        # With the model right again only the failed point is evaluated, and it passes.
        assert cli.main([*argv, "--scheduler", cluster.scheduler_address]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert (summary["cached"], summary["computed"], summary["failed"]) == (1, 1, 0)
        table = pd.read_parquet(out / "results.parquet")
        row = table[table["point"] == checked].iloc[0]
        assert row["status"] == "ok" and row["rtl_cycles"] == row["rtl_model_cycles"]
        assert table["rtl_checked"].sum() == 1
