"""A bench written as a user would (examples/tile_bench) drives the Verilog of ``tile export``."""

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "tile_bench"))
import test_tile_bench as bench  # noqa: E402


def _cases(results) -> dict:
    """``{test name: passed}`` of a cocotb results file."""
    root = ET.parse(results).getroot()
    return {case.get("name"): not list(case.iter("failure")) + list(case.iter("error"))
            for case in root.iter("testcase")}


@pytest.mark.parametrize("sim, dataflow", [
    ("icarus", "os"), ("icarus", "ws"),
    pytest.param("verilator", "os", marks=pytest.mark.slow),
])
def test_exported_tile_under_the_shipped_driver_and_monitor(tmp_path, sim, dataflow):
    cases = _cases(bench.run(tmp_path, sim=sim, dataflow=dataflow))
    assert cases == {f"random_gemm/pauses={p}": True for p in bench.PAUSES}


@pytest.mark.simulator("icarus")
def test_testcase_chooses_the_cocotb_tests(tmp_path, monkeypatch):
    monkeypatch.setenv("TESTCASE", "random_gemm/pauses=random")
    cases = _cases(bench.run(tmp_path, sim="icarus"))
    assert cases == {"random_gemm/pauses=random": True}


@pytest.mark.simulator("icarus")
def test_the_bench_fails_when_the_layout_it_reads_is_wrong(tmp_path):
    """Two result fields swapped in the description: every GEMM fails, so the bench's
    check depends on what the tile computes."""
    verilog = bench.export(tmp_path)
    interface = json.loads(verilog.with_suffix(".json").read_text())
    fields = interface["streams"]["c"]["fields"]
    fields[0]["offset"], fields[1]["offset"] = fields[1]["offset"], fields[0]["offset"]
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(interface))
    with pytest.raises(SystemExit):          # cocotb's runner under pytest: a failed test exits
        bench.simulate(verilog, wrong, sim="icarus", testcase="random_gemm/pauses=none")
