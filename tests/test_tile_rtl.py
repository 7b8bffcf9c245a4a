"""The systolic tile: parameters, Amaranth-simulator checks, and cocotb benches on both simulators."""

import os
import re

import numpy as np
import pytest
from amaranth.back import verilog

from supernode.fabric.tile_model import predict, reference_gemm
from supernode.rtl.errors import UserError
from supernode.rtl.tile import SystolicTile
from supernode.rtl.tile_params import TileParams
from supernode.sim.environment import random_seed
from supernode.sim.runner import SimulationError
from supernode.sim.tile.harness import TileHarness
from supernode.sim.tile.pysim import run_gemm_pysim
from supernode.sim.tile.run import Gaps, harness_depth, random_operands, run_gemm

SEED = random_seed(20261125)


def setup_module():
    print(f"tile tests: seed {SEED} (COCOTB_RANDOM_SEED=<n> reproduces or varies a run)")


# -- parameters --------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"rows": 0}, "rows must be an integer from 1 to 64, not 0"),
    ({"cols": 65}, "cols must be an integer from 1 to 64, not 65"),
    ({"rows": 2.0}, "rows must be an integer from 1 to 64, not 2.0"),
    ({"in_width": 1}, "in_width must be an integer from 2 to 32, not 1"),
    ({"acc_width": 15}, "acc_width must be an integer from 2*in_width (16) to 96, not 15"),
    ({"signed": 1}, "signed must be True or False, not 1"),
    ({"dataflow": "is"}, "dataflow must be one of 'os', 'ws', not 'is'"),
    ({"acc_depth": 0}, "acc_depth must be an integer from 1 to 4096, not 0"),
    ({"mac_stages": 5}, "mac_stages must be an integer from 0 to 4, not 5"),
    ({"mac_stages": -1}, "mac_stages must be an integer from 0 to 4, not -1"),
])
def test_bad_parameters_are_named(kwargs, message):
    params = {"rows": 2, "cols": 2, **kwargs}
    with pytest.raises((ValueError, TypeError)) as info:
        SystolicTile(**params)
    assert str(info.value) == message


def test_published_timing():
    os_tile = SystolicTile(rows=4, cols=6, dataflow="os")
    ws_tile = SystolicTile(rows=4, cols=6, dataflow="ws")
    assert os_tile.peak_macs_per_cycle == ws_tile.peak_macs_per_cycle == 24
    assert os_tile.fill_latency == 6 + 2
    assert os_tile.drain_latency == 6 + 4 + 1
    assert os_tile.fold_interval == 6
    assert ws_tile.fill_latency == ws_tile.drain_latency == 4 + 6 + 1
    assert ws_tile.weight_release_latency == 10


@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_mac_stages_delay_every_result_and_nothing_else(dataflow):
    plain = TileParams(rows=4, cols=6, dataflow=dataflow)
    piped = TileParams(rows=4, cols=6, dataflow=dataflow, mac_stages=2)
    assert piped.stages == plain.stages + 2
    assert piped.fill_latency == plain.fill_latency + 2
    assert piped.drain_latency == plain.drain_latency + 2
    assert piped.fold_interval == plain.fold_interval
    assert piped.weight_release_latency == plain.weight_release_latency
    assert piped.peak_macs_per_cycle == plain.peak_macs_per_cycle


# -- Amaranth's simulator: quick, many small cases -----------------------------------------------

PYSIM_SHAPES = [(1, 1, 1), (3, 5, 3), (5, 1, 2), (2, 7, 5), (9, 6, 7)]


@pytest.mark.parametrize("dataflow", ["os", "ws"])
@pytest.mark.parametrize("rows, cols", [(2, 2), (3, 2), (2, 4)])
@pytest.mark.parametrize("m, k, n", PYSIM_SHAPES)
def test_pysim_exact_results_and_cycles(rows, cols, dataflow, m, k, n):
    params = {"rows": rows, "cols": cols, "dataflow": dataflow, "acc_depth": 3}
    A, B = random_operands(m, k, n, in_width=8, signed=True, seed=SEED + m * 100 + k * 10 + n)
    C, cycles = run_gemm_pysim(params, A, B)
    assert (C == reference_gemm(A, B, acc_width=32, signed=True)).all()
    model = predict(rows=rows, cols=cols, dataflow=dataflow, m=m, k=k, n=n, acc_depth=3)
    assert cycles["last_result"] - cycles["first_operand"] + 1 == model.total_cycles
    assert cycles["first_result"] - cycles["first_operand"] == model.first_result_cycles


@pytest.mark.parametrize("dataflow", ["os", "ws"])
@pytest.mark.parametrize("mac_stages", [1, 3])
@pytest.mark.parametrize("m, k, n", [(1, 1, 1), (5, 1, 2), (9, 6, 7)])
def test_pysim_pipelined_cells_are_exact_in_results_and_cycles(dataflow, mac_stages, m, k, n):
    """Register stages in the cells change the cycle counts exactly as the model says."""
    params = {"rows": 3, "cols": 2, "dataflow": dataflow, "acc_depth": 3,
              "mac_stages": mac_stages}
    A, B = random_operands(m, k, n, in_width=8, signed=True, seed=SEED + mac_stages)
    C, cycles = run_gemm_pysim(params, A, B)
    assert (C == reference_gemm(A, B, acc_width=32, signed=True)).all()
    model = predict(params, m=m, k=k, n=n)
    assert cycles["last_result"] - cycles["first_operand"] + 1 == model.total_cycles
    assert cycles["first_result"] - cycles["first_operand"] == model.first_result_cycles


@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_pysim_pipelined_cells_under_random_stalls(dataflow):
    rng = np.random.default_rng(SEED)
    params = {"rows": 3, "cols": 3, "dataflow": dataflow, "in_width": 4, "acc_width": 8,
              "acc_depth": 2, "mac_stages": 2}
    A, B = random_operands(7, 8, 5, in_width=4, signed=True, seed=SEED)

    def pattern():
        return tuple(int(v) for v in rng.integers(0, 2, int(rng.integers(1, 6)))) + (0,)

    C, _ = run_gemm_pysim(params, A, B, a_gaps=pattern(), b_gaps=pattern(),
                          c_stalls=pattern())
    assert (C == reference_gemm(A, B, acc_width=8, signed=True)).all()


@pytest.mark.parametrize("dataflow", ["os", "ws"])
@pytest.mark.parametrize("trial", range(6))
def test_pysim_random_stalls_and_wraparound(dataflow, trial):
    """Narrow accumulators wrap; random gaps on every stream lose and duplicate nothing."""
    rng = np.random.default_rng(SEED + trial)
    rows, cols = (int(v) for v in rng.integers(1, 5, 2))
    m, k, n = (int(v) for v in rng.integers(1, 10, 3))
    params = {"rows": rows, "cols": cols, "dataflow": dataflow, "in_width": 4, "acc_width": 8,
              "acc_depth": int(rng.integers(1, 5))}
    A, B = random_operands(m, k, n, in_width=4, signed=True, seed=SEED + trial)

    def pattern():
        return tuple(int(v) for v in rng.integers(0, 2, int(rng.integers(1, 6)))) + (0,)

    C, _ = run_gemm_pysim(params, A, B, a_gaps=pattern(), b_gaps=pattern(),
                          c_stalls=pattern())
    assert (C == reference_gemm(A, B, acc_width=8, signed=True)).all()


@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_pysim_gaps_idle_only_between_beats(dataflow):
    """A source with gaps against a stalled sink: a beat once offered stays valid, payload
    unchanged, until it is taken (the bench's stream monitor raises if valid falls first),
    and the gap patterns do fall on cycles where a beat is waiting."""
    params = {"rows": 2, "cols": 3, "dataflow": dataflow, "acc_depth": 3}
    A, B = random_operands(5, 7, 4, in_width=8, signed=True, seed=SEED)
    C, counts = run_gemm_pysim(params, A, B, a_gaps=(0, 1), b_gaps=(0, 0, 1),
                               c_stalls=(1, 1, 1, 0))
    assert (C == reference_gemm(A, B, acc_width=32, signed=True)).all()
    assert counts["a_stalls"] > 0 and counts["b_stalls"] > 0 and counts["c_backpressure"] > 0
    assert counts["a_held_in_gap"] > 0 and counts["b_held_in_gap"] > 0


def test_pysim_unsigned_extremes():
    params = {"rows": 3, "cols": 2, "dataflow": "os", "signed": False, "in_width": 5,
              "acc_width": 12}
    A, B = random_operands(4, 9, 3, in_width=5, signed=False, seed=0, extreme="max")
    C, _ = run_gemm_pysim(params, A, B)
    assert (C == reference_gemm(A, B, acc_width=12, signed=False)).all()
    assert C[0, 0] == (31 * 31 * 9) % 4096


# -- cocotb on Icarus and Verilator ------------------------------------------------------------

def _check(params, m, k, n, *, sim, extreme=None, gaps=None, seed=SEED, depth=None):
    A, B = random_operands(m, k, n, in_width=params.get("in_width", 8),
                           signed=params.get("signed", True), seed=seed, extreme=extreme)
    gaps = gaps or {}
    run = run_gemm(params, A, B, sim=sim, seed=seed, depth=depth, **gaps)
    expected = reference_gemm(A, B, acc_width=params.get("acc_width", 32),
                              signed=params.get("signed", True))
    assert (run.C == expected).all()
    if not gaps:
        assert run.measured_cycles == run.model.total_cycles, run.to_json()
        assert run.measured_first_result == run.model.first_result_cycles, run.to_json()
    return run


ICARUS_CASES = [
    # (rows, cols, dataflow, acc_depth, [(m, k, n), ...])
    (2, 2, "os", 64, [(1, 1, 1), (3, 5, 2), (7, 2, 9)]),
    (2, 2, "ws", 2, [(1, 1, 1), (3, 5, 2), (7, 2, 9)]),
    (4, 4, "os", 64, [(4, 4, 4), (9, 13, 6), (1, 20, 5)]),
    (4, 4, "ws", 8, [(4, 4, 4), (9, 13, 6), (17, 3, 1)]),
    (3, 5, "os", 64, [(7, 11, 6), (3, 1, 5)]),
    (3, 5, "ws", 4, [(7, 11, 6), (3, 1, 5)]),
    (8, 8, "os", 64, [(16, 16, 16), (11, 9, 19)]),
    (8, 8, "ws", 16, [(16, 16, 16), (11, 9, 19)]),
]


def _shared_depth(params, shapes):
    """One harness depth that holds every GEMM of ``shapes``: their runs share one build
    (a Verilator build takes most of a minute)."""
    return max(harness_depth(params, *shape) for shape in shapes)


def test_harness_depth_holds_the_largest_gemm_and_a_shorter_one_is_refused():
    params = {"rows": 4, "cols": 4, "dataflow": "os", "acc_depth": 64}
    assert harness_depth(params, 1, 1, 1) == 64 and harness_depth(params, 9, 13, 6) == 128
    assert _shared_depth(params, [(9, 13, 6), (1, 1, 1)]) == 128
    A, B = random_operands(9, 13, 6, in_width=8, signed=True, seed=SEED)
    for depth in (77, True, "128"):
        with pytest.raises(UserError, match=rf"harness depth must be an integer of at least 78 "
                                            rf"words for a 9x13x6 GEMM on this tile, not {depth!r}"):
            run_gemm(params, A, B, depth=depth)


@pytest.mark.simulator("icarus")
@pytest.mark.parametrize("rows, cols, dataflow, acc_depth, shapes", ICARUS_CASES,
                         ids=[f"{r}x{c}-{d}" for r, c, d, _, _ in ICARUS_CASES])
def test_icarus_random_gemms(rows, cols, dataflow, acc_depth, shapes):
    params = {"rows": rows, "cols": cols, "dataflow": dataflow, "acc_depth": acc_depth}
    for index, (m, k, n) in enumerate(shapes):
        _check(params, m, k, n, sim="icarus", seed=SEED + index)


@pytest.mark.parametrize("dataflow, sim", [
    ("os", "icarus"), ("ws", "icarus"), ("os", "verilator"),
    # A Verilator build of its own (about a minute); the ws tile runs on Icarus by default.
    pytest.param("ws", "verilator", marks=pytest.mark.slow)])
def test_pipelined_cells_are_exact_on_both_simulators(dataflow, sim):
    """A 4x4 tile with a product register in every cell: results and cycle counts equal
    the model's on Icarus and Verilator, with and without stalls."""
    params = {"rows": 4, "cols": 4, "dataflow": dataflow, "acc_depth": 8, "mac_stages": 1}
    shapes = [(9, 13, 6), (1, 1, 1)]
    depth = _shared_depth(params, shapes)
    for index, (m, k, n) in enumerate(shapes):
        _check(params, m, k, n, sim=sim, seed=SEED + index, depth=depth)
    _check(params, 9, 13, 6, sim=sim, gaps=STALLS["random"], depth=depth)


@pytest.mark.simulator("icarus")
@pytest.mark.parametrize("dataflow", ["os", "ws"])
@pytest.mark.parametrize("extreme", ["min", "max"])
def test_icarus_extreme_values(dataflow, extreme):
    params = {"rows": 4, "cols": 4, "dataflow": dataflow, "acc_depth": 8}
    _check(params, 9, 13, 6, sim="icarus", extreme=extreme)


STALLS = {
    "periodic": dict(a_gaps=Gaps(pattern=(0, 0, 0, 1)), b_gaps=Gaps(pattern=(0, 1)),
                     c_gaps=Gaps(pattern=(1, 1, 0))),
    "random": dict(a_gaps=Gaps(probability=0.3), b_gaps=Gaps(probability=0.2),
                   c_gaps=Gaps(probability=0.5)),
    "backpressure-only": dict(c_gaps=Gaps(pattern=(1, 1, 1, 0))),
}


@pytest.mark.simulator("icarus")
@pytest.mark.parametrize("dataflow", ["os", "ws"])
@pytest.mark.parametrize("stalls", list(STALLS))
def test_icarus_stalls(dataflow, stalls):
    params = {"rows": 4, "cols": 4, "dataflow": dataflow, "acc_depth": 8}
    run = _check(params, 9, 13, 6, sim="icarus", gaps=STALLS[stalls])
    counters = run.counters
    if "c_gaps" in STALLS[stalls]:
        assert counters["c_backpressure"] > 0
    assert run.measured_cycles > run.model.total_cycles


VERILATOR_CASES = [
    (4, 4, "os", 64, [(9, 13, 6), (1, 1, 1)]),
    (4, 4, "ws", 8, [(9, 13, 6), (1, 1, 1)]),
    # The longest builds of the suite (minutes each): the same checks run on Verilator at
    # 4x4 above and on Icarus up to 8x8 by default.
    pytest.param(16, 16, "os", 64, [(32, 48, 32), (17, 5, 33)], marks=pytest.mark.slow),
    pytest.param(16, 16, "ws", 16, [(32, 48, 32), (17, 5, 33)], marks=pytest.mark.slow),
]


def _case_id(case):
    rows, cols, dataflow = (case.values if hasattr(case, "values") else case)[:3]
    return f"{rows}x{cols}-{dataflow}"


@pytest.mark.simulator("verilator")
@pytest.mark.parametrize("rows, cols, dataflow, acc_depth, shapes", VERILATOR_CASES,
                         ids=[_case_id(c) for c in VERILATOR_CASES])
def test_verilator_gemms(rows, cols, dataflow, acc_depth, shapes):
    params = {"rows": rows, "cols": cols, "dataflow": dataflow, "acc_depth": acc_depth}
    depth = _shared_depth(params, shapes)
    for index, (m, k, n) in enumerate(shapes):
        _check(params, m, k, n, sim="verilator", seed=SEED + index, depth=depth)
    _check(params, *shapes[0], sim="verilator", gaps=STALLS["random"], depth=depth)


@pytest.mark.simulator("icarus")
def test_large_gemm_reaches_full_utilization():
    """Back-to-back folds: a long GEMM keeps the array busy to within its fill and drain."""
    params = {"rows": 4, "cols": 4, "dataflow": "os"}
    run = _check(params, 16, 64, 16, sim="icarus")
    assert run.utilization > 0.9


@pytest.mark.simulator("icarus")
def test_scoreboard_catches_a_wrong_result():
    """The bench must fail when the hardware's answer differs from the reference: the
    harness flips one result bit on its way to the monitor."""
    params = {"rows": 2, "cols": 2, "dataflow": "os"}
    A, B = random_operands(3, 3, 3, in_width=8, signed=True, seed=SEED)
    with pytest.raises(SimulationError, match=r"result row 0: got \[.*\], expected \[.*\]"):
        run_gemm(params, A, B, sim="icarus", fault="flip_result_bit")


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_waves_are_written_into_the_run_directory(sim):
    params = {"rows": 2, "cols": 2, "dataflow": "os"}
    A, B = random_operands(2, 3, 2, in_width=8, signed=True, seed=SEED)
    run = run_gemm(params, A, B, sim=sim, waves=True)
    assert run.waves is not None and run.waves.endswith(".fst")
    assert os.path.getsize(run.waves) > 0
    assert os.path.dirname(run.waves) == run.run_dir


# -- the clock: the harness's own, or cocotb's -------------------------------------------------

CLOCK_CASE = {"rows": 4, "cols": 4, "dataflow": "os", "acc_depth": 64}


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_hdl_clock_and_cocotb_clock_agree_with_the_model(sim):
    """The harness's own clock (run_gemm's default) and cocotb's clock driver: exact
    results and the model's cycle counts without stalls, and every hardware counter the
    same under random stalls."""
    A, B = random_operands(9, 13, 6, in_width=8, signed=True, seed=SEED)
    expected = reference_gemm(A, B, acc_width=32, signed=True)
    model = predict(CLOCK_CASE, m=9, k=13, n=6)
    for gaps in ({}, STALLS["random"]):
        runs = {hdl_clock: run_gemm(CLOCK_CASE, A, B, sim=sim, seed=SEED, hdl_clock=hdl_clock,
                                    **gaps)
                for hdl_clock in (True, False)}
        for run in runs.values():
            assert (run.C == expected).all()
            if not gaps:
                assert run.measured_cycles == model.total_cycles, run.to_json()
                assert run.measured_first_result == model.first_result_cycles, run.to_json()
        assert runs[True].counters == runs[False].counters
        # The counters the bench reads stop with the edge that raised done.
        assert runs[True].counters["cycles"] == runs[True].counters["last_result"] + 1
    assert runs[True].counters["c_backpressure"] > 0


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_a_run_past_its_cycle_budget_fails_with_the_hdl_clock(sim, monkeypatch):
    """The clock runs on in the simulator whether or not the bench waits: a GEMM that
    outlasts its budget fails with the bench's timeout instead of running on."""
    import dataclasses

    import supernode.sim.tile.run as tile_run

    real = tile_run.predict
    # The budget is the model's cycles scaled for stalls plus 200: with the model saying
    # none, 200 cycles, well short of this GEMM under 31-in-32 back-pressure.
    monkeypatch.setattr(tile_run, "predict",
                        lambda *a, **k: dataclasses.replace(real(*a, **k), total_cycles=0))
    A, B = random_operands(9, 13, 6, in_width=8, signed=True, seed=SEED)
    with pytest.raises(SimulationError, match=r"timeout: \d+ of 24 result rows after 200 cycles"):
        run_gemm(CLOCK_CASE, A, B, sim=sim, c_gaps=Gaps(pattern=(1,) * 31 + (0,)))


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")    # refused harnesses
@pytest.mark.parametrize("kwargs, message", [
    ({"depth": 0}, "depth must be a positive integer, not 0"),
    ({"depth": 64, "fault": "stuck"}, "fault must be None or 'flip_result_bit', not 'stuck'"),
    ({"depth": 64, "hdl_clock": "yes"}, "hdl_clock must be True or False, not 'yes'"),
])
def test_bad_harness_parameters_are_named(kwargs, message):
    with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
        TileHarness(rows=2, cols=2, **kwargs)


def test_the_hdl_clock_harness_shows_its_clock_and_takes_reset():
    """With its own clock the harness has no clock input: ``clk`` is an output driven by
    the ``bench_clock`` module written beside it, and ``rst`` an input."""
    harness = TileHarness(rows=2, cols=2, depth=64, hdl_clock=True)
    text = verilog.convert(harness, name="top", emit_src=False)
    ports = re.search(r"^module top\(([^)]*)\);", text, re.M).group(1)
    assert "clk" in ports and "rst" in ports
    assert re.search(r"^\s*output clk;", text, re.M) and re.search(r"^\s*input rst;", text, re.M)
    assert "bench_clock" in text and "module bench_clock" in harness.extra_verilog
    plain = TileHarness(rows=2, cols=2, depth=64)
    assert "bench_clock" not in verilog.convert(plain, name="top", emit_src=False)
    assert "module bench_clock" not in plain.extra_verilog
