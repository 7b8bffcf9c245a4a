"""Long work prints a progress line with the newest line of its tool's log."""

import io
import threading

from supernode.sim.formal.runner import _solver_step
from supernode.sim.heartbeat import Heartbeat, build_status, cocotb_status, last_match


def test_heartbeat_prints_the_status_while_the_work_runs_and_the_total_at_the_end():
    stream, asked = io.StringIO(), threading.Event()

    def status():
        asked.set()
        return "simulated 120.00ns"

    with Heartbeat("tile simulation on icarus", status, first_after_s=0.01, every_s=0.01,
                   stream=stream):
        assert asked.wait(30)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("tile simulation on icarus: ") and \
        lines[0].endswith(" s, simulated 120.00ns")
    assert lines[-1].startswith("tile simulation on icarus: finished after ")


def test_short_work_prints_nothing_and_progress_can_be_turned_off(monkeypatch):
    stream = io.StringIO()
    with Heartbeat("quick", first_after_s=60, stream=stream):
        pass
    monkeypatch.setenv("SUPERNODE_PROGRESS", "0")
    with Heartbeat("silenced", first_after_s=0, every_s=0.01, stream=stream) as beat:
        assert not beat.enabled
    assert stream.getvalue() == ""


def test_status_lines_read_from_each_tools_log(tmp_path):
    sim_log = tmp_path / "sim.log"
    sim_log.write_text(
        "     0.00ns INFO     cocotb.regression                  running gemm\n"
        "200000.00ns INFO     cocotb.top                         12 of 40 result rows after "
        "20000 cycles\n")
    assert cocotb_status(sim_log) == "simulated 200000.00ns: 12 of 40 result rows after 20000 cycles"
    assert cocotb_status(tmp_path / "missing.log") is None
    build_log = tmp_path / "build.log"
    build_log.write_text("verilator -cc ...\ng++ -O0 -c Vtop.cpp\n")
    assert build_status(build_log) == "building: g++ -O0 -c Vtop.cpp"
    sby_log = tmp_path / "logfile.txt"
    sby_log.write_text(
        "SBY 13:27:26 [prove] engine_0.basecase: ##   0:00:00  Checking assertions in step 0..\n"
        "SBY 13:27:27 [prove] engine_0.induction: ##   0:00:01  Trying induction in step 4..\n"
        "SBY 13:27:27 [prove] summary: Elapsed clock time [H:MM:SS (secs)]: 0:00:01 (1)\n")
    assert _solver_step(sby_log) == "engine_0.induction: Trying induction in step 4"
    yosys_log = tmp_path / "yosys.log"
    yosys_log.write_text("2. Executing SYNTH pass.\n2.3. Executing PROC pass (convert processes).\n")
    assert last_match(yosys_log, r"^\d+(?:\.\d+)*\. (Executing .*)$", group=1) == \
        "Executing PROC pass (convert processes)."
