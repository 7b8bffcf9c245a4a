"""Area from Yosys synthesis: exact flip-flop counts, gate-equivalent arithmetic, cache, CLI."""

import json
import sys
from pathlib import Path

import pytest

from supernode.sim import area
from supernode.sim.area import GE_WEIGHTS, gate_equivalents, synthesize
from supernode import cli

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_waves_fifo_bench import StreamFIFO  # noqa: E402


@pytest.fixture(scope="session")
def shared_root(tmp_path_factory):
    return tmp_path_factory.mktemp("area-build")


@pytest.fixture
def build_root(shared_root, monkeypatch):
    """One cache for the whole module, so each configuration is synthesised once."""
    monkeypatch.setenv("SUPERNODE_BUILD", str(shared_root))
    return shared_root


def _fifo_flops(width, depth):
    # Storage, read and write pointers (range(depth)) and the level counter (range(depth + 1)).
    # The occupancy FSM and its counter drive no output, so synthesis removes them.
    return width * depth + 2 * (depth - 1).bit_length() + depth.bit_length()


@pytest.mark.parametrize("width, depth", [(8, 4), (4, 8)])
def test_fifo_flip_flops_are_exact(build_root, width, depth):
    r = synthesize(StreamFIFO, {"width": width, "depth": depth})
    assert r.flip_flops == _fifo_flops(width, depth)
    assert r.unpriced == {}
    assert r.cells == sum(r.cells_by_type.values()) > r.flip_flops
    assert "$scopeinfo" not in r.cells_by_type
    total, per_type, _ = gate_equivalents(r.cells_by_type)
    assert r.gate_equivalents == total == pytest.approx(sum(per_type.values()))
    assert r.yosys_version.startswith("Yosys ")
    assert (r.directory / "top.v").exists() and (r.directory / "yosys.log").exists()


def test_bigger_design_costs_more(build_root):
    small = synthesize(StreamFIFO, {"width": 4, "depth": 4})
    wide = synthesize(StreamFIFO, {"width": 8, "depth": 4})
    assert wide.flip_flops - small.flip_flops == 4 * 4
    assert wide.gate_equivalents > small.gate_equivalents + 4 * 4 * min(
        GE_WEIGHTS[k] for k in ("DFF", "DFFE"))


def test_cache_hit_reuses_and_rtl_change_resynthesises(tmp_path, monkeypatch):
    monkeypatch.setenv("SUPERNODE_BUILD", str(tmp_path))
    first = synthesize(StreamFIFO, {"width": 8, "depth": 4})
    assert not first.cached

    def no_yosys(*a, **k):
        raise AssertionError("Yosys ran although the cache holds this configuration")

    monkeypatch.setattr(area, "_run_yosys", no_yosys)
    # Defaults are filled in, so naming a default explicitly hits the same entry.
    again = synthesize(StreamFIFO, {"width": 8})
    again_explicit = synthesize(StreamFIFO, {"width": 8, "depth": 4})
    assert again.cached and again_explicit.cached
    assert again.cells_by_type == first.cells_by_type and again.directory == first.directory
    monkeypatch.undo()
    monkeypatch.setenv("SUPERNODE_BUILD", str(tmp_path))
    # Same key, different Verilog (an edited block): the entry is not trusted.
    cells = json.loads((first.directory / "cells.json").read_text())
    cells["verilog_sha256"] = "0" * 64
    (first.directory / "cells.json").write_text(json.dumps(cells))
    redo = synthesize(StreamFIFO, {"width": 8, "depth": 4})
    assert not redo.cached and redo.cells_by_type == first.cells_by_type


def test_ge_weights_are_a_parameter(build_root):
    r = synthesize(StreamFIFO, {"width": 8, "depth": 4})
    flops_only = {k: (1.0 if k in area._FLOP_CLASSES else 0.0) for k in GE_WEIGHTS}
    r2 = synthesize(StreamFIFO, {"width": 8, "depth": 4}, ge_weights=flops_only)
    assert r2.cached and r2.gate_equivalents == r.flip_flops


def test_every_generic_cell_has_a_weight():
    for cell in ["$_NOT_", "$_AND_", "$_MUX_", "$_AOI4_", "$_DFF_P_", "$_DFF_PN0_", "$_DFFE_PP_",
                 "$_DFFE_PN1P_", "$_SDFF_PP0_", "$_SDFFE_PP0P_", "$_SDFFCE_PN1N_",
                 "$_DFFSR_PPP_", "$_ALDFF_PP_", "$_DLATCH_P_"]:
        total, _, unpriced = gate_equivalents({cell: 2})
        assert unpriced == {} and total > 0, cell
    total, _, unpriced = gate_equivalents({"$_MYSTERY_": 3, "$_NAND_": 2})
    assert unpriced == {"$_MYSTERY_": 3} and total == 2.0


def _cli(monkeypatch, capsys, *argv):
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["supernode.commands.area"])
    code = cli.main(["area", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_component_json_and_table(build_root, monkeypatch, capsys):
    code, out, err = _cli(monkeypatch, capsys, "component", "test_waves_fifo_bench:StreamFIFO",
                          "-p", "width=8", "-p", "depth=4", "--json")
    assert code == 0, err
    r = json.loads(out)
    assert r["flip_flops"] == _fifo_flops(8, 4) and r["params"] == {"width": 8, "depth": 4}
    code, out, err = _cli(monkeypatch, capsys, "component", "test_waves_fifo_bench:StreamFIFO",
                          "-p", "width=8")
    assert code == 0 and "(from cache)" in out and f"flip-flop bits: {_fifo_flops(8, 4)}" in out


def test_cli_tile_matches_api_and_grows_with_the_array(build_root, monkeypatch, capsys):
    from supernode.rtl.tile import SystolicTile

    code, out, err = _cli(monkeypatch, capsys, "tile", "--rows", "1", "--cols", "2",
                          "--dataflow", "os", "--json")
    assert code == 0, err
    two = synthesize(SystolicTile, {"rows": 1, "cols": 2})
    assert two.cached and json.loads(out)["gate_equivalents"] == two.gate_equivalents
    assert two.params["dataflow"] == "os" and two.unpriced == {}
    one = synthesize(SystolicTile, {"rows": 1, "cols": 1})
    assert two.flip_flops > one.flip_flops and two.gate_equivalents > one.gate_equivalents


@pytest.mark.parametrize("argv, fragment", [
    (["tile", "--rows", "0", "--cols", "2"], "rows must be"),
    (["component", "nowhere_at_all:X"], "cannot import module 'nowhere_at_all'"),
    (["component", "json:JSONDecoder"], "is not an Amaranth wiring.Component class"),
    (["component", "supernode.rtl.tile"], "must be given as MODULE:CLASS"),
    (["component", "test_waves_fifo_bench:StreamFIFO", "-p", "width=-1"],
     "width must be a positive integer, not -1"),
])
@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_cli_errors_are_one_sentence(tmp_path, monkeypatch, capsys, argv, fragment):
    import gc

    monkeypatch.setenv("SUPERNODE_BUILD", str(tmp_path))
    code, out, err = _cli(monkeypatch, capsys, *argv)
    assert code == 2 and fragment in err and err.count("\n") == 1 and "Traceback" not in err
    assert not list(tmp_path.glob("area/*")), "a rejected configuration left files behind"
    gc.collect()  # a half-built component warns when collected; let that happen under the filter
