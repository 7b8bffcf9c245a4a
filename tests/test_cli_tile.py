"""The ``supernode tile`` commands as a user runs them: output, JSON, and bad input."""

import json

import pytest

from supernode.cli import main


def test_export_writes_verilog(tmp_path, capsys):
    out = tmp_path / "tile.v"
    assert main(["tile", "export", "--rows", "2", "--cols", "3", "--dataflow", "ws",
                 "--out", str(out)]) == 0
    text = out.read_text()
    assert "module systolic_tile(" in text and "c__payload" in text
    assert f"wrote {out}" in capsys.readouterr().out


@pytest.mark.simulator("icarus")
def test_sim_json_reports_a_bit_exact_run(capsys):
    assert main(["tile", "sim", "--rows", "3", "--cols", "2", "--dataflow", "os", "--m", "5",
                 "--k", "4", "--n", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["passed"] is True
    assert result["measured_cycles"] == result["model_cycles"]
    assert result["sim"] == "icarus" and result["waves"] is None
    assert 0 < result["utilization"] <= 1


@pytest.mark.parametrize("argv, message", [
    (["--rows", "0", "--cols", "2", "--dataflow", "os"],
     "rows must be an integer from 1 to 64, not 0"),
    (["--rows", "2", "--cols", "2", "--dataflow", "diagonal"],
     "dataflow must be one of 'os', 'ws', not 'diagonal'"),
    (["--rows", "2", "--cols", "2", "--dataflow", "os", "--in-width", "8", "--acc-width", "8"],
     "acc_width must be an integer from 2*in_width (16) to 96, not 8"),
])
def test_bad_parameters_exit_2_with_one_sentence(tmp_path, capsys, argv, message):
    out = tmp_path / "keep.v"
    out.write_text("precious")
    assert main(["tile", "export", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert out.read_text() == "precious"


def test_bad_simulator_and_dimension(capsys):
    base = ["tile", "sim", "--rows", "2", "--cols", "2", "--dataflow", "os", "--m", "2",
            "--k", "2", "--n", "2"]
    assert main([*base, "--sim", "modelsim"]) == 2
    assert "--sim must be one of icarus, verilator, not 'modelsim'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["tile", "sim", "--rows", "2", "--cols", "2", "--dataflow", "os", "--m", "0",
              "--k", "2", "--n", "2"])
    assert exit_info.value.code == 2
    assert "expected a positive integer, not '0'" in capsys.readouterr().err
