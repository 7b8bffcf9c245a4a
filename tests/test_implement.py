"""FPGA implementation (Yosys synth_ecp5 and nextpnr): figures, cache, CLI, sweeps, pipelining."""

import json
import re
import textwrap

import pandas as pd
import pytest

from supernode.rtl.router import Router
from supernode.rtl.tile import SystolicTile
from supernode.sim.implement import DEFAULT_DEVICE, DEFAULT_SEED, DoesNotFit, implement, signal_name
from supernode import cli
from supernode.dse import load_spec, run_sweep

SMALL = {"rows": 2, "cols": 2, "dataflow": "os"}


@pytest.fixture(scope="session")
def shared_root(tmp_path_factory):
    return tmp_path_factory.mktemp("implement-build")


@pytest.fixture
def build_root(shared_root, monkeypatch):
    """One cache for the whole module, so the 2x2 tile is placed and routed once."""
    monkeypatch.setenv("SUPERNODE_BUILD", str(shared_root))
    return shared_root


def _cli(monkeypatch, capsys, *argv):
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["supernode.commands.implement"])
    code = cli.main(["implement", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def _declared(verilog: str, name: str) -> bool:
    """Whether the exported Verilog declares the signal ``name`` (a struct field such as
    ``a_r0_c0.data`` is a Verilog wire of that escaped name)."""
    escaped = re.escape(name)
    return re.search(rf"(reg|wire)\s+(\[[^\]]*\]\s*)?\\?{escaped}\b", verilog) is not None


def test_a_2x2_tile_is_placed_and_routed(build_root):
    # Placed and routed here even when a test before it left the result in the cache.
    r = implement(SystolicTile, SMALL, kind="tile", use_cache=False)
    assert r.params["dataflow"] == "os" and r.params["mac_stages"] == 0
    assert (r.device, r.seed) == (DEFAULT_DEVICE, DEFAULT_SEED)
    assert r.dsp_blocks == 4                    # one 18x18 multiplier per 8-bit cell
    assert r.block_ram == 0 and r.luts > 0 and r.flip_flops > 0
    assert 0 < r.luts <= r.available["luts"] and r.available["dsp_blocks"] == 156
    assert 0 < r.max_clock_mhz < 1000
    assert r.critical_path_ns == pytest.approx(1000 / r.max_clock_mhz, rel=0.05)
    verilog = (r.directory / "top.v").read_text()
    assert _declared(verilog, r.critical_path_from), r.critical_path_from
    assert _declared(verilog, r.critical_path_to), r.critical_path_to
    assert r.yosys_version.startswith("Yosys ") and r.nextpnr_version.startswith("nextpnr-")
    assert (r.directory / "nextpnr.log").exists() and (r.directory / "report.json").exists()

    again = implement(SystolicTile, SMALL, kind="tile")
    assert again.cached and not r.cached and again == r


def test_cli_prints_the_figures_as_json_and_as_a_table(build_root, monkeypatch, capsys):
    expected = implement(SystolicTile, SMALL, kind="tile")
    code, out, err = _cli(monkeypatch, capsys, "tile", "--rows", "2", "--cols", "2",
                          "--dataflow", "os", "--json")
    assert code == 0, err
    figures = json.loads(out)
    for name in ("luts", "flip_flops", "dsp_blocks", "block_ram", "max_clock_mhz",
                 "critical_path_from", "critical_path_to", "seed", "device",
                 "yosys_version", "nextpnr_version"):
        assert figures[name] == getattr(expected, name), name
    code, out, err = _cli(monkeypatch, capsys, "tile", "--rows", "2", "--cols", "2")
    assert code == 0, err
    assert f"{expected.max_clock_mhz:.1f} MHz" in out and "(from cache)" in out
    assert f"seed {DEFAULT_SEED}" in out and "not carry over to an ASIC" in out


@pytest.mark.parametrize("argv, fragment", [
    (["tile", "--rows", "2", "--cols", "2", "--device", "XC7A35T"],
     "device must be one of LFE5U-12F"),
    (["tile", "--rows", "2", "--cols", "2", "--seed", "-1"], "seed must be an integer"),
    (["tile", "--rows", "2", "--cols", "2", "--mac-stages", "9"],
     "mac_stages must be an integer from 0 to 4, not 9"),
    (["router", "--ports", "1"], "ports"),
])
@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_cli_errors_are_one_sentence(tmp_path, monkeypatch, capsys, argv, fragment):
    import gc

    monkeypatch.setenv("SUPERNODE_BUILD", str(tmp_path))
    code, out, err = _cli(monkeypatch, capsys, *argv)
    assert code == 2 and fragment in err and err.count("\n") == 1 and "Traceback" not in err
    assert not list(tmp_path.glob("implement/*")), "a rejected configuration left files behind"
    gc.collect()  # a half-built component warns when collected; let that happen under the filter


def test_signal_names_drop_the_tools_suffixes():
    assert signal_name("acc_r1_c1_TRELLIS_FF_Q_10") == "acc_r1_c1"
    assert signal_name("a_r0_c0.data_TRELLIS_FF_Q_7") == "a_r0_c0.data"
    assert signal_name("\\results.w_level_TRELLIS_FF_Q") == "results.w_level"
    assert signal_name("since_last") == "since_last"


def test_a_tile_sweep_turns_cycles_into_time(build_root, tmp_path):
    spec_path = tmp_path / "spec.toml"
    spec_path.write_text(textwrap.dedent("""
        [sweep]
        name = "tiny-implemented"
        kind = "tile"
        implement = true
        [space]
        rows = 2
        cols = 2
        dataflow = "os"
        [workload]
        gemms = [{m = 24, k = 40, n = 16}]
        [objectives]
        time = "min"
        luts = "min"
        [[plots]]
        type = "pareto"
        x = "luts"
        y = "time"
    """))
    spec = load_spec(spec_path)
    assert spec.implement == {"device": DEFAULT_DEVICE, "seed": DEFAULT_SEED}
    report = run_sweep(spec, out_dir=tmp_path / "out", workers=1, progress=False)
    assert report.failures == []
    table = pd.read_parquet(tmp_path / "out" / "results.parquet")
    (row,) = table.to_dict("records")
    figures = implement(SystolicTile, SMALL, kind="tile")
    assert figures.cached                       # the sweep's implementation is the one reused
    assert row["impl_fits"] and row["impl_luts"] == figures.luts
    assert row["impl_max_clock_mhz"] == figures.max_clock_mhz
    assert row["mix_time_us"] == pytest.approx(row["mix_cycles"] / figures.max_clock_mhz)
    assert (tmp_path / "out" / "pareto-time-vs-luts.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_mac_pipeline_stages_raise_the_clock_of_a_4x4_tile(build_root):
    """One product register per cell splits the multiplier-then-adder path, so the placed
    4x4 tile runs faster (its cycle counts stay exact: tests/test_tile_rtl.py)."""
    plain = implement(SystolicTile, {"rows": 4, "cols": 4, "dataflow": "os"}, kind="tile")
    piped = implement(SystolicTile, {"rows": 4, "cols": 4, "dataflow": "os", "mac_stages": 1},
                      kind="tile")
    assert plain.critical_path_to.startswith("acc_r")
    assert not piped.critical_path_to.startswith("acc_r")
    assert piped.max_clock_mhz > 1.2 * plain.max_clock_mhz
    assert piped.dsp_blocks == plain.dsp_blocks == 16
    assert piped.flip_flops > plain.flip_flops


@pytest.mark.slow
def test_a_tile_that_does_not_fit_says_so(build_root, monkeypatch, capsys):
    # 30 multipliers; the smallest ECP5 has 28.
    params = {"rows": 5, "cols": 6, "dataflow": "os"}
    with pytest.raises(DoesNotFit, match=r"does not fit the LFE5U-12F: it needs 30 dsp blocks "
                                         r"\(MULT18X18D\) where it has 28"):
        implement(SystolicTile, params, kind="tile", device="LFE5U-12F")
    code, out, err = _cli(monkeypatch, capsys, "tile", "--rows", "5", "--cols", "6",
                          "--device", "LFE5U-12F")
    assert code == 2 and "does not fit" in err and err.count("\n") == 1 and out == ""


@pytest.mark.slow
def test_a_router_is_placed_and_routed(build_root, monkeypatch, capsys):
    code, out, err = _cli(monkeypatch, capsys, "router", "--ports", "4", "--vcs", "2", "--json")
    assert code == 0, err
    figures = json.loads(out)
    r = implement(Router, figures["params"], kind="router")
    assert r.cached and r.max_clock_mhz == figures["max_clock_mhz"] > 0
    assert r.flip_flops > 0 and r.dsp_blocks == 0
