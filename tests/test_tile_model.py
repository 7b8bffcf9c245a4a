"""The tile cycle model: fold schedule, constant-time prediction, and its agreement with the RTL."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from supernode.fabric.tile_model import fold_schedule, operand_beats, predict, reference_gemm
from supernode.rtl.tile_params import TileParams


def _fold_by_fold(rows, cols, dataflow, m, k, n, acc_depth, mac_stages=0):
    """The same timing rules applied to every fold in turn, with no jumping ahead."""
    timing = TileParams(rows=rows, cols=cols, dataflow=dataflow, acc_depth=acc_depth,
                        mac_stages=mac_stages)
    folds = fold_schedule(rows=rows, cols=cols, dataflow=dataflow, m=m, k=k, n=n,
                          acc_depth=acc_depth)
    if dataflow == "os":
        last = k - 1
        for _ in folds[1:]:
            last += max(k, timing.fold_interval)
        first_result = k - 1 + timing.fill_latency
    else:
        load_prev, lasts, first_result = -rows, [], None
        for f in folds:
            load = load_prev + rows
            if len(lasts) >= 2:
                load = max(load, lasts[-2] + timing.weight_release_latency)
            start = load + rows if not lasts else max(load + rows, lasts[-1] + 1)
            lasts.append(start + f.m_count - 1)
            load_prev = load
            if f.emit and first_result is None:
                first_result = start + timing.fill_latency
        last = lasts[-1]
    return last + timing.drain_latency + 1, first_result


@settings(max_examples=300, deadline=None)
@given(rows=st.integers(1, 8), cols=st.integers(1, 8), dataflow=st.sampled_from(["os", "ws"]),
       m=st.integers(1, 70), k=st.integers(1, 40), n=st.integers(1, 40),
       acc_depth=st.integers(1, 20), mac_stages=st.integers(0, 4))
def test_constant_time_prediction_equals_fold_by_fold(rows, cols, dataflow, m, k, n, acc_depth,
                                                      mac_stages):
    estimate = predict(rows=rows, cols=cols, dataflow=dataflow, m=m, k=k, n=n,
                       acc_depth=acc_depth, mac_stages=mac_stages)
    total, first = _fold_by_fold(rows, cols, dataflow, m, k, n, acc_depth, mac_stages)
    assert (estimate.total_cycles, estimate.first_result_cycles) == (total, first)


@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_mac_stages_add_their_latency_to_every_gemm_once(dataflow):
    """Pipelined cells delay the results, not the stream: a GEMM takes exactly mac_stages
    more cycles, however many folds it has."""
    for m, k, n in [(1, 1, 1), (37, 50, 20), (300, 64, 300)]:
        plain = predict(rows=4, cols=4, dataflow=dataflow, m=m, k=k, n=n, acc_depth=8)
        piped = predict(rows=4, cols=4, dataflow=dataflow, m=m, k=k, n=n, acc_depth=8,
                        mac_stages=3)
        assert piped.total_cycles == plain.total_cycles + 3
        assert piped.first_result_cycles == plain.first_result_cycles + 3


@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_huge_gemm_is_predicted_and_nearly_fully_utilized(dataflow):
    estimate = predict(rows=16, cols=16, dataflow=dataflow, m=16384, k=16384, n=16384,
                       acc_depth=256)
    assert estimate.macs == 16384 ** 3
    assert estimate.folds > 10 ** 5
    assert 0.9 < estimate.utilization <= 1.0


def test_short_folds_are_spaced_to_the_fold_interval():
    """Output-stationary folds shorter than fold_interval cost fold_interval cycles each:
    of 64 folds, only the first one's length shows."""
    short = predict(rows=8, cols=8, dataflow="os", m=64, k=2, n=64)
    long = predict(rows=8, cols=8, dataflow="os", m=64, k=8, n=64)
    assert long.total_cycles - short.total_cycles == 8 - 2


@pytest.mark.parametrize("dataflow", ["os", "ws"])
@pytest.mark.parametrize("m, k, n", [(1, 1, 1), (5, 7, 3), (16, 9, 33)])
def test_fold_schedule_covers_every_product_once(dataflow, m, k, n):
    counts = np.zeros((m, k, n), dtype=int)
    for f in fold_schedule(rows=4, cols=3, dataflow=dataflow, m=m, k=k, n=n, acc_depth=5):
        counts[f.m0:f.m0 + f.m_count, f.k0:f.k0 + f.k_count, f.n0:f.n0 + f.n_count] += 1
    assert (counts == 1).all()


def test_operand_beats_pad_with_zeros():
    A = np.arange(1, 7).reshape(3, 2)
    B = np.arange(1, 5).reshape(2, 2)
    a, flags, b, folds = operand_beats(A, B, rows=2, cols=3, dataflow="os")
    assert len(folds) == 2 and a.shape == (4, 2) and b.shape == (4, 3)
    assert (b[:, 2] == 0).all() and (a[2:, 1] == 0).all()
    assert flags[:, 0].tolist() == [0, 1, 0, 1]


def test_reference_wraps_at_the_accumulator_width():
    A = np.full((1, 4), 127)
    B = np.full((4, 1), 127)
    assert reference_gemm(A, B, acc_width=16, signed=True)[0, 0] == \
        ((127 * 127 * 4 + 2 ** 15) % 2 ** 16) - 2 ** 15
    assert reference_gemm(A, B, acc_width=16, signed=False)[0, 0] == (127 * 127 * 4) % 2 ** 16


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_bad_gemm_dimension_is_named(bad):
    with pytest.raises(ValueError, match=f"GEMM dimension k must be a positive integer, "
                                         f"not {bad!r}"):
        predict(rows=2, cols=2, dataflow="os", m=1, k=bad, n=1)
