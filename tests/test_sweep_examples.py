"""The example sweep specs in examples/: they load, and (slow) run end to end then again from cache."""

import json
from pathlib import Path

import pandas as pd
import pytest

from supernode.dse import load_spec
from supernode import cli

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.toml"))
EXPECTED = {"tile_array_shapes.toml": "tile", "router_vc_buffers.toml": "router",
            "system_moe_decode.toml": "system"}


def test_the_three_examples_are_there_and_load():
    assert {p.name for p in EXAMPLES} >= set(EXPECTED)
    for path in EXAMPLES:
        spec = load_spec(path)
        if path.name in EXPECTED:
            assert spec.kind == EXPECTED[path.name]
        assert spec.plots, f"{path.name} draws no plot"
        assert len(spec.points()) >= 10


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_sweep_runs_then_finishes_from_cache(path, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["supernode.commands.sweep"])
    spec = load_spec(path)
    out = tmp_path / "out"
    assert cli.main(["sweep", str(path), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    total = len(spec.points())
    assert f"{total}/{total}" in captured.err            # the progress bar reached the end
    table = pd.read_parquet(out / "results.parquet")
    assert len(table) == total and (table["status"] == "ok").all()
    assert table["pareto"].any()
    assert table["rtl_checked"].sum() == spec.spot_checks
    for plot in ("*.png", "*.svg"):
        assert len(list(out.glob(plot))) == len(spec.plots)
    assert cli.main(["sweep", str(path), "--out", str(out), "--json", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["cached"], summary["computed"]) == (total, 0)
