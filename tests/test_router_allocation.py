"""What more VCs buy: saturation of an 8-port router under the iterated separable allocator."""

import pytest

from fabric.network.traffic import TrafficSpec
from sim.router.common import Design, run_model_for

#: Uniform random single-flit packets at offered load 1.0: the saturation figure of
#: ``benchmarks/router_saturation.py``, measured over fewer cycles.
SPEC = TrafficSpec(pattern="uniform", load=1.0, packet_length=1, warmup=500, measure=2000,
                   drain=0, seed=7)


def _saturation(**params):
    design = Design("router", dict(ports=8, buffer_depth=8, **params))
    return run_model_for(design, SPEC)["accepted_throughput"]


def test_two_iterations_make_more_vcs_pay():
    """At equal ports and buffers (8 flits per VC), the two-iteration separable allocator's
    saturation rises with every doubling of the VCs and passes 0.70 at 4 and 8 VCs, while
    one VC stays at the head-of-line figure (about 0.62 for 8 ports)."""
    sat = {vcs: _saturation(vcs=vcs, separable_iterations=2) for vcs in (1, 2, 4, 8)}
    print(sat)
    assert sat[1] < sat[2] < sat[4] < sat[8]
    assert sat[4] >= 0.70 and sat[8] >= 0.70
    assert sat[1] == pytest.approx(0.62, abs=0.02)


def test_one_iteration_stays_near_the_head_of_line_limit():
    """The contrast the second iteration removes: with one iteration an input that loses
    its pick sends nothing, so 4 VCs stay within 0.02 of one FIFO."""
    fifo, four = _saturation(vcs=1), _saturation(vcs=4)
    assert four == pytest.approx(fifo, abs=0.02)
    assert _saturation(vcs=4, separable_iterations=2) > four + 0.1
