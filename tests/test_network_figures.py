"""The seam to the system layer: NetworkFigures from clos_figures."""

import pytest

from fabric.network import NetworkFigures, clos_figures
from rtl.router import Router
from supernode.errors import UserError

SMALL = dict(ports=4, vcs=2, buffer_depth=4, voq=True, allocator="islip")


def test_figures_come_from_the_rtl_and_the_model():
    fig = clos_figures(**SMALL)
    assert isinstance(fig, NetworkFigures)
    rtl = Router(**SMALL)
    assert fig.hop_latency_cycles == rtl.latency
    assert fig.credit_round_trip_cycles == rtl.credit_round_trip
    assert 0 < fig.saturation_throughput <= 1
    assert fig.pattern == "uniform"
    assert fig.router["ports"] == 4 and fig.router["voq"] is True
    assert "model" in fig.source and "\n" not in fig.source


def test_repeated_calls_are_cached():
    import time
    clos_figures(**SMALL)
    t = time.perf_counter()
    again = clos_figures(**SMALL)
    assert time.perf_counter() - t < 0.05
    assert again == clos_figures(**SMALL)


def test_bad_pattern_and_parameter_are_named():
    with pytest.raises(UserError, match="'zigzag'"):
        clos_figures(pattern="zigzag")
    with pytest.raises(UserError, match="'radix'"):
        clos_figures(radix=8)
    with pytest.raises(ValueError, match="vcs must be an integer from 1 to 8, not 0"):
        clos_figures(vcs=0)
