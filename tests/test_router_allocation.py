"""What more VCs buy: the iterated separable allocator, alone and in an 8-port router's saturation."""

import pytest
from amaranth.sim import Simulator

from supernode.fabric.network.traffic import TrafficSpec
from supernode.rtl.allocator import SeparableAllocator
from supernode.rtl.router_params import RouterParams
from supernode.sim.router.common import Design, run_model_for

#: Uniform random single-flit packets at offered load 1.0: the saturation figure of
#: ``benchmarks/router_saturation.py``, measured over fewer cycles.
SPEC = TrafficSpec(pattern="uniform", load=1.0, packet_length=1, warmup=500, measure=2000,
                   drain=0, seed=7)


def _saturation(**params):
    design = Design("router", dict(ports=8, buffer_depth=8, **params))
    return run_model_for(design, SPEC)["accepted_throughput"]


def test_the_default_allocator_makes_more_vcs_pay():
    """At equal ports and buffers (8 flits per VC), the router's default allocator (the
    separable one of two iterations) saturates higher with every doubling of the VCs and
    passes 0.70 at 4 and 8 VCs, while one VC stays at the head-of-line figure (about 0.62
    for 8 ports)."""
    assert RouterParams().separable_iterations == 2
    sat = {vcs: _saturation(vcs=vcs) for vcs in (1, 2, 4, 8)}
    print(sat)
    assert sat[1] < sat[2] < sat[4] < sat[8]
    assert sat[4] >= 0.70 and sat[8] >= 0.70
    assert sat[1] == pytest.approx(0.62, abs=0.02)


def test_one_iteration_stays_near_the_head_of_line_limit():
    """The contrast the second iteration removes: with one iteration an input that loses
    its pick sends nothing, so 4 VCs stay within 0.02 of one FIFO."""
    fifo = _saturation(vcs=1, separable_iterations=1)
    four = _saturation(vcs=4, separable_iterations=1)
    assert four == pytest.approx(fifo, abs=0.02)
    assert _saturation(vcs=4, separable_iterations=2) > four + 0.1


def _allocate(iterations, elig, outs):
    """One cycle of a 2-port, 2-VC separable allocator component fresh from reset:
    ``(match, chosen)`` per input, given each input's eligible queues and their outputs."""
    dut = SeparableAllocator(RouterParams(ports=2, vcs=2, separable_iterations=iterations))
    seen = []

    async def bench(ctx):
        for i in range(2):
            ctx.set(dut.requests[i].elig, elig[i])
            for q in range(2):
                ctx.set(dut.requests[i].outs[q], outs[i][q])
        seen.append(([ctx.get(dut.requests[i].match) for i in range(2)],
                     [ctx.get(dut.requests[i].chosen) for i in range(2)]))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return seen[0]


def test_an_input_that_loses_asks_again_with_another_vc():
    """Both inputs first pick a queue for output 0, input 0 wins it; in the second iteration
    input 1 asks with its other queue, for output 1, and gets it. With one iteration
    input 1 sends nothing."""
    elig, outs = [0b01, 0b11], [[0, 1], [0, 1]]
    match, chosen = _allocate(2, elig, outs)
    assert match == [0b01, 0b10] and chosen == [0b01, 0b10]
    match, chosen = _allocate(1, elig, outs)
    assert match == [0b01, 0b00]
