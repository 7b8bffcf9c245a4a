"""Formal proofs of the systolic tile: they pass by k-induction, and a broken tile fails."""

import pytest
from vcdvcd import VCDVCD

from supernode.sim.formal.runner import run_formal
from supernode.sim.formal.tile import CONSUMERS, FAULTS, TileHarness

SMALL = [pytest.param(2, 2, id="2x2"), pytest.param(4, 4, id="4x4")]
LARGE = [pytest.param(r, c, id=f"{r}x{c}", marks=pytest.mark.slow)
         for r, c in ((2, 4), (4, 2), (8, 8))]


@pytest.mark.parametrize("rows, cols", SMALL + LARGE)
def test_array_properties_are_proved_with_a_stalling_consumer(rows, cols):
    result = run_formal(TileHarness(rows=rows, cols=cols, consumer="free", sums=False))
    assert result.status == "pass", result.to_dict()
    assert result.mode == "prove"
    for prop in ("c.valid held until ready", "c.payload stable until ready",
                 "rows reach the result queue in row order",
                 "alignment: cell A operand is from the beat i+j+1 back",
                 "alignment: cell B operand is from the beat i+j+1 back",
                 "last marks a fold's final row",
                 "the double buffer never overwrites a fold not yet drained"):
        assert prop in result.asserts
    assert result.structural == {"c.valid does not depend on c.ready": "pass"}
    assert set(result.covers) == {"result queue full", "array stalled by the result queue",
                                  "back-to-back folds, fold_interval apart",
                                  "a fold's last row leaves", "c stalled"}
    assert all(result.covers.values()), result.covers


OS_VALUES = ("each row written to the result queue is its fold's sums",
             "an undrained result register holds its fold's sum",
             "an accumulator is the running sum of the beat it added last")


@pytest.mark.parametrize("rows, cols", SMALL + [
    pytest.param(r, c, id=f"{r}x{c}", marks=pytest.mark.slow) for r, c in ((2, 4), (4, 2))])
def test_every_result_is_its_folds_sum_of_products(rows, cols):
    result = run_formal(TileHarness(rows=rows, cols=cols, consumer="free", sums=True),
                        cover=False)
    assert result.status == "pass", result.to_dict()
    # Every invariant relates neighbouring stages, so the induction is short at any size.
    assert result.mode == "prove" and result.depth == 2
    for prop in OS_VALUES + ("a running sum is the older one plus the beat between them",
                             "a fold's last beat in flight completes its sum"):
        assert prop in result.asserts


@pytest.mark.parametrize("rows, cols", SMALL + LARGE)
def test_published_latencies_are_proved_with_an_always_ready_consumer(rows, cols):
    result = run_formal(TileHarness(rows=rows, cols=cols, consumer="always_ready"))
    assert result.status == "pass", result.to_dict()
    assert any("fill_latency" in a for a in result.asserts)
    assert any("drain_latency" in a for a in result.asserts)
    assert all(result.covers.values()), result.covers


@pytest.mark.parametrize("rows, cols, consumer", [
    pytest.param(2, 2, "always_ready", id="2x2-always_ready"),
    pytest.param(2, 2, "free", id="2x2-free"),
    pytest.param(4, 4, "always_ready", id="4x4-always_ready", marks=pytest.mark.slow),
    pytest.param(4, 4, "free", id="4x4-free", marks=pytest.mark.slow),
])
def test_weight_stationary_contract_and_latency_are_proved(rows, cols, consumer):
    result = run_formal(TileHarness(rows=rows, cols=cols, dataflow="ws", consumer=consumer,
                                    sums=False))
    assert result.status == "pass", result.to_dict()
    if consumer == "always_ready":
        assert any("fill_latency" in a for a in result.asserts)
    else:
        assert "c.payload stable until ready" in result.asserts
        for prop in ("ws: a weight bank is never written while its weights are loaded or in "
                     "use",
                     "ws: an a beat is taken only from a completely loaded weight bank",
                     "ws: a beat reads and writes the kept row of its position in its fold",
                     "ws: a kept row changes only when the beat of its position stores a "
                     "partial row"):
            assert prop in result.asserts, prop
        assert {"ws: bank 1 is loaded while bank 0's fold is in the array",
                "ws: the last kept row is accumulated onto",
                "ws: the last kept row is stored"} <= set(result.covers)
    assert all(result.covers.values()), result.covers


WS_VALUES = ("ws: each row written to the result queue is its beat's sums of products plus "
             "the kept row it accumulates onto",
             "ws: the row a beat completes at the bottom is its sums of products plus the "
             "kept row it accumulates onto")


@pytest.mark.parametrize("rows, cols", [pytest.param(2, 2, id="2x2"),
                                        pytest.param(4, 4, id="4x4", marks=pytest.mark.slow)])
def test_every_weight_stationary_result_is_its_beats_sums_of_products(rows, cols):
    result = run_formal(TileHarness(rows=rows, cols=cols, dataflow="ws", consumer="free",
                                    sums=True))
    assert result.status == "pass", result.to_dict()
    assert result.mode == "prove" and result.depth == 2
    for prop in WS_VALUES + ("ws: the kept partial rows are the reference's",
                             "ws: a partial sum is its beat's products of the rows above it",
                             "ws: a beat in the array multiplies by its fold's weights"):
        assert prop in result.asserts, prop
    assert "ws: a row accumulated onto a kept row is written to the result queue" in \
        result.covers
    assert all(result.covers.values()), result.covers


@pytest.mark.parametrize("dataflow, values", [("os", OS_VALUES), ("ws", WS_VALUES)])
def test_a_tile_that_drops_a_product_bit_gives_wrong_values(dataflow, values):
    # Only the values are wrong: without the value properties the mutant passes.
    harness = dict(dataflow=dataflow, consumer="free", fault="dropped_product_bit")
    kept = run_formal(TileHarness(**harness, sums=False), mode="bmc", depth=10, cover=False)
    assert kept.status == "pass", kept.to_dict()
    result = run_formal(TileHarness(**harness, sums=True), mode="bmc", depth=10, cover=False,
                        reuse=False)
    assert result.status == "fail"
    assert set(result.failed) <= set(values) and result.failed, result.failed
    assert result.trace.exists() and result.trace.suffix == ".vcd"


@pytest.mark.parametrize("fault, broken", [
    # Freeing a weight bank when the fold's last beat enters the array lets `b` reload it
    # while that fold's beats still multiply by it.
    ("early_bank_release", ("ws: a bank in use is busy",
                            "ws: a weight bank is never written while its weights are loaded "
                            "or in use")),
    # Folds longer than acc_depth wrap the kept-row index onto rows not yet drained.
    ("long_fold", ("ws: the kept-row index is the position of the next beat to reach the "
                   "bottom",
                   "ws: a beat reads and writes the kept row of its position in its fold")),
])
def test_broken_weight_stationary_tiles_fail_with_a_counterexample(fault, broken):
    result = run_formal(TileHarness(dataflow="ws", consumer="free", fault=fault, sums=False),
                        mode="bmc", depth=12, cover=False, reuse=False)
    assert result.status == "fail"
    assert any(name in broken for name in result.failed), result.failed
    assert result.trace.exists() and result.trace.suffix == ".vcd"


def test_a_tile_whose_folds_come_too_close_fails_with_a_counterexample():
    result = run_formal(TileHarness(rows=2, cols=2, fault="short_fold_interval", sums=False),
                        cover=False, reuse=False)
    assert result.status == "fail"
    assert "the double buffer never overwrites a fold not yet drained" in result.failed
    # The counterexample is a VCD trace from reset that a waveform viewer opens.
    assert result.trace.suffix == ".vcd"
    wave = VCDVCD(str(result.trace))
    assert any(name.endswith("c__valid") for name in wave.signals)
    assert wave.endtime > 0
    assert result.gtkw is not None and result.gtkw.read_text().count("c__valid") >= 1


PIPELINED = [
    pytest.param("os", "free", 1, id="os-free-1"),
    pytest.param("os", "always_ready", 1, id="os-always_ready-1"),
    pytest.param("ws", "free", 1, id="ws-free-1"),
    pytest.param("ws", "always_ready", 1, id="ws-always_ready-1"),
    pytest.param("os", "free", 2, id="os-free-2", marks=pytest.mark.slow),
    pytest.param("os", "always_ready", 3, id="os-always_ready-3", marks=pytest.mark.slow),
    pytest.param("ws", "always_ready", 2, id="ws-always_ready-2", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("dataflow, consumer, mac_stages", PIPELINED)
def test_pipelined_cells_are_proved(dataflow, consumer, mac_stages):
    """Register stages in the cells: contract, alignment, row order, double buffer and every
    result value (stalling consumer), and the published latencies, which now include the
    stages (consumer never stalls)."""
    result = run_formal(TileHarness(dataflow=dataflow, consumer=consumer,
                                    mac_stages=mac_stages), cover=False)
    assert result.status == "pass", result.to_dict()
    assert result.mode == "prove"
    if consumer == "always_ready":
        assert any("fill_latency" in a for a in result.asserts)
    elif dataflow == "os":
        assert result.depth == 2
        for prop in OS_VALUES + ("alignment: a cell's pipelined product is of the beat its "
                                 "stage holds",
                                 "the double buffer never overwrites a fold not yet drained",
                                 "rows reach the result queue in row order"):
            assert prop in result.asserts, prop
    else:
        for prop in WS_VALUES + ("ws: a pipelined product is its beat's activation times its "
                                 "fold's weight",
                                 "ws: a weight bank is never written while its weights are "
                                 "loaded or in use"):
            assert prop in result.asserts, prop


@pytest.mark.slow
def test_weight_stationary_tile_with_two_stages_keeps_its_contract():
    result = run_formal(TileHarness(dataflow="ws", consumer="free", sums=False, mac_stages=2))
    assert result.status == "pass", result.to_dict()
    assert all(result.covers.values()), result.covers


def test_a_pipelined_tile_that_drops_a_product_bit_gives_wrong_values():
    result = run_formal(TileHarness(consumer="free", fault="dropped_product_bit",
                                    mac_stages=1), mode="bmc", depth=10, cover=False,
                        reuse=False)
    assert result.status == "fail"
    # With a pipeline register the wrong product is caught as soon as it is registered.
    caught = set(OS_VALUES) | {"alignment: a cell's pipelined product is of the beat its "
                               "stage holds"}
    assert set(result.failed) <= caught and result.failed, result.failed


def test_options_are_listed():
    assert CONSUMERS == ("free", "always_ready")
    assert FAULTS == ("short_fold_interval", "early_bank_release", "long_fold",
                      "dropped_product_bit")


@pytest.mark.parametrize("kwargs, message", [
    ({"consumer": "sometimes"}, "consumer must be one of free, always_ready, not 'sometimes'"),
    ({"fault": "stuck"}, "fault must be None or one of short_fold_interval, "
                         "early_bank_release, long_fold, dropped_product_bit, not 'stuck'"),
    ({"rows": 0}, "rows must be an integer from 1 to 64, not 0"),
    ({"sums": 1}, "sums must be True or False, not 1"),
    ({"dataflow": "is"}, "dataflow must be 'os' or 'ws', not 'is'"),
    ({"dataflow": "ws", "fault": "short_fold_interval"},
     "fault 'short_fold_interval' is a fault of output-stationary tiles, not of 'ws'"),
    ({"fault": "long_fold"}, "fault 'long_fold' is a fault of weight-stationary tiles, not of "
                             "'os'"),
    ({"dataflow": "ws", "sums": "yes"}, "sums must be True or False, not 'yes'"),
    ({"mac_stages": 5}, "mac_stages must be an integer from 0 to 4, not 5"),
    ({"dataflow": "ws", "mac_stages": 2},
     "weight-stationary result values are proved for mac_stages up to 1, not 2"),
])
def test_bad_parameters_are_refused(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        TileHarness(**kwargs)
