"""The sweep engine: spec checks, Pareto front, cache, and a tile sweep on a local Dask cluster."""

import json
import textwrap

import numpy as np
import pandas as pd
import pytest

from supernode.dse import ResultCache, load_spec, pareto_mask, run_sweep
from supernode.dse.cache import write_atomic
from supernode.fabric.tile_model import predict
from supernode.rtl.errors import UserError

TILE_SPEC = """
[sweep]
name = "tiny-tile"
kind = "tile"
[space]
rows = [2, 4]
cols = {start = 2, stop = 8, factor = 2}
dataflow = ["os", "ws"]
[workload]
gemms = [{name = "a", m = 24, k = 40, n = 16}, {m = 8, k = 64, n = 8, count = 3}]
[objectives]
throughput = "max"
latency = "min"
"""


def write_spec(tmp_path, text, name="spec.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


# --- Pareto ------------------------------------------------------------------------------------

def brute_force_front(values, directions):
    sign = np.array([1 if d == "max" else -1 for d in directions])
    v = np.asarray(values, dtype=float) * sign
    out = []
    for i, row in enumerate(v):
        if np.isnan(row).any():
            out.append(False)
            continue
        dominated = any(np.all(o >= row) and np.any(o > row)
                        for j, o in enumerate(v) if j != i and not np.isnan(o).any())
        out.append(not dominated)
    return np.array(out)


def test_pareto_small_example():
    # throughput (max), area (min)
    values = [[10, 5], [8, 3], [10, 6], [4, 3], [12, 9], [12, 9], [float("nan"), 1]]
    mask = pareto_mask(values, ["max", "min"])
    assert mask.tolist() == [True, True, False, False, True, True, False]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pareto_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 6, size=(60, 3)).astype(float)
    dirs = ["max", "min", "max"]
    assert (pareto_mask(values, dirs) == brute_force_front(values, dirs)).all()


def test_pareto_rejects_bad_direction():
    with pytest.raises(ValueError, match="'up'"):
        pareto_mask([[1.0]], ["up"])


# --- spec --------------------------------------------------------------------------------------

def test_spec_expands_lists_ranges_and_scalars(tmp_path):
    spec = load_spec(write_spec(tmp_path, TILE_SPEC))
    assert spec.name == "tiny-tile"
    assert spec.space == {"rows": (2, 4), "cols": (2, 4, 8), "dataflow": ("os", "ws")}
    points = spec.points()
    assert len(points) == 12 and points[0] == {"rows": 2, "cols": 2, "dataflow": "os"}
    assert len({json.dumps(p, sort_keys=True) for p in points}) == 12


@pytest.mark.parametrize("change, words", [
    (("kind = \"tile\"", "kind = \"gpu\""), ["[sweep] kind", "'gpu'", "tile, router, system"]),
    (("rows = [2, 4]", "rows = [2, 4]\nwidth = [3]"), ["[space] parameter", "'width'"]),
    (("rows = [2, 4]", "rows = [2, 99]"), ["point", "99", "rows must be an integer from 1"]),
    (("rows = [2, 4]", "rows = []"), ["[space] rows", "[]", "non-empty list"]),
    (("rows = [2, 4]", "rows = [2, 2]"), ["[space] rows", "all different"]),
    (("rows = [2, 4]", "rows = {start = 4, stop = 2, step = 1}"), ["[space] rows", "stop >= start"]),
    (("dataflow = [\"os\", \"ws\"]", "dataflow = [\"is\"]"), ["[space] dataflow", "'is'", "\"os\""]),
    (("throughput = \"max\"", "throughput = \"most\""), ["[objectives] throughput", "'most'"]),
    (("throughput = \"max\"", "speed = \"max\""), ["[objectives] name", "'speed'"]),
    (("m = 24,", "m = 0,"), ["[workload]", "gemms[0].m = 0"]),
    (("[objectives]", "[rtl]\nspot_checks = 99\n[objectives]"), ["[rtl] spot_checks", "99"]),
    (("[objectives]", "[rtl]\nsimulator = \"xsim\"\n[objectives]"), ["[rtl]", "'xsim'"]),
    (("[sweep]", "[sweeps]\n[sweep]"), ["section", "'sweeps'"]),
    (("kind = \"tile\"", "kind = \"tile\"\nimplement = \"yes\""),
     ["[sweep] implement", "'yes'", "true or false"]),
    (("kind = \"tile\"", "kind = \"tile\"\nimplement = true\ndevice = \"XC7A35T\""),
     ["[sweep] device", "'XC7A35T'", "LFE5U-85F"]),
    (("kind = \"tile\"", "kind = \"tile\"\ndevice = \"LFE5U-25F\""),
     ["[sweep] device", "unless implement = true"]),
    (("kind = \"tile\"", "kind = \"tile\"\nimplement = true\nseed = -4"),
     ["[sweep] seed", "-4"]),
])
def test_bad_spec_is_one_sentence_naming_file_key_and_value(tmp_path, change, words):
    old, new = change
    assert old in TILE_SPEC
    path = write_spec(tmp_path, TILE_SPEC.replace(old, new, 1))
    with pytest.raises(UserError) as info:
        load_spec(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message
    for word in words:
        assert word in message, message


def test_implementation_is_asked_for_or_needed_by_an_objective(tmp_path):
    assert load_spec(write_spec(tmp_path, TILE_SPEC)).implement is None
    asked = TILE_SPEC.replace('kind = "tile"', 'kind = "tile"\nimplement = true\nseed = 3')
    spec = load_spec(write_spec(tmp_path, asked, "asked.toml"))
    assert spec.implement == {"device": "LFE5U-85F", "seed": 3}
    assert all(task["implement"] == spec.implement for task in spec.tasks("code"))
    needed = TILE_SPEC.replace('latency = "min"', 'time = "min"')
    assert load_spec(write_spec(tmp_path, needed, "needed.toml")).implement is not None
    # A spec without implementation keeps the cache keys it had before the option existed.
    assert "implement" not in load_spec(write_spec(tmp_path, TILE_SPEC)).tasks("code")[0]


def test_a_system_sweep_cannot_be_implemented(tmp_path):
    text = """
        [sweep]
        kind = "system"
        implement = true
        [space]
        nodes = [1, 2]
        [workload]
        system = "cloudmatrix384"
        model = "deepseek-r1"
        phase = "decode"
        [objectives]
        throughput = "max"
    """
    with pytest.raises(UserError, match=r"implement = true is not accepted; expected false, "
                                        r"as system points have no FPGA implementation"):
        load_spec(write_spec(tmp_path, text))


def test_missing_and_malformed_spec_files(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_spec(tmp_path / "nope.toml")
    with pytest.raises(UserError, match="not valid TOML"):
        load_spec(write_spec(tmp_path, "[sweep\n"))


def test_spot_check_choice_is_seeded_and_sized(tmp_path):
    text = TILE_SPEC.replace("[objectives]", "[rtl]\nspot_checks = 3\nseed = SEED\n[objectives]")
    a = load_spec(write_spec(tmp_path, text.replace("SEED", "5"), "a.toml")).spot_check_indices()
    b = load_spec(write_spec(tmp_path, text.replace("SEED", "5"), "b.toml")).spot_check_indices()
    c = load_spec(write_spec(tmp_path, text.replace("SEED", "6"), "c.toml")).spot_check_indices()
    assert a == b and len(a) == 3 and all(0 <= i < 12 for i in a)
    assert a != c


# --- cache -------------------------------------------------------------------------------------

def test_cache_round_trip_and_torn_entries_count_as_missing(tmp_path):
    cache = ResultCache(tmp_path / "c")
    cache.put("k1", {"key": "k1", "status": "ok", "metrics": {"x": 1}})
    assert cache.get("k1")["metrics"] == {"x": 1} and "k1" in cache
    (tmp_path / "c" / "k2.json").write_text('{"key": "k2", "met')   # a torn write
    assert cache.get("k2") is None
    write_atomic(tmp_path / "c" / "k3.json", json.dumps({"key": "other"}))
    assert cache.get("k3") is None
    with pytest.raises(ValueError, match="'k4'"):
        cache.put("k4", {"key": "k5"})
    assert not [p for p in (tmp_path / "c").iterdir() if p.suffix == ".tmp"]


# --- a whole sweep on a local Dask cluster -----------------------------------------------------

def expected_tile_metrics(point, gemms):
    cycles = macs = 0
    for g in gemms:
        est = predict(rows=point["rows"], cols=point["cols"], dataflow=point["dataflow"],
                      m=g["m"], k=g["k"], n=g["n"])
        cycles += g.get("count", 1) * est.total_cycles
        macs += g.get("count", 1) * g["m"] * g["k"] * g["n"]
    return cycles, macs


def test_tile_sweep_writes_table_marks_front_and_reruns_from_cache(tmp_path):
    spec = load_spec(write_spec(tmp_path, TILE_SPEC))
    out = tmp_path / "out"
    first = run_sweep(spec, out_dir=out, workers=2, progress=False)
    assert (first.total, first.cached, first.computed, first.failures) == (12, 0, 12, [])

    table = pd.read_parquet(out / "results.parquet")
    csv = pd.read_csv(out / "results.csv")
    assert len(table) == len(csv) == 12
    for column in ("rows", "cols", "dataflow", "throughput_macs_per_cycle", "utilization",
                   "latency_cycles", "mix_cycles", "pareto", "status", "rtl_checked"):
        assert column in table.columns, column
    assert (table["status"] == "ok").all()
    gemms = [{"m": 24, "k": 40, "n": 16}, {"m": 8, "k": 64, "n": 8, "count": 3}]
    for _, row in table.iterrows():
        cycles, macs = expected_tile_metrics(row, gemms)
        assert row["mix_cycles"] == cycles and row["macs"] == macs
        assert row["utilization"] == pytest.approx(macs / cycles / (row["rows"] * row["cols"]))
    front = brute_force_front(table[["throughput_macs_per_cycle", "latency_cycles"]], ["max", "min"])
    assert (table["pareto"].to_numpy() == front).all() and front.any()
    heatmaps = sorted(p.name for p in out.glob("heatmap-*"))
    assert heatmaps == ["heatmap-utilisation-rows-cols.png", "heatmap-utilisation-rows-cols.svg"]
    assert (out / "heatmap-utilisation-rows-cols.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "sweep.json").read_text())["state"] == "complete"

    # A second run answers everything from the cache, and the same table comes out.
    again = run_sweep(spec, out_dir=out, workers=1, progress=False, resume=True)
    assert (again.cached, again.computed) == (12, 0)
    pd.testing.assert_frame_equal(
        pd.read_parquet(out / "results.parquet").drop(columns=["seconds", "worker"]),
        table.drop(columns=["seconds", "worker"]))

    # Lost points (as after an interruption) are recomputed, and only those.
    entries = sorted((out / "cache").glob("*.json"))
    for path in entries[:5]:
        path.unlink()
    entries[5].write_text(entries[5].read_text()[:20])       # a torn entry counts as missing
    partial = run_sweep(spec, out_dir=out, workers=1, progress=False, plots=False)
    assert (partial.cached, partial.computed) == (6, 6)


def test_resume_refuses_an_empty_or_different_out_dir(tmp_path):
    spec = load_spec(write_spec(tmp_path, TILE_SPEC))
    with pytest.raises(UserError, match="--resume found no earlier sweep"):
        run_sweep(spec, out_dir=tmp_path / "empty", resume=True, progress=False)
    other = tmp_path / "other"
    other.mkdir()
    (other / "sweep.json").write_text(json.dumps({"name": "x", "spec_digest": "0"}))
    with pytest.raises(UserError, match="different spec"):
        run_sweep(spec, out_dir=other, resume=True, progress=False)


def test_tile_area_and_energy_come_from_yosys_synthesis():
    from supernode.sim.area import synthesize
    from supernode.dse.evaluators import tile
    from supernode.rtl.tile import SystolicTile

    point = {"rows": 2, "cols": 2, "dataflow": "ws", "in_width": 4, "acc_width": 12}
    workload = tile.check_workload({"gemms": [{"m": 8, "k": 8, "n": 8}]}, set())
    metrics = tile.evaluate(point, workload, area=True)
    report = synthesize(SystolicTile, point)
    assert report.cached            # the sweep's synthesis is the one reused here
    assert metrics["area_cells"] == report.cells > 0
    assert metrics["area_flip_flops"] == report.flip_flops > 0
    assert metrics["area_gate_equivalents"] == report.gate_equivalents
    assert metrics["energy_proxy_ge_cycles"] == report.gate_equivalents * metrics["mix_cycles"]
