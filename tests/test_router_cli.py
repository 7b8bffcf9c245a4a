"""The router and fabric commands: export, sim (16-endpoint Clos on Verilator), sweep plot, bad input."""

import json

import pytest

from supernode.cli import main


def test_export_writes_verilog_with_stable_port_names(tmp_path, capsys):
    out = tmp_path / "router.v"
    assert main(["router", "export", "--ports", "3", "--vcs", "1", "--out", str(out)]) == 0
    text = out.read_text()
    assert "module router(" in text
    for name in ("inp__0__valid", "inp__2__payload", "outp__1__credit", "cfg__valid"):
        assert name in text


@pytest.mark.parametrize("argv, message", [
    (["router", "export", "--ports", "30", "--out", "x.v"],
     "ports must be an integer from 2 to 16, not 30"),
    (["router", "export", "--out", "/nonexistent/dir/x.v"],
     "directory '/nonexistent/dir' does not exist"),
    (["router", "export", "--out", "x.txt"], "--out 'x.txt' must name a .v or .sv file"),
    (["router", "sim", "--pattern", "zigzag"], "pattern must be one of uniform, transpose, "
                                              "bit_complement, hotspot, all_to_all, not 'zigzag'"),
    (["router", "sim", "--load", "1.5"], "offered load must be in (0, 1] flits/cycle/port, "
                                         "not 1.5"),
    (["router", "sim", "--sim", "modelsim"], "--sim must be one of icarus, verilator, "
                                            "not 'modelsim'"),
    (["router", "sim", "--backpressure", "sometimes"], "back-pressure must be 'none'"),
    (["fabric", "sim", "--spines", "0"], "spines must be an integer from 1 to 15, not 0"),
    (["router", "sim", "--ports", "6", "--pattern", "transpose"],
     "the transpose pattern needs a power-of-two number of endpoints, not 6"),
])
def test_bad_input_is_one_sentence_and_status_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_sweep_model_only_plot_and_json(tmp_path, capsys):
    png = tmp_path / "sweep.png"
    rc = main(["router", "sweep", "--ports", "4", "--model-only", "--loads", "0.2,0.6,1.0",
               "--measure", "300", "--warmup", "50", "--plot", str(png), "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rtl"] == [] and len(out["model"]) >= 3
    assert 0 < out["saturation"]["model"] < 1
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.simulator("verilator")
def test_fabric_sim_16_endpoints_all_to_all_on_verilator(capsys):
    """The done criterion: one full all-to-all on the 16-endpoint Clos, every packet
    delivered, the model's latency equal to the RTL's."""
    rc = main(["fabric", "sim", "--endpoints-per-leaf", "4", "--leaves", "4", "--spines", "2",
               "--pattern", "all_to_all", "--load", "1.0", "--packet-length", "4",
               "--packets-per-source", "15", "--sim", "verilator", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["passed"] is True, out
    assert out["measured_packets"] == 16 * 15
    assert out["model_latency_mean"] == pytest.approx(out["latency_mean"], rel=0.05)
    assert out["model_completion_cycles"] == out["completion_cycles"]
    assert out["sim"] == "verilator" and out["waves"] is None
