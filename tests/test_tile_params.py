"""The tile's one parameter object: its checks, and every reader following it when it changes."""

import json

import pytest

from supernode.fabric.tile_model import predict, reference_gemm
from supernode.rtl.errors import UserError, check_int
from supernode.rtl.tile import SystolicTile
from supernode.rtl.tile_params import DATAFLOWS, TileParams, as_tile_params
from supernode.sim.tile.pysim import run_gemm_pysim
from supernode.sim.tile.run import random_operands
from supernode.cli import main


@pytest.mark.parametrize("kwargs, message", [
    ({"rows": 65}, "rows must be an integer from 1 to 64, not 65"),
    ({"cols": True}, "cols must be an integer from 1 to 64, not True"),
    ({"in_width": 33}, "in_width must be an integer from 2 to 32, not 33"),
    ({"in_width": 4, "acc_width": 97}, "acc_width must be an integer from 2*in_width (8) to "
                                       "96, not 97"),
    ({"signed": "yes"}, "signed must be True or False, not 'yes'"),
    ({"dataflow": "OS"}, "dataflow must be one of 'os', 'ws', not 'OS'"),
    ({"acc_depth": 4097}, "acc_depth must be an integer from 1 to 4096, not 4097"),
])
def test_bad_parameters_are_one_user_error_sentence(kwargs, message):
    with pytest.raises(UserError) as info:
        TileParams(**{"rows": 2, "cols": 2, **kwargs})
    assert str(info.value) == message


def test_check_int_names_the_value():
    assert check_int("n", 3, 1, 4) == 3
    with pytest.raises(UserError, match=r"^n must be an integer from 1 to 4, not 5$"):
        check_int("n", 5, 1, 4)


def test_defaults_are_the_fields_and_the_component_publishes_them():
    assert TileParams.defaults() == {"in_width": 8, "acc_width": 32, "signed": True,
                                     "dataflow": "os", "acc_depth": 64, "mac_stages": 0}
    assert TileParams.names() == ("rows", "cols", "in_width", "acc_width", "signed",
                                  "dataflow", "acc_depth", "mac_stages")
    assert DATAFLOWS == ("os", "ws")
    params = TileParams(rows=3, cols=5, dataflow="ws", acc_depth=7)
    tile = SystolicTile(params=params)
    tile._MustUse__silence = True       # built only to read what it publishes
    assert tile.params is params
    for name in (*TileParams.names(), "stages", "peak_macs_per_cycle", "fill_latency",
                 "drain_latency", "fold_interval", "weight_release_latency"):
        assert getattr(tile, name) == getattr(params, name), name
    assert params.stages == 8 and params.drain_latency == params.stages + 1


def test_the_tile_is_given_one_way_or_the_other():
    params = TileParams(rows=2, cols=2)
    assert as_tile_params(params) is params
    assert as_tile_params({"rows": 2, "cols": 2}) == params == as_tile_params(rows=2, cols=2)
    with pytest.raises(UserError, match="either as parameters or as"):
        as_tile_params(params, rows=3)
    with pytest.raises(UserError, match="must be a TileParams or a mapping, not 4"):
        as_tile_params(4)


def test_a_changed_fold_interval_reaches_the_rtl_the_model_and_the_cli(monkeypatch, tmp_path,
                                                                         capsys):
    """The fold interval is written once, in TileParams. Widen it there: the elaborated tile
    spaces its folds to the new interval, the cycle model predicts exactly that, and the
    CLI's run on freshly built Verilog measures what the model says."""
    params = TileParams(rows=2, cols=2)
    shape = {"m": 4, "k": 1, "n": 4}                   # four one-beat folds
    before = predict(params, **shape).total_cycles
    monkeypatch.setattr(TileParams, "fold_interval",
                        property(lambda p: max(p.rows, p.cols) + 3))
    after = predict(params, **shape).total_cycles
    assert after == before + 3 * 3                     # three fold gaps, each 3 cycles longer

    A, B = random_operands(4, 1, 4, in_width=8, signed=True, seed=1)
    C, cycles = run_gemm_pysim(params, A, B)
    assert (C == reference_gemm(A, B, acc_width=32, signed=True)).all()
    assert cycles["last_result"] - cycles["first_operand"] + 1 == after

    monkeypatch.setenv("SUPERNODE_BUILD", str(tmp_path))   # no Verilog built before the change
    assert main(["tile", "sim", "--rows", "2", "--cols", "2", "--dataflow", "os",
                 *[f"--{d}={v}" for d, v in shape.items()], "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["passed"] and result["model_cycles"] == result["measured_cycles"] == after
