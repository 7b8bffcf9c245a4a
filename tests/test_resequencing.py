"""The endpoints' scoreboard and resequencer, driven by a hand-made network that overtakes packets."""

import pytest

from supernode.fabric.network.traffic import Endpoints, ScoreboardError, TrafficSpec


class _TwoPathNetwork:
    """Two endpoints joined by two paths: packets with an even id take ``slow`` cycles,
    odd ones ``fast``, so an odd packet overtakes the even one injected just before it.
    Every injected flit returns its credit on the next cycle (an infinite buffer)."""

    def __init__(self, slow=4, fast=1):
        self.slow, self.fast = slow, fast
        self.pending = []          # (cycle out, port, flit)
        self.credits = [0, 0]
        self.t = 0

    def outputs(self):
        ejected = [None, None]
        for item in sorted(self.pending, key=lambda x: x[0]):
            when, port, flit = item
            if when <= self.t and ejected[port] is None:
                ejected[port] = flit
                self.pending.remove(item)
        return ejected, self.credits

    def step(self, inject, credits_out):
        self.credits = [0, 0]
        for s, flit in enumerate(inject):
            if flit is not None:
                delay = self.slow if flit.pkt % 2 == 0 else self.fast
                self.pending.append((self.t + delay, flit.dest, flit))
                self.credits[s] = 1
        self.t += 1


def _run(spec, network):
    eps = Endpoints(endpoints=2, vcs=1, buffer_depth=4, flit_width=8, spec=spec)
    while not eps.done:
        assert eps.cycle < 5000
        ejected, credits = network.outputs()
        inject, credits_out = eps.step(ejected, credits)
        network.step(inject, credits_out)
    eps.finish()
    return eps.result()


SPEC = dict(pattern="bit_complement", load=0.5, packet_length=1, packets_per_source=60,
            seed=3)


def test_a_fabric_that_reorders_a_flow_fails_the_ordered_scoreboard():
    with pytest.raises(ScoreboardError, match=r"reorder: packet \d+ of flow [01]->[01] VC 0 "
                                              r"arrived before packet \d+"):
        _run(TrafficSpec(**SPEC, ordered=True), _TwoPathNetwork())


def test_resequencing_endpoints_release_each_flow_in_order():
    """With ``ordered=False`` the overtaking packets wait at the ejector for their
    predecessors: every packet is delivered, the held ones are counted, and a packet's
    latency includes its wait (so no packet beats the slow path's latency by overtaking)."""
    result = _run(TrafficSpec(**SPEC, ordered=False), _TwoPathNetwork(slow=4, fast=1))
    in_order = _run(TrafficSpec(**SPEC, ordered=True), _TwoPathNetwork(slow=1, fast=1))
    assert result["packets_delivered"] == in_order["packets_delivered"] > 50
    assert result["resequenced_packets"] > 10
    assert result["resequence_max_held"] >= 1
    assert in_order["resequenced_packets"] == 0
    # A packet that overtook is released no earlier than the slow one before it.
    assert result["latency_min"] >= 1
    assert result["latency_mean"] > in_order["latency_mean"]


def test_nothing_is_held_when_the_fabric_keeps_order():
    """An order-keeping network under ``ordered=False`` gives the same statistics as under
    ``ordered=True``: the resequencer only acts on packets that overtook."""
    a = _run(TrafficSpec(**SPEC, ordered=False), _TwoPathNetwork(slow=2, fast=2))
    b = _run(TrafficSpec(**SPEC, ordered=True), _TwoPathNetwork(slow=2, fast=2))
    assert a == b
