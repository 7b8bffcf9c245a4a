"""Compiled (numba) cycle-exact simulation of a router network and its endpoints in one loop.

The loop's state is a few records, one per concern, each a ``NamedTuple`` of numpy arrays
(or of integers, for the configuration). numba passes a named tuple as one argument and
compiles each field access to the array it names, so the loop reads them by name at the
cost of positional arrays:

- :class:`Config`: the run's integer parameters;
- :class:`Fabric`: the network's static description (ports, links, queue numbering, spread
  up-routing), made once per network by :class:`EngineNetwork`;
- :class:`Routers`: the routers' state (queues, held routes, output credits and claims,
  arbiter pointers, output registers, counters, routing tables);
- :class:`Ends`: the endpoints' state (source queues, injection credits, ejectors, flows);
- :class:`Packets`: the packet table, one array per field, indexed by creation order;
- :class:`Traffic`: the rows of the traffic schedule in hand; :class:`TableWrites`: the
  routing-table writes of the run;
- :class:`Scratch`: the loop's working arrays (it allocates nothing itself);
- ``run``: the scalar state (cycle, phase, statistics, where a failure was found), one
  numpy record of named int64 fields (:data:`RUN_FIELDS`).

A flit in the loop is one integer, ``packet * 64 + index`` (:func:`_packet`,
:func:`_index`); -1 is no flit.
"""

from collections.abc import Iterable
from typing import Any, NamedTuple

import numpy as np
from numba import njit

from .checks import DeadlockError, ScoreboardError, check_cfg_writes
from .flit import Flit, flit_data
from .model import STATS_COUNTERS, NetworkModel

__all__ = ["simulate", "EngineNetwork", "ENGINE_MAX_PORTS"]

#: Largest router radix the compiled loop takes: it keeps a router's requesters (inputs,
#: outputs) as bits of one 64-bit word. Larger routers run on the Python reference.
ENGINE_MAX_PORTS = 63

# Status of a kernel call: finished, needs more input, or one of the failures.
DONE, NEED_ROWS, NEED_PACKETS, MAX_CYCLES, DEADLOCK, UNKNOWN, DUPLICATE, MISROUTE, \
    CORRUPT, REORDER, OVERFLOW = range(11)

# Packet states.
QUEUED, IN_FLIGHT, ARRIVED, RELEASED = range(4)


class Config(NamedTuple):
    """The run's integer parameters (the spec's, the network's and the limits)."""
    n: int                  # endpoints
    vcs: int
    depth: int              # input buffer depth per VC
    packet_length: int
    warmup: int
    measure: int
    drain: int
    watchdog: int
    ordered: int            # 1: the network keeps flows in order (no resequencing)
    quota: int              # packets per source of a finite run (0: open run)
    routers: int
    max_ports: int          # the largest router's ports: the stride of per-port arrays
    islip: int              # 1: iSLIP, 0: separable input-first allocation
    iterations: int
    max_cycles: int
    ej_cap: int             # an ejector's buffer (flits)
    pid_mask: int           # packet ids wrap at this mask


class Fabric(NamedTuple):
    """The network's static description: per router its ports and spread up-routing, its
    queue numbering (``RouterParams.queues``), and where each port's flits and credits
    come from. Per-port arrays are indexed ``[r, p]``, or ``r * max_ports + p`` when flat."""
    ports: np.ndarray       # [r]: the router's ports
    spread: np.ndarray      # [r, k]: the up-ports a spread route turns over
    spread_len: np.ndarray  # [r]
    in_spread: np.ndarray   # [r, p]: port p is a spread (up) port
    q_n: np.ndarray         # [r]: queues per input
    q_vc: np.ndarray        # [r, q]: the queue's VC
    q_fixed: np.ndarray     # [r, q]: the queue's output (VOQ), -1: any
    q_of: np.ndarray        # [r, v, route]: the queue a flit of VC v to `route` enters
    in_kind: np.ndarray     # [r, p]: input p's flits come from 0: nowhere, 1: an
    in_idx: np.ndarray      #   endpoint (in_idx: which), 2: a router port (flat index)
    cr_kind: np.ndarray     # [r, p]: output p's credits come from the same three kinds
    cr_idx: np.ndarray
    ep_in: np.ndarray       # [e]: the flat router port endpoint e injects into
    ep_out: np.ndarray      # [e]: the flat router port endpoint e ejects from


class Routers(NamedTuple):
    """The routers' state. Queue (router r, input i, queue q) is entry
    ``(r * max_ports + i) * Qm + q`` of the per-queue arrays and its slots ``depth``
    entries from ``depth`` times that in the buffers; the output state of (r, o, VC v) is
    entry ``(r * max_ports + o) * vcs + v``. Output registers and credit pulses are double
    buffered: ``[parity]`` is this cycle's, ``[1 - parity]`` the next."""
    table: np.ndarray       # [r, dest]: the routing tables (written by TableWrites)
    qbuf: np.ndarray        # flits in the input queues
    qroute: np.ndarray      # their routes
    qhead: np.ndarray       # per queue: head slot
    qcount: np.ndarray      # per queue: flits
    held: np.ndarray        # [r, i, v]: the route of the packet entering input i on VC v
    turn: np.ndarray        # [r, i]: the input's spread pointer
    credit: np.ndarray      # per output VC: credits
    busy: np.ndarray        # per output VC: held by a packet
    claim: np.ndarray       # per output VC: the input that claimed it (-1: none)
    claim_ptr: np.ndarray   # per output VC: its claim arbiter's pointer
    arb: np.ndarray         # [r, k, p]: allocator pointers (see _separable and _islip)
    sent: np.ndarray        # per port: the RTL's performance counters
    credit_stalls: np.ndarray
    blocked: np.ndarray
    out_flit: np.ndarray    # [parity, port]: output register (-1: empty)
    in_credit: np.ndarray   # [parity, port]: credit pulses (a bit per VC) sent upstream
    occ: np.ndarray         # [r]: flits buffered
    in_occ: np.ndarray      # per input: flits buffered


class Ends(NamedTuple):
    """The endpoints' state: sources, ejectors (a ring of ``ej_cap`` flits each, with the
    cycle each may leave), the scoreboard's flows and the resequencers."""
    credit: np.ndarray          # [s, v]: injection credits
    current: np.ndarray         # [s]: the packet being injected (-1: none)
    queue_head: np.ndarray      # [s]: the source queue, linked through Packets.src_next
    queue_tail: np.ndarray
    created: np.ndarray         # [s]: packets created
    next_pid: np.ndarray        # [s]: the next packet id
    credit_pending: np.ndarray  # [e]: credit pulses to send next cycle
    ej_ready: np.ndarray        # [e, k]: the cycle the flit in ring slot k may leave
    ej_vc: np.ndarray           # [e, k]: its VC
    ej_head: np.ndarray         # [e]
    ej_count: np.ndarray        # [e]
    ej_per_port: np.ndarray     # [e]: flits ejected in the window
    held: np.ndarray            # [e]: packets the resequencer holds
    flow_head: np.ndarray       # [(src * n + dest) * vcs + v]: the flow's oldest packet
    flow_tail: np.ndarray       #   in flight, linked through Packets.flow_next


class Packets(NamedTuple):
    """The packet table: one array per field, indexed by creation order, and the measured
    packets in the order they were released."""
    src: np.ndarray
    dest: np.ndarray
    vc: np.ndarray
    pid: np.ndarray
    created: np.ndarray     # cycle
    injected: np.ndarray    # cycle (-1: not yet)
    next: np.ndarray        # the index of the flit the scoreboard expects next
    sent: np.ndarray        # flits injected
    measured: np.ndarray    # 1: created in the measurement window
    state: np.ndarray       # QUEUED, IN_FLIGHT, ARRIVED or RELEASED
    src_next: np.ndarray    # the next packet of the source queue (-1: none)
    flow_next: np.ndarray   # the next packet of the flow (-1: none)
    released: np.ndarray    # cycle
    measured_order: np.ndarray  # the measured packets as released

    @classmethod
    def empty(cls, capacity):
        return cls(*(np.zeros(capacity, dtype=np.int64) for _ in cls._fields))

    def grown(self):
        """The same table with twice the slots."""
        cap = self.src.size
        bigger = Packets.empty(2 * cap)
        for old, new in zip(self, bigger):
            new[:cap] = old
        return bigger


class Traffic(NamedTuple):
    """Rows of the traffic schedule (``TrafficSchedule.window``): row ``t - run.row_base``
    is cycle t's."""
    create: np.ndarray      # [row, s]
    dest: np.ndarray
    vc: np.ndarray
    drain: np.ndarray       # [row, e]: the ejector may release a flit


class TableWrites(NamedTuple):
    """Routing-table writes into router 0, at the end of the given cycles, in order."""
    cycle: np.ndarray
    dest: np.ndarray
    port: np.ndarray


#: The scalar state of a run (one record, ``run[0]`` in the loop). The statistics are named
#: as the :class:`~supernode.fabric.network.traffic.Endpoints` attributes they become.
RUN_FIELDS = (
    "cycle", "idle_cycles", "creating", "saturated", "measured_created",
    "measured_outstanding", "ejected_in_window", "created_flits_in_window", "flits_moved",
    "packets_delivered", "last_delivery", "held_packets", "held_max", "done",
    "packets",          # packet slots used
    "in_flight",        # packets injected and not yet arrived
    "ej_total",         # flits in the ejectors
    "n_measured",       # entries of Packets.measured_order
    "next_write",       # the next TableWrites entry
    "parity",           # which half of the double-buffered registers is this cycle's
    "row_base",         # the cycle of Traffic's row 0
    # A failure: where (endpoint or router), the packet, its flit index, the other packet.
    "err_at", "err_packet", "err_flit", "err_other")
RUN = np.dtype([(name, np.int64) for name in RUN_FIELDS])


@njit(cache=True, inline="always", error_model="numpy")
def _packet(code):
    return code >> 6


@njit(cache=True, inline="always", error_model="numpy")
def _index(code):
    return code & 63


@njit(cache=True, inline="always", error_model="numpy")
def _rr_bits(req, ptr):
    """Round-robin pick over the bit vector ``req``: the lowest requester at or after
    ``ptr``, else the lowest requester (``supernode.rtl.router._rr_arbiter`` with its mask kept as
    the pointer ``ptr``: the mask is every bit from ``ptr`` up)."""
    masked = req & ~((1 << ptr) - 1)
    p = masked if masked else req
    low = p & -p
    k = 0
    while low > 1:
        low >>= 1
        k += 1
    return k


@njit(cache=True, inline="always", error_model="numpy")
def _release(run, pk, g, t):
    run.packets_delivered += 1
    run.last_delivery = t
    pk.state[g] = RELEASED
    pk.released[g] = t
    if pk.measured[g]:
        run.measured_outstanding -= 1
        pk.measured_order[run.n_measured] = g
        run.n_measured += 1


@njit(cache=True, inline="always", error_model="numpy")
def _pop_flow(pk, ends, f, g):
    nxt = pk.flow_next[g]
    ends.flow_head[f] = nxt
    if nxt < 0:
        ends.flow_tail[f] = -1


@njit(cache=True, inline="always", error_model="numpy")
def _check(cf, run, pk, ends, e, code, t):
    """The scoreboard on one ejected flit (``Endpoints._check``); returns a status."""
    g = _packet(code)
    idx = _index(code)
    run.err_at = e
    run.err_packet = g
    run.err_flit = idx
    st = pk.state[g]
    if st != IN_FLIGHT:
        return DUPLICATE if st >= ARRIVED else UNKNOWN
    if pk.dest[g] != e:
        return MISROUTE
    if idx != pk.next[g]:
        return CORRUPT
    f = (pk.src[g] * cf.n + pk.dest[g]) * cf.vcs + pk.vc[g]
    flow_head = ends.flow_head
    if idx == 0 and cf.ordered:
        if flow_head[f] != g:
            run.err_other = flow_head[f]
            return REORDER
        _pop_flow(pk, ends, f, g)
    pk.next[g] = idx + 1
    run.flits_moved += 1
    if idx + 1 < cf.packet_length:
        return DONE
    run.in_flight -= 1
    pk.state[g] = ARRIVED
    if cf.ordered:
        _release(run, pk, g, t)
        return DONE
    # Resequencing: release the flow's packets in order, as far as they are in.
    if flow_head[f] != g:
        ends.held[e] += 1
        run.held_packets += 1
        if ends.held[e] > run.held_max:
            run.held_max = ends.held[e]
        return DONE
    _pop_flow(pk, ends, f, g)
    _release(run, pk, g, t)
    h = flow_head[f]
    while h >= 0 and pk.state[h] == ARRIVED:
        _pop_flow(pk, ends, f, h)
        ends.held[e] -= 1
        _release(run, pk, h, t)
        h = flow_head[f]
    return DONE


class Scratch(NamedTuple):
    """Working arrays of one cycle, made once per run. Per endpoint: the flit each source
    injects (-1: none) and the credits each ejector returns. Per input (and queue) of the
    router in hand: which queues may send (``elig``) and to which output (``qout``), the
    match (``match_o[i]``: the output input i won, -1: none; ``match_q[i]``: the queue it
    sends from) and the allocator's own scratch; per (output, VC), the inputs whose head
    flits find it held (``waitv``) and the list of those (output, VC)s (``wlist``)."""
    inject: np.ndarray      # [s]
    credits_out: np.ndarray  # [e]
    elig: np.ndarray        # [i, q]
    qout: np.ndarray        # [i, q]
    match_q: np.ndarray     # [i]
    match_o: np.ndarray     # [i]
    scr: np.ndarray         # [4, port]
    waitv: np.ndarray       # [o * vcs + v]
    wlist: np.ndarray

    @classmethod
    def make(cls, n, ports, queues, vcs):
        return cls(inject=np.full(n, -1, dtype=np.int64),
                   credits_out=np.zeros(n, dtype=np.int64),
                   elig=np.zeros((ports, queues), dtype=np.bool_),
                   qout=np.zeros((ports, queues), dtype=np.int64),
                   match_q=np.zeros(ports, dtype=np.int64),
                   match_o=np.zeros(ports, dtype=np.int64),
                   scr=np.zeros((4, ports), dtype=np.int64),
                   waitv=np.zeros(ports * vcs, dtype=np.int64),
                   wlist=np.zeros(ports * vcs, dtype=np.int64))


@njit(cache=True, inline="always", error_model="numpy")
def _pick(a, i, Q, o, matched_out, ptr):
    """Round-robin over the eligible queues of input ``i`` that go to output ``o`` (any
    output when ``o < 0``) and to no output in the bit mask ``matched_out``: the first at or
    after ``ptr``, else the first (-1: none). Inlined, so a constant ``o`` or
    ``matched_out`` at a call costs nothing."""
    first = -1
    for q in range(Q):
        if not a.elig[i, q]:
            continue
        out = a.qout[i, q]
        if (o < 0 or out == o) and not matched_out >> out & 1:
            if q >= ptr:
                return q
            if first < 0:
                first = q
    return first


@njit(cache=True, inline="always", error_model="numpy")
def _separable(iterations, arb, r, P, Q, any_elig, a):
    """Input-first separable allocation, iterated (``RouterModel._separable``);
    arb[r, 2 * k] are iteration k's input arbiters' pointers, arb[r, 2 * k + 1] its
    output arbiters'."""
    # scr[0]: per output, the inputs that want it; scr[1]: per input, its picked queue.
    scr, match_q, match_o = a.scr, a.match_q, a.match_o
    matched_in = 0
    matched_out = 0
    n = 0
    for k in range(iterations):
        for i in range(P):
            scr[0, i] = 0
        wants = False
        for i in range(P):
            if not (any_elig & ~matched_in) >> i & 1:
                continue
            q = _pick(a, i, Q, -1, matched_out, arb[r, 2 * k, i])
            if q < 0:
                continue
            scr[1, i] = q
            scr[0, a.qout[i, q]] |= 1 << i
            wants = True
        if not wants:
            break
        for o in range(P):
            if scr[0, o] == 0:
                continue
            i = _rr_bits(scr[0, o], arb[r, 2 * k + 1, o])
            arb[r, 2 * k + 1, o] = i + 1
            arb[r, 2 * k, i] = scr[1, i] + 1
            match_o[i] = o
            match_q[i] = scr[1, i]
            matched_in |= 1 << i
            matched_out |= 1 << o
            n += 1
    return n


@njit(cache=True, inline="always", error_model="numpy")
def _islip(iterations, arb, r, P, Q, any_elig, a):
    """iSLIP (``RouterModel._islip``); arb[r, 0] are the queue arbiters' pointers,
    arb[r, 1] the grant arbiters', arb[r, 2] the accept arbiters'."""
    # scr[0]: per output, the requesting inputs; scr[1]: per output, the input it
    # granted; scr[2]: per input, the granting outputs; scr[3]: per input, the output it
    # accepted in the first iteration (its pointers move on those).
    scr, match_q, match_o = a.scr, a.match_q, a.match_o
    for i in range(P):
        scr[0, i] = 0
        scr[3, i] = -1
    for i in range(P):
        if not any_elig >> i & 1:
            continue
        for q in range(Q):
            if a.elig[i, q]:
                scr[0, a.qout[i, q]] |= 1 << i
    matched_in = 0
    matched_out = 0
    for k in range(iterations):
        anyg = False
        for i in range(P):
            scr[2, i] = 0
        for o in range(P):
            if matched_out >> o & 1:
                continue
            rq = scr[0, o] & ~matched_in
            if rq == 0:
                continue
            i = _rr_bits(rq, arb[r, 1, o])
            scr[1, o] = i
            scr[2, i] |= 1 << o
            anyg = True
        if not anyg:
            break
        for i in range(P):
            if scr[2, i] == 0:
                continue
            o = _rr_bits(scr[2, i], arb[r, 2, i])
            if k == 0:
                scr[3, i] = o
            matched_in |= 1 << i
            matched_out |= 1 << o
            match_o[i] = o
    for i in range(P):
        o = scr[3, i]
        if o >= 0:
            arb[r, 2, i] = o + 1
            arb[r, 1, o] = scr[1, o] + 1
    n = 0
    for i in range(P):
        o = match_o[i]
        if o < 0:
            continue
        q = _pick(a, i, Q, o, 0, arb[r, 0, i])
        arb[r, 0, i] = q + 1
        match_q[i] = q
        n += 1
    return n


# The loop allocates nothing (its working arrays come in ``Scratch``) and every array
# belongs to a record the caller holds, so it is compiled without numba's reference
# counting (``_nrt=False``). With it, each record handed to a helper counted a reference
# to every array of the record, once per flit: runs took up to a third longer.
@njit(cache=True, error_model="numpy", _nrt=False)
def _kernel(cf, state, traffic, fab, rs, ends, pk, writes, a):
    """Run cycles until the run ends, fails, or needs more rows or packet slots; all
    state lives in the records, so a call resumes where the previous one returned.

    ``cf`` is the :class:`Config`, ``state`` the one-entry array of :data:`RUN` records,
    ``fab`` the :class:`Fabric`, ``rs`` the :class:`Routers`, ``ends`` the :class:`Ends`,
    ``pk`` the :class:`Packets`, ``a`` the :class:`Scratch`; returns a status (``DONE``,
    ``NEED_ROWS``, ``NEED_PACKETS`` or a failure)."""
    run = state[0]
    n, V, D, L = cf.n, cf.vcs, cf.depth, cf.packet_length
    R, Pm = cf.routers, cf.max_ports
    warmup, quota = cf.warmup, cf.quota
    end_window = warmup + cf.measure
    EJ = cf.ej_cap
    cap = pk.src.size
    rows = traffic.create.shape[0]
    Qm = rs.qcount.size // (R * Pm)
    # The record's arrays the loop uses most, by their short names.
    qbuf, qroute, qhead, qcount = rs.qbuf, rs.qroute, rs.qhead, rs.qcount
    credit, busy, claim, out_flit, in_credit = rs.credit, rs.busy, rs.claim, rs.out_flit, \
        rs.in_credit
    inject, credits_out = a.inject, a.credits_out
    elig, qout, match_q, match_o = a.elig, a.qout, a.match_q, a.match_o
    waitv, wlist = a.waitv, a.wlist
    while not run.done:
        t = run.cycle
        if t >= cf.max_cycles:
            return MAX_CYCLES
        row = t - run.row_base
        if row >= rows:
            return NEED_ROWS
        if run.creating and run.packets + n > cap:
            return NEED_PACKETS
        cur = run.parity
        nxt = 1 - cur
        # ---- endpoints (Endpoints.step) ----
        # Each endpoint's ejector, then each source; one pass each, since no endpoint's
        # step reads another's state of the same phase.
        window = quota > 0 or (warmup <= t < end_window)
        moved = False
        for e in range(n):
            credits_out[e] = ends.credit_pending[e]
            ends.credit_pending[e] = 0
            code = out_flit[cur, fab.ep_out[e]]
            if code >= 0:
                moved = True
                st = _check(cf, run, pk, ends, e, code, t)
                if st != DONE:
                    return st
                if window:
                    run.ejected_in_window += 1
                    ends.ej_per_port[e] += 1
                c = ends.ej_count[e]
                if c >= EJ:
                    run.err_at = e
                    return OVERFLOW
                w = (ends.ej_head[e] + c) % EJ
                ends.ej_ready[e, w] = t + 1
                ends.ej_vc[e, w] = pk.vc[_packet(code)]
                ends.ej_count[e] = c + 1
                run.ej_total += 1
            if ends.ej_count[e] == 0:
                continue
            h = ends.ej_head[e]
            if ends.ej_ready[e, h] <= t and traffic.drain[row, e]:
                ends.credit_pending[e] = 1 << ends.ej_vc[e, h]
                ends.ej_head[e] = h + 1 if h + 1 < EJ else 0
                ends.ej_count[e] -= 1
                run.ej_total -= 1
        # Phase control.
        if quota > 0:
            if run.creating and run.measured_outstanding == 0:
                least = ends.created[0]
                for s in range(1, n):
                    least = min(least, ends.created[s])
                if least >= quota:
                    run.creating = 0
        elif run.creating and t >= end_window and (
                run.measured_outstanding == 0 or t >= end_window + cf.drain):
            run.creating = 0
            run.saturated = 1 if run.measured_outstanding > 0 else 0
        creating = run.creating
        any_current = False
        for s in range(n):
            # Creation (packet slots are numbered in creation order).
            if creating and traffic.create[row, s] and not (quota and ends.created[s] >= quota):
                ends.created[s] += 1
                g = run.packets
                run.packets = g + 1
                pk.src[g] = s
                pk.dest[g] = traffic.dest[row, s]
                pk.vc[g] = traffic.vc[row, s]
                pk.pid[g] = ends.next_pid[s]
                ends.next_pid[s] = (ends.next_pid[s] + 1) & cf.pid_mask
                pk.created[g] = t
                pk.injected[g] = -1
                pk.next[g] = 0
                pk.sent[g] = 0
                pk.measured[g] = 1 if window else 0
                pk.state[g] = QUEUED
                pk.src_next[g] = -1
                pk.flow_next[g] = -1
                if ends.queue_tail[s] >= 0:
                    pk.src_next[ends.queue_tail[s]] = g
                else:
                    ends.queue_head[s] = g
                ends.queue_tail[s] = g
                if window:
                    run.measured_created += 1
                    run.measured_outstanding += 1
                    run.created_flits_in_window += L
            # Injection, on the credits held before this cycle's returns.
            inject[s] = -1
            g = ends.current[s]
            send = True
            if g < 0:
                if not creating or ends.queue_head[s] < 0:
                    send = False
                else:
                    g = ends.queue_head[s]
                    v = pk.vc[g]
                    if ends.credit[s, v] == 0:
                        send = False
                    else:
                        ends.queue_head[s] = pk.src_next[g]
                        if ends.queue_head[s] < 0:
                            ends.queue_tail[s] = -1
                        ends.current[s] = g
                        pk.injected[g] = t
                        pk.state[g] = IN_FLIGHT
                        run.in_flight += 1
                        f = (s * n + pk.dest[g]) * V + v
                        if ends.flow_tail[f] >= 0:
                            pk.flow_next[ends.flow_tail[f]] = g
                        else:
                            ends.flow_head[f] = g
                        ends.flow_tail[f] = g
            else:
                v = pk.vc[g]
                if ends.credit[s, v] == 0:
                    any_current = True
                    send = False
            if send:
                idx = pk.sent[g]
                inject[s] = g * 64 + idx
                ends.credit[s, v] -= 1
                pk.sent[g] = idx + 1
                moved = True
                if idx + 1 == L:
                    ends.current[s] = -1
                else:
                    any_current = True
            # Credits returned this cycle.
            pulses = in_credit[cur, fab.ep_in[s]]
            if pulses:
                for v in range(V):
                    if pulses >> v & 1:
                        ends.credit[s, v] += 1
        # Watchdog and end of run.
        busy_eps = run.in_flight > 0 or run.ej_total > 0
        if moved or not busy_eps:
            run.idle_cycles = 0
        else:
            run.idle_cycles += 1
            if run.idle_cycles >= cf.watchdog:
                return DEADLOCK
        if not creating and not busy_eps and not any_current:
            pending = False
            for e in range(n):
                if ends.credit_pending[e]:
                    pending = True
                    break
            if not pending:
                run.done = 1
        run.cycle = t + 1
        # ---- network (NetworkModel.step) ----
        for r in range(R):
            P = fab.ports[r]
            Q = fab.q_n[r]
            base = r * Pm
            for i in range(P):
                if out_flit[cur, base + i] >= 0:
                    rs.sent[base + i] += 1      # the output register is valid
                out_flit[nxt, base + i] = -1
                in_credit[nxt, base + i] = 0
                match_o[i] = -1
            nw = 0
            if rs.occ[r] > 0:
                # Eligibility of every queue (RouterModel._eligible).
                any_elig = 0
                starved = 0     # outputs a queue head waits at for a credit
                for i in range(P):
                    if rs.in_occ[base + i] == 0:
                        continue
                    qb = (base + i) * Qm
                    for q in range(Q):
                        elig[i, q] = False
                        qid = qb + q
                        if qcount[qid] == 0:
                            continue
                        slot = qid * D + qhead[qid]
                        code = qbuf[slot]
                        v = fab.q_vc[r, q]
                        o = fab.q_fixed[r, q] if fab.q_fixed[r, q] >= 0 else qroute[slot]
                        qout[i, q] = o
                        co = (base + o) * V + v
                        if credit[co] == 0:
                            starved |= 1 << o
                        if _index(code) == 0:
                            # A head flit waits while its VC is held or out of credits.
                            if busy[co] or credit[co] == 0:
                                w = o * V + v
                                if waitv[w] == 0:
                                    wlist[nw] = w
                                    nw += 1
                                waitv[w] |= 1 << i
                                continue
                            if claim[co] >= 0 and claim[co] != i:
                                continue
                        if credit[co] > 0:
                            elig[i, q] = True
                            any_elig |= 1 << i
                if any_elig:
                    if cf.islip:
                        _islip(cf.iterations, rs.arb, r, P, Q, any_elig, a)
                    else:
                        _separable(cf.iterations, rs.arb, r, P, Q, any_elig, a)
                # Counters (RouterModel._count): credit stalls, blocked inputs.
                won = 0
                for i in range(P):
                    if match_o[i] >= 0:
                        won |= 1 << match_o[i]
                    elif rs.in_occ[base + i] > 0:
                        rs.blocked[base + i] += 1
                starved &= ~won
                for o in range(P):
                    if starved >> o & 1:
                        rs.credit_stalls[base + o] += 1
            # Dequeue the winners into the output registers, credits back upstream; spend
            # the output credit, hold or free the output VC.
            for i in range(P):
                o = match_o[i]
                if o < 0:
                    continue
                q = match_q[i]
                v = fab.q_vc[r, q]
                qid = (base + i) * Qm + q
                h = qhead[qid]
                code = qbuf[qid * D + h]
                qhead[qid] = h + 1 if h + 1 < D else 0
                qcount[qid] -= 1
                rs.in_occ[base + i] -= 1
                rs.occ[r] -= 1
                out_flit[nxt, base + o] = code
                in_credit[nxt, base + i] = 1 << v
                co = (base + o) * V + v
                credit[co] -= 1
                idx = _index(code)
                first = idx == 0
                last = idx == L - 1
                if first:
                    claim[co] = -1
                    if not last:
                        busy[co] = True
                elif last:
                    busy[co] = False
            # An output VC without a claim is claimed by one of the inputs waiting (with
            # one VC a router has no claims).
            for k in range(nw):
                w = wlist[k]
                co = base * V + w
                if V > 1 and claim[co] < 0:
                    i = _rr_bits(waitv[w], rs.claim_ptr[co])
                    claim[co] = i
                    rs.claim_ptr[co] = i + 1
                waitv[w] = 0
            for i in range(P):
                # Credits returned by the downstream side of output i.
                k = fab.cr_kind[r, i]
                if k != 0:
                    pulses = credits_out[fab.cr_idx[r, i]] if k == 1 \
                        else in_credit[cur, fab.cr_idx[r, i]]
                    if pulses:
                        for v in range(V):
                            if pulses >> v & 1:
                                credit[(base + i) * V + v] += 1
                # Arrival at input i: route lookup on the head, then into the queue.
                k = fab.in_kind[r, i]
                if k == 0:
                    continue
                code = inject[fab.in_idx[r, i]] if k == 1 else out_flit[cur, fab.in_idx[r, i]]
                if code < 0:
                    continue
                g = _packet(code)
                v = pk.vc[g]
                if _index(code) == 0:
                    route = rs.table[r, pk.dest[g]]
                    if fab.in_spread[r, route]:
                        turn = rs.turn[r, i]
                        route = fab.spread[r, turn]
                        rs.turn[r, i] = turn + 1 if turn + 1 < fab.spread_len[r] else 0
                    rs.held[r, i, v] = route
                else:
                    route = rs.held[r, i, v]
                q = fab.q_of[r, v, route]
                qid = (base + i) * Qm + q
                c = qcount[qid]
                if c >= D:
                    run.err_at = r
                    return OVERFLOW
                w = qhead[qid] + c
                if w >= D:
                    w -= D
                qbuf[qid * D + w] = code
                qroute[qid * D + w] = route
                qcount[qid] = c + 1
                rs.in_occ[base + i] += 1
                rs.occ[r] += 1
        run.parity = nxt
        p = run.next_write
        while p < writes.cycle.size and writes.cycle[p] <= t:
            if writes.cycle[p] == t:
                rs.table[0, writes.dest[p]] = writes.port[p]
            p += 1
        run.next_write = p
    return DONE


class EngineNetwork:
    """The static description of a network in the arrays the compiled loop reads
    (:attr:`fabric`, a :class:`Fabric`), and its parameters.

    Parameters
    ----------
    network : NetworkModel
        A freshly built network of :class:`~supernode.fabric.network.model.RouterModel` (its
        routers' parameters, routing tables, spread ports and links are read from it).
    """

    def __init__(self, network: NetworkModel) -> None:
        routers = network.routers
        first = routers[0]
        for r in routers:
            if (r.V, r.D, r.voq, r.allocator, r.iterations) != \
                    (first.V, first.D, first.voq, first.allocator, first.iterations):
                raise ValueError("the compiled engine needs every router of a network to "
                                 "share vcs, buffer_depth, voq, allocator and iterations")
        self.R = R = len(routers)
        self.Pm = Pm = max(r.P for r in routers)
        if Pm > ENGINE_MAX_PORTS:
            raise ValueError(f"the compiled engine takes routers of at most "
                             f"{ENGINE_MAX_PORTS} ports, not {Pm}; run the Python model")
        self.V = V = first.V
        self.D = first.D
        self.voq, self.islip, self.iterations = first.voq, first.allocator == "islip", \
            first.iterations
        # The routers' queue numbering (``RouterParams.queues``), as tables: per queue its
        # VC and fixed output (-1: none), per (VC, route) the queue a flit enters.
        self.Qm = Qm = max(r.Q for r in routers)
        q_vc = np.zeros((R, Qm), dtype=np.int64)
        q_fixed = np.full((R, Qm), -1, dtype=np.int64)
        q_of = np.zeros((R, V, Pm), dtype=np.int64)
        for k, r in enumerate(routers):
            for q, (v, fixed) in enumerate(r.params.queues):
                q_vc[k, q] = v
                if fixed is not None:
                    q_fixed[k, q] = fixed
            for v in range(V):
                for route in range(r.P):
                    q_of[k, v, route] = r.params.queue_of(v, route)
        self.n = len(network.endpoints)
        dests = max(len(r.table) for r in routers)
        #: The routing tables as built (each run writes into a copy).
        self.table = np.zeros((R, dests), dtype=np.int64)
        spread = np.zeros((R, Pm), dtype=np.int64)
        spread_len = np.zeros(R, dtype=np.int64)
        in_spread = np.zeros((R, Pm), dtype=np.bool_)
        for k, r in enumerate(routers):
            self.table[k, :len(r.table)] = r.table
            spread[k, :len(r.spread)] = r.spread
            spread_len[k] = len(r.spread)
            for p in r.spread:
                in_spread[k, p] = True
        # Where each input's flits and each output's credits come from.
        in_kind, in_idx, cr_kind, cr_idx = (np.zeros((R, Pm), dtype=np.int64)
                                            for _ in range(4))
        for r in range(R):
            for p in range(routers[r].P):
                for kind, idx, src in ((in_kind, in_idx, network._flit_src[r][p]),
                                       (cr_kind, cr_idx, network._credit_src[r][p])):
                    if src is None:
                        continue
                    if src[0] == "e":
                        kind[r, p], idx[r, p] = 1, src[1]
                    else:
                        kind[r, p], idx[r, p] = 2, src[0] * Pm + src[1]
        self.fabric = Fabric(
            ports=np.array([r.P for r in routers], dtype=np.int64),
            spread=spread, spread_len=spread_len, in_spread=in_spread,
            q_n=np.array([r.Q for r in routers], dtype=np.int64),
            q_vc=q_vc, q_fixed=q_fixed, q_of=q_of,
            in_kind=in_kind, in_idx=in_idx, cr_kind=cr_kind, cr_idx=cr_idx,
            ep_in=np.array([ri * Pm + pi for (ri, pi), _ in network.endpoints],
                           dtype=np.int64),
            ep_out=np.array([ro * Pm + po for _, (ro, po) in network.endpoints],
                            dtype=np.int64))
        self.ports = self.fabric.ports
        self.destinations = len(routers[0].table)
        self.names = list(network.names)
        self.stats = [r.counters is not None for r in routers]
        self.stats_width = first.params.STATS_WIDTH


class _State:
    """The records the compiled loop reads and writes, made for one run."""

    def __init__(self, net: EngineNetwork, eps, max_cycles, cfg_writes):
        spec = eps.spec
        n, V, D, R, Pm, Qm = net.n, net.V, net.D, net.R, net.Pm, net.Qm
        last = {}
        for c, d, p in cfg_writes:
            last[c] = (d, p)
        cycles = sorted(c for c in last if c >= 0)
        self.writes = TableWrites(cycle=np.array(cycles, dtype=np.int64),
                                  dest=np.array([last[c][0] for c in cycles], dtype=np.int64),
                                  port=np.array([last[c][1] for c in cycles], dtype=np.int64))
        ej_cap = V * D
        self.cf = Config(
            n=n, vcs=V, depth=D, packet_length=spec.packet_length, warmup=spec.warmup,
            measure=spec.measure, drain=spec.drain, watchdog=spec.watchdog,
            ordered=int(spec.ordered), quota=spec.packets_per_source, routers=R,
            max_ports=Pm, islip=int(net.islip), iterations=net.iterations,
            max_cycles=max_cycles, ej_cap=ej_cap, pid_mask=eps.packet_id_mask)
        self.state = np.zeros(1, dtype=RUN)
        self.run = run = self.state[0]
        run["creating"] = 1
        run["last_delivery"] = -1
        for name in ("err_at", "err_packet", "err_flit", "err_other"):
            run[name] = -1
        # Two halves of the double-buffered registers.
        out_flit = np.full((2, R * Pm), -1, dtype=np.int64)
        self.routers = Routers(
            table=net.table.copy(),
            qbuf=np.zeros(R * Pm * Qm * D, dtype=np.int64),
            qroute=np.zeros(R * Pm * Qm * D, dtype=np.int64),
            qhead=np.zeros(R * Pm * Qm, dtype=np.int64),
            qcount=np.zeros(R * Pm * Qm, dtype=np.int64),
            held=np.zeros((R, Pm, V), dtype=np.int64),
            turn=np.zeros((R, Pm), dtype=np.int64),
            credit=np.full(R * Pm * V, D, dtype=np.int64),
            busy=np.zeros(R * Pm * V, dtype=np.bool_),
            claim=np.full(R * Pm * V, -1, dtype=np.int64),
            claim_ptr=np.zeros(R * Pm * V, dtype=np.int64),
            arb=np.zeros((R, max(3, 2 * net.iterations), Pm), dtype=np.int64),
            sent=np.zeros(R * Pm, dtype=np.int64),
            credit_stalls=np.zeros(R * Pm, dtype=np.int64),
            blocked=np.zeros(R * Pm, dtype=np.int64),
            out_flit=out_flit,
            in_credit=np.zeros((2, R * Pm), dtype=np.int64),
            occ=np.zeros(R, dtype=np.int64),
            in_occ=np.zeros(R * Pm, dtype=np.int64))
        self.ends = Ends(
            credit=np.full((n, V), eps.depth, dtype=np.int64),
            current=np.full(n, -1, dtype=np.int64),
            queue_head=np.full(n, -1, dtype=np.int64),
            queue_tail=np.full(n, -1, dtype=np.int64),
            created=np.zeros(n, dtype=np.int64),
            next_pid=np.zeros(n, dtype=np.int64),
            credit_pending=np.zeros(n, dtype=np.int64),
            ej_ready=np.zeros((n, ej_cap), dtype=np.int64),
            ej_vc=np.zeros((n, ej_cap), dtype=np.int64),
            ej_head=np.zeros(n, dtype=np.int64),
            ej_count=np.zeros(n, dtype=np.int64),
            ej_per_port=np.zeros(n, dtype=np.int64),
            held=np.zeros(n, dtype=np.int64),
            flow_head=np.full(n * n * V, -1, dtype=np.int64),
            flow_tail=np.full(n * n * V, -1, dtype=np.int64))
        # Packet slots: what the run is expected to create (it grows them if not enough).
        if spec.packets_per_source:
            cap = n * spec.packets_per_source + n
        else:
            rate = spec.load / spec.packet_length
            cap = int(1.1 * rate * n * (spec.warmup + spec.measure)) + 4 * n
        self.packets = Packets.empty(cap)
        self.scratch = Scratch.make(n, Pm, Qm, V)

    def grow_packets(self):
        self.packets = self.packets.grown()

    def call(self, net, rows):
        return _kernel(self.cf, self.state, Traffic(*rows), net.fabric, self.routers,
                       self.ends, self.packets, self.writes, self.scratch)


#: Blocks of the traffic schedule handed to the compiled loop per call after the first
#: (which covers the warm-up and measurement windows and one block more).
WINDOW_BLOCKS = 2


# ``eps`` is a traffic.Endpoints, typed Any here: traffic imports this module on first use.
def simulate(network: "NetworkModel | EngineNetwork", eps: Any, *, max_cycles: int = 10_000_000,
             cfg_writes: Iterable[tuple[int, int, int]] = ()) -> dict:
    """Run ``network`` under the endpoints ``eps`` in the compiled loop.

    The result is the dict :meth:`Endpoints.result` gives for the same run of the Python
    model (``eps`` is filled with the run's statistics, then asked for it), and a failure
    raises the same exception as the Python model, with the same message.

    Parameters
    ----------
    network : NetworkModel or EngineNetwork
        A fresh network (its routers' state is not read, only their parameters).
    eps : Endpoints
        Fresh endpoints: the spec, the traffic schedule and the zero-load function.
    max_cycles : int
        The run fails (:class:`DeadlockError`) if it has not ended by then.
    cfg_writes : sequence of (cycle, dest, port)
        Routing-table writes into router 0 at the end of the given cycles.
    """
    net = network if isinstance(network, EngineNetwork) else EngineNetwork(network)
    if (eps.n, eps.vcs) != (net.n, net.V):
        raise ValueError(f"the endpoints ({eps.n} with {eps.vcs} VCs) do not fit the "
                         f"network ({net.n} with {net.V} VCs)")
    check_cfg_writes(cfg_writes, destinations=net.destinations, ports=int(net.ports[0]))
    st = _State(net, eps, max_cycles, cfg_writes)
    schedule = eps.schedule
    block = schedule.BLOCK
    spec = eps.spec
    rows = schedule.window(0, (spec.warmup + spec.measure) // block + 2)
    while True:
        status = st.call(net, rows)
        if status == DONE:
            break
        if status == NEED_ROWS:
            b = int(st.run["cycle"]) // block
            st.run["row_base"] = b * block
            rows = schedule.window(b, WINDOW_BLOCKS)
        elif status == NEED_PACKETS:
            st.grow_packets()
        else:
            raise _failure(status, st, eps, max_cycles)
    _fill(eps, st)
    result = eps.result()
    stats = _router_stats(net, st)
    if stats:
        result["router_stats"] = stats
    return result


def _router_stats(net, st):
    """The counters of the routers built with ``stats=True`` (``NetworkModel.router_stats``)."""
    wrap = (1 << net.stats_width) - 1
    out = {}
    for r, name in enumerate(net.names):
        if net.stats[r]:
            P, base = int(net.ports[r]), r * net.Pm
            out[name] = {counter: [int(c) & wrap
                                   for c in getattr(st.routers, counter)[base:base + P]]
                         for counter in STATS_COUNTERS}
    return out


def _failure(status, st, eps, max_cycles):
    """The exception the Python endpoints raise for the same failure."""
    run = st.run
    t = int(run["cycle"])
    if status == MAX_CYCLES:
        return DeadlockError(f"the run did not end within {max_cycles} cycles")
    if status == DEADLOCK:
        return DeadlockError(
            f"watchdog: no flit moved for {eps.spec.watchdog} cycles (cycle {t}) with "
            f"{int(run['in_flight'])} packets in flight; the network is deadlocked "
            f"or an ejector is stuck")
    if status == OVERFLOW:
        return RuntimeError(f"compiled engine: a buffer overflowed at cycle {t} (a credit "
                            f"was returned twice); the Python model shows where")
    e, g, idx, other = (int(run[f]) for f in ("err_at", "err_packet", "err_flit", "err_other"))
    pk = st.packets
    src, dest, vc, pid = (int(pk.src[g]), int(pk.dest[g]), int(pk.vc[g]), int(pk.pid[g]))
    where = f"at cycle {t}, output port {e}"
    if status == UNKNOWN:
        return ScoreboardError(f"unknown flit from source {src} packet {pid} {where} "
                               f"(corrupted header)")
    if status == DUPLICATE:
        return ScoreboardError(f"duplicate: packet {pid} of source {src} arrived again "
                               f"{where}")
    if status == MISROUTE:
        return ScoreboardError(f"misroute: packet {pid} from {src} to {dest} left the "
                               f"network {where}")
    if status == CORRUPT:
        L = eps.spec.packet_length
        flit = Flit(int(idx == 0), int(idx == L - 1), vc, dest, src, pid,
                    flit_data(src, pid, idx, eps.flit_width))
        return ScoreboardError(f"corrupt or reordered flit {int(pk.next[g])} of packet "
                               f"{pid} from {src} to {dest} {where}: got {flit}")
    return ScoreboardError(f"reorder: packet {pid} of flow {src}->{dest} VC {vc} arrived "
                           f"before packet {int(pk.pid[other])} {where}")


def _fill(eps, st):
    """Put the run's statistics into the endpoints object, as its own run would."""
    run, pk, ends = st.run, st.packets, st.ends
    m = pk.measured_order[:run["n_measured"]]
    released = pk.released[m]
    latency = released - pk.created[m]
    eps.latencies = latency.tolist()
    eps.network_latencies = (released - pk.injected[m]).tolist()
    if eps.zero_load is not None and m.size:
        n, L = eps.n, eps.spec.packet_length
        pairs, inverse = np.unique(pk.src[m] * n + pk.dest[m], return_inverse=True)
        zero = np.array([eps.zero_load(int(p) // n, int(p) % n, L) for p in pairs],
                        dtype=np.int64)[inverse]
        excess = latency - zero
        eps.hops_latency = excess.tolist()
        eps.min_excess = {int(z): int(excess[zero == z].min()) for z in np.unique(zero)}
    eps.cycle = int(run["cycle"])
    for name in ("idle_cycles", "measured_created", "measured_outstanding",
                 "ejected_in_window", "created_flits_in_window", "flits_moved",
                 "packets_delivered", "held_packets", "held_max"):
        setattr(eps, name, int(run[name]))
    eps.last_delivery = None if run["last_delivery"] < 0 else int(run["last_delivery"])
    for name in ("creating", "saturated", "done"):
        setattr(eps, name, bool(run[name]))
    eps.ejected_per_port = ends.ej_per_port.tolist()
    eps.created_count = ends.created.tolist()
    eps.next_pkt = ends.next_pid.tolist()
