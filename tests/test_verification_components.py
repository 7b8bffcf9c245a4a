"""The endpoints' verification components one by one, and the lock-step driver's contract."""

import itertools
import re

import pytest

from supernode.fabric.network.checks import DeadlockError, ScoreboardError
from supernode.fabric.network.flit import Flit, flit_data
from supernode.fabric.network.lockstep import LockStep, ModelBackend
from supernode.fabric.network.model import router_network
from supernode.fabric.network.traffic import Endpoints, TrafficSpec
from supernode.fabric.network.verification import Resequencer, Scoreboard, Sink, Source


def _flits(source, t=0):
    """Every flit ``source`` sends from cycle ``t`` on, with credits to spare."""
    out = []
    while True:
        pkt, flit = source.send(t)
        if flit is None:
            return out
        out.append((pkt, flit))
        t += 1


def test_source_sends_its_packets_in_order_while_it_holds_credits():
    source = Source(2, vcs=2, buffer_depth=2, flit_width=16)
    a = source.create(dest=1, vc=1, length=3, t=0, measured=True)
    source.create(dest=3, vc=0, length=1, t=0, measured=False)
    sent = _flits(source)
    # Two credits on VC 1: the first packet stops after two flits.
    assert [(f.first, f.last, f.vc, f.dest, f.src) for _, f in sent] == \
        [(1, 0, 1, 1, 2), (0, 0, 1, 1, 2)]
    assert sent[0][0] is a and a.injected == 0 and source.credits == [2, 0]
    source.credit(0b10)
    (_, tail), (_, single) = _flits(source, t=5)
    assert tail.last and tail.data == flit_data(2, a.pkt, 2, 16)
    assert single.first and single.last and single.pkt == 1
    assert source.send(9, start=False) == (None, None)


def test_sink_drains_one_flit_a_cycle_when_its_pattern_allows():
    sink = Sink(0)
    pattern = itertools.cycle([1, 1, 0])
    for t in range(3):
        sink.accept(t, Flit(1, 1, t % 2, 0, 1, t, 0))
    pulses = []
    for t in range(6):
        pulses.append(sink.take_credit())
        sink.drain(t, next(pattern))
    # Held a cycle first, then drains on the pattern's ones; each credit a cycle later.
    assert pulses == [0, 0, 0b01, 0, 0b10, 0b01]


def _sent(pid=0, length=2):
    """The flits of packet ``pid`` from endpoint 0 to endpoint 1."""
    source = Source(0, vcs=1, buffer_depth=8, flit_width=8)
    source.next_pkt = pid
    source.create(1, 0, length, 0, True)
    return [f for _, f in _flits(source)]


@pytest.mark.parametrize("mutate, message", [
    (lambda f: f._replace(pkt=9), "unknown flit from source 0 packet 9 at cycle 0, "
                                  "output port 1 (corrupted header)"),
    (lambda f: f._replace(dest=2), "misroute: packet 0 from 0 to 1 left the network at "
                                   "cycle 0, output port 1"),
    (lambda f: f._replace(data=f.data ^ 1), "corrupt or reordered flit 0 of packet 0"),
])
def test_scoreboard_names_what_is_wrong(mutate, message):
    flits = _sent()
    board = Scoreboard(flit_width=8, ordered=True)
    board.expect(_expected(flits))
    with pytest.raises(ScoreboardError, match=re.escape(message)):
        board.check(1, mutate(flits[0]), 0)


def _expected(flits):
    """The packet the scoreboard expects for ``flits`` (a fresh copy of what was sent)."""
    f = flits[0]
    source = Source(f.src, vcs=1, buffer_depth=8, flit_width=8)
    source.next_pkt = f.pkt
    return source.create(f.dest, f.vc, len(flits), 0, True)


def test_scoreboard_matches_a_packet_then_finds_duplicates_and_losses():
    flits = _sent(length=2)
    board = Scoreboard(flit_width=8, ordered=True)
    pkt = _expected(flits)
    board.expect(pkt)
    assert board.check(1, flits[0], 3) is None
    assert board.check(1, flits[1], 4) is pkt
    board.finish()
    with pytest.raises(ScoreboardError, match="duplicate: packet 0 of source 0 arrived again"):
        board.check(1, flits[0], 5)
    board.expect(_expected(_sent(pid=1)))
    with pytest.raises(ScoreboardError, match=r"loss: 1 packets never arrived, e.g. packet 1 "
                                              r"from 0 to 1 \(0 of 2 flits seen\)"):
        board.finish()


def test_resequencer_releases_each_flow_in_send_order():
    reseq = Resequencer()
    pkts = [_expected(_sent(pid=k, length=1)) for k in range(3)]
    for p in pkts:
        reseq.expect(p)
    assert reseq.arrive(pkts[2]) == [] and reseq.arrive(pkts[1]) == []
    assert len(reseq.held) == 2
    assert reseq.arrive(pkts[0]) == pkts and not reseq.held


class _WaitingBackend(ModelBackend):
    async def tick(self):
        await _Suspend()


class _Suspend:
    def __await__(self):
        yield


def test_run_now_refuses_a_backend_that_waits():
    spec = TrafficSpec(measure=20, warmup=0)
    eps = Endpoints(endpoints=2, vcs=1, buffer_depth=2, flit_width=16, spec=spec)
    network = router_network(ports=2, vcs=1, buffer_depth=2)
    with pytest.raises(RuntimeError, match="_WaitingBackend.tick waited"):
        LockStep(eps, max_cycles=100).run_now(_WaitingBackend(network))


def test_lock_step_calls_monitors_and_stops_at_the_cycle_limit():
    spec = TrafficSpec(load=1.0, measure=500, warmup=0)
    eps = Endpoints(endpoints=2, vcs=1, buffer_depth=2, flit_width=16, spec=spec)
    seen = []
    driver = LockStep(eps, max_cycles=40, monitors=[lambda t, ej: seen.append(t)])
    with pytest.raises(DeadlockError, match="the run did not end within 40 cycles"):
        driver.run_now(ModelBackend(router_network(ports=2, vcs=1, buffer_depth=2)))
    assert seen == list(range(40))
