"""Verification components of a network's endpoints: source, sink, scoreboard, resequencer and run statistics."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from supernode.rtl.router_params import RouterParams

from .checks import ScoreboardError
from .flit import Flit, flit_data

__all__ = ["Packet", "Source", "Sink", "Scoreboard", "Resequencer", "RunStatistics",
           "PACKET_ID_MASK"]

#: A source's packet ids wrap around at the width of the flits' packet-id field (the
#: router parameters' default; a network of other parameters passes its own mask).
PACKET_ID_MASK = (1 << RouterParams.packet_id_width) - 1

#: Zero-load latency of a packet: ``(src, dest, length) -> cycles``.
ZeroLoad = Callable[[int, int, int], int]


class MeasurementSpec(Protocol):
    """What :class:`RunStatistics` reads of a run's traffic spec
    (:class:`~supernode.fabric.network.traffic.TrafficSpec` has it)."""

    @property
    def load(self) -> float: ...

    @property
    def measure(self) -> int: ...

    @property
    def packets_per_source(self) -> int: ...


class Packet:
    """One packet, from its creation at a source to its release at its destination.

    Members
    -------
    src, dest, pkt, vc : int
        Source, destination, packet id (per source) and virtual channel.
    length : int
        Flits.
    created : int
        Cycle the source created it.
    injected : int or None
        Cycle its head flit left the source.
    measured : bool
        Created in the measurement window: its latency is reported.
    sent : int
        Flits injected so far.
    next : int
        Index of the next flit the scoreboard expects.
    """
    __slots__ = ("src", "dest", "pkt", "vc", "length", "created", "injected", "next",
                 "measured", "sent")

    def __init__(self, src: int, dest: int, pkt: int, vc: int, length: int, created: int,
                 measured: bool) -> None:
        self.src, self.dest, self.pkt, self.vc = src, dest, pkt, vc
        self.length, self.created, self.measured = length, created, measured
        self.injected: int | None = None
        self.next = 0
        self.sent = 0


class Source:
    """One endpoint's injector: the packets created for it, sent in order, one flit a
    cycle while it holds a credit for the packet's VC.

    Its idle pattern is the traffic's: a packet is created when the schedule says so (at
    the offered load), and a source with nothing queued, or no credit, drives nothing.

    Parameters
    ----------
    index : int
        The endpoint.
    vcs : int
        Virtual channels of its injection link.
    buffer_depth : int
        Flits per VC buffer at the router input: the initial credits per VC.
    flit_width : int
        Payload bits per flit.

    Members
    -------
    queue : deque of Packet
        Created, head not yet sent.
    current : Packet or None
        The packet being sent.
    credits : list of int
        Credits per VC.
    created : int
        Packets created so far.
    next_pkt : int
        Id of the next packet created.
    """

    def __init__(self, index: int, *, vcs: int, buffer_depth: int, flit_width: int,
                 packet_id_mask: int = PACKET_ID_MASK) -> None:
        self.index = index
        self.packet_id_mask = packet_id_mask
        self.vcs = vcs
        self.flit_width = flit_width
        self.queue: deque[Packet] = deque()
        self.current: Packet | None = None
        self.credits = [buffer_depth] * vcs
        self.created = 0
        self.next_pkt = 0

    def create(self, dest: int, vc: int, length: int, t: int, measured: bool) -> Packet:
        """Queue a new packet created at cycle ``t``; returns it."""
        pid = self.next_pkt
        self.next_pkt = (pid + 1) & self.packet_id_mask
        self.created += 1
        pkt = Packet(self.index, dest, pid, vc, length, t, measured)
        self.queue.append(pkt)
        return pkt

    def send(self, t: int, *, start: bool = True
             ) -> tuple[Packet, Flit] | tuple[None, None]:
        """``(packet, flit)`` this source drives at cycle ``t``, or ``(None, None)``.

        ``start=False`` finishes the packet under way but begins no new one (the run is
        winding down).
        """
        pkt = self.current
        if pkt is None:
            if not start or not self.queue:
                return None, None
            pkt = self.queue[0]
            if self.credits[pkt.vc] == 0:
                return None, None
            self.queue.popleft()
            self.current = pkt
            pkt.injected = t
        elif self.credits[pkt.vc] == 0:
            return None, None
        idx = pkt.sent
        flit = Flit(int(idx == 0), int(idx == pkt.length - 1), pkt.vc, pkt.dest, self.index,
                    pkt.pkt, flit_data(self.index, pkt.pkt, idx, self.flit_width))
        self.credits[pkt.vc] -= 1
        pkt.sent += 1
        if pkt.sent == pkt.length:
            self.current = None
        return pkt, flit

    def credit(self, pulses: int) -> None:
        """Take the credits returned this cycle: bit ``v`` of ``pulses`` is one for VC ``v``."""
        for v in range(self.vcs):
            if pulses >> v & 1:
                self.credits[v] += 1


class Sink:
    """One endpoint's ejector: a buffer that takes every flit the network delivers (the
    network only sends against credits), drains at most one a cycle, from the cycle after
    it arrived and when its back-pressure pattern allows, and returns that flit's credit
    on the next cycle.

    Parameters
    ----------
    index : int
        The endpoint.

    Members
    -------
    buffer : deque of (int, int)
        Flits held: the first cycle each may drain, and its VC.
    credit : int
        Credit pulses to drive next cycle (bit ``v`` for VC ``v``).
    """

    def __init__(self, index: int) -> None:
        self.index = index
        self.buffer: deque[tuple[int, int]] = deque()
        self.credit = 0

    def take_credit(self) -> int:
        """The credit pulses to drive this cycle (decided last cycle)."""
        pulses, self.credit = self.credit, 0
        return pulses

    def accept(self, t: int, flit: Flit) -> None:
        """Buffer the flit delivered at cycle ``t``."""
        self.buffer.append((t + 1, flit.vc))

    def drain(self, t: int, ready: bool) -> None:
        """Drain the oldest flit at cycle ``t`` if ``ready`` (the back-pressure pattern's
        bit for this cycle) and it has been held a cycle."""
        if ready and self.buffer and self.buffer[0][0] <= t:
            self.credit = 1 << self.buffer.popleft()[1]


class Scoreboard:
    """Matches every flit that leaves the network against the packets sent.

    A flit must belong to a packet in flight (not unknown, not a duplicate), leave at its
    destination, be the packet's next flit with the right framing, VC and payload, and,
    when ``ordered``, a head must be the oldest packet in flight of its flow (source,
    destination, VC). :meth:`finish` checks that nothing is left unmatched.

    Parameters
    ----------
    flit_width : int
        Payload bits per flit.
    ordered : bool
        The network must keep each flow in order.

    Members
    -------
    in_flight : dict
        ``(src, pkt id) -> Packet``: heads sent, tails not yet matched.
    """

    def __init__(self, *, flit_width: int, ordered: bool) -> None:
        self.flit_width = flit_width
        self.ordered = ordered
        self.in_flight: dict[tuple[int, int], Packet] = {}
        self._delivered: set[tuple[int, int]] = set()
        # (src, dest, vc) -> ids in flight in send order
        self._flows: dict[tuple[int, int, int], deque[int]] = {}

    def expect(self, pkt: Packet) -> None:
        """The head of ``pkt`` has been sent."""
        self.in_flight[(pkt.src, pkt.pkt)] = pkt
        if self.ordered:
            self._flows.setdefault((pkt.src, pkt.dest, pkt.vc), deque()).append(pkt.pkt)

    def check(self, port: int, flit: Flit, t: int) -> Packet | None:
        """Match ``flit``, delivered at ``port`` at cycle ``t``; returns its packet when
        this was the tail, else None. Raises :class:`ScoreboardError` on a mismatch."""
        key = (flit.src, flit.pkt)
        pkt = self.in_flight.get(key)
        where = f"at cycle {t}, output port {port}"
        if pkt is None:
            if key in self._delivered:
                raise ScoreboardError(f"duplicate: packet {flit.pkt} of source {flit.src} "
                                      f"arrived again {where}")
            raise ScoreboardError(f"unknown flit from source {flit.src} packet {flit.pkt} "
                                  f"{where} (corrupted header)")
        if flit.dest != port or pkt.dest != port:
            raise ScoreboardError(f"misroute: packet {pkt.pkt} from {pkt.src} to {pkt.dest} "
                                  f"left the network {where}")
        idx = pkt.next
        if flit.first != (idx == 0) or flit.last != (idx == pkt.length - 1) \
                or flit.vc != pkt.vc \
                or flit.data != flit_data(pkt.src, pkt.pkt, idx, self.flit_width):
            raise ScoreboardError(f"corrupt or reordered flit {idx} of packet {pkt.pkt} from "
                                  f"{pkt.src} to {pkt.dest} {where}: got {flit}")
        if idx == 0 and self.ordered:
            flow = self._flows[(pkt.src, pkt.dest, pkt.vc)]
            if flow[0] != pkt.pkt:
                raise ScoreboardError(
                    f"reorder: packet {pkt.pkt} of flow {pkt.src}->{pkt.dest} VC {pkt.vc} "
                    f"arrived before packet {flow[0]} {where}")
            flow.popleft()
        pkt.next = idx + 1
        if pkt.next < pkt.length:
            return None
        del self.in_flight[key]
        self._delivered.add(key)
        return pkt

    def finish(self) -> None:
        """Nothing left unmatched: raises :class:`ScoreboardError` on a lost packet."""
        if self.in_flight:
            pkt = next(iter(self.in_flight.values()))
            raise ScoreboardError(
                f"loss: {len(self.in_flight)} packets never arrived, e.g. packet {pkt.pkt} "
                f"from {pkt.src} to {pkt.dest} ({pkt.next} of {pkt.length} flits seen)")


class Resequencer:
    """One endpoint's reorder buffer, for a network that may reorder a flow: a packet that
    arrives complete ahead of an earlier packet of its flow (source, VC) is held until
    that one is in, so each flow is released in the order it was sent.

    Members
    -------
    held : dict
        ``(src, pkt id) -> Packet``: arrived, waiting for an earlier packet.
    """

    def __init__(self) -> None:
        self.held: dict[tuple[int, int], Packet] = {}
        # (src, vc) -> ids not yet released, in send order
        self._flows: dict[tuple[int, int], deque[int]] = {}

    def expect(self, pkt: Packet) -> None:
        """The head of ``pkt``, bound for this endpoint, has been sent."""
        self._flows.setdefault((pkt.src, pkt.vc), deque()).append(pkt.pkt)

    def arrive(self, pkt: Packet) -> list[Packet]:
        """``pkt`` is in, complete; returns the packets released now, in order (none
        when ``pkt`` is held)."""
        flow = self._flows[(pkt.src, pkt.vc)]
        if flow[0] != pkt.pkt:
            self.held[(pkt.src, pkt.pkt)] = pkt
            return []
        flow.popleft()
        released = [pkt]
        while flow and (pkt.src, flow[0]) in self.held:
            released.append(self.held.pop((pkt.src, flow.popleft())))
        return released


class RunStatistics:
    """The record of a run: what was created, delivered and measured, and the report.

    Parameters
    ----------
    endpoints : int
    spec : TrafficSpec
        The measurement windows and the offered load.
    zero_load : callable (src, dest, length) -> int, optional
        Zero-load latency, for the excess latency by path.

    Members
    -------
    latencies, network_latencies : list of int
        Per measured packet: release - creation, and release - head injected.
    hops_latency : list of int
        Per measured packet: latency - zero-load latency.
    min_excess : dict
        Zero-load latency -> least excess latency seen.
    measured_created, measured_outstanding : int
        Measured packets created, and not yet released.
    created_flits_in_window : int
        Flits of the measured packets.
    ejected_in_window : int
        Flits delivered in the measurement window; ``ejected_per_port`` per endpoint.
    flits_moved : int
        Flits matched by the scoreboard.
    packets_delivered : int
        Packets released; ``last_delivery`` the cycle of the last.
    held_packets, held_max : int
        Packets the resequencers held; most held at once at one endpoint.
    saturated : bool
        The window's packets had not all arrived when the drain time ran out.
    """

    def __init__(self, *, endpoints: int, spec: MeasurementSpec,
                 zero_load: ZeroLoad | None = None) -> None:
        self.n = endpoints
        self.spec = spec
        self.zero_load = zero_load
        self.latencies: list[int] = []
        self.network_latencies: list[int] = []
        self.hops_latency: list[int] = []
        self.min_excess: dict[int, int] = {}
        self.measured_created = 0
        self.measured_outstanding = 0
        self.created_flits_in_window = 0
        self.ejected_in_window = 0
        self.ejected_per_port = [0] * endpoints
        self.flits_moved = 0
        self.packets_delivered = 0
        self.last_delivery: int | None = None
        self.held_packets = 0
        self.held_max = 0
        self.saturated = False

    def created(self, pkt: Packet) -> None:
        """A packet was created (counted when measured)."""
        if pkt.measured:
            self.measured_created += 1
            self.measured_outstanding += 1
            self.created_flits_in_window += pkt.length

    def ejected(self, port: int) -> None:
        """A flit left the network at ``port`` in the measurement window."""
        self.ejected_in_window += 1
        self.ejected_per_port[port] += 1

    def held(self, count: int) -> None:
        """A resequencer held a packet; it now holds ``count``."""
        self.held_packets += 1
        self.held_max = max(self.held_max, count)

    def release(self, pkt: Packet, t: int) -> None:
        """``pkt`` reached its endpoint, complete and in flow order, at cycle ``t``."""
        self.packets_delivered += 1
        self.last_delivery = t
        if pkt.measured:
            self.measured_outstanding -= 1
            self.latencies.append(t - pkt.created)
            assert pkt.injected is not None         # its head left the source
            self.network_latencies.append(t - pkt.injected)
            if self.zero_load is not None:
                zero = self.zero_load(pkt.src, pkt.dest, pkt.length)
                excess = t - pkt.created - zero
                self.hops_latency.append(excess)
                self.min_excess[zero] = min(excess, self.min_excess.get(zero, excess))

    def result(self, cycles: int) -> dict[str, Any]:
        """The report of a run that lasted ``cycles`` cycles."""
        spec = self.spec
        lat = np.array(self.latencies, dtype=float)
        finite = spec.packets_per_source > 0
        if finite:
            window = (self.last_delivery or 0) + 1
        else:
            window = spec.measure
        accepted = (self.flits_moved if finite else self.ejected_in_window) / (window * self.n)
        return {
            "offered_load": spec.load,
            "offered_load_measured": self.created_flits_in_window / (window * self.n),
            "accepted_throughput": accepted,
            "accepted_per_port": [x / window for x in self.ejected_per_port],
            "completion_cycles": window if finite else None,
            "latency_mean": float(lat.mean()) if lat.size else None,
            "latency_p99": float(np.percentile(lat, 99)) if lat.size else None,
            "latency_min": float(lat.min()) if lat.size else None,
            "network_latency_mean": float(np.mean(self.network_latencies))
            if self.network_latencies else None,
            "measured_packets": int(lat.size),
            "packets_delivered": self.packets_delivered,
            "flits_delivered": self.flits_moved,
            "saturated": self.saturated,
            "resequenced_packets": self.held_packets,
            "resequence_max_held": self.held_max,
            "cycles": cycles,
            "min_excess_by_zero_load": {str(k): v for k, v in sorted(self.min_excess.items())},
        }
