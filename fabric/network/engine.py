"""Compiled (numba) cycle-exact simulation of a router network and its endpoints in one loop."""

import numpy as np
from numba import njit

from .checks import DeadlockError, ScoreboardError, check_cfg_writes
from .flit import Flit, flit_data
from .model import STATS_COUNTERS

__all__ = ["simulate", "EngineNetwork", "ENGINE_MAX_PORTS"]

#: Largest router radix the compiled loop takes: it keeps a router's requesters (inputs,
#: outputs) as bits of one 64-bit word. Larger routers run on the Python reference.
ENGINE_MAX_PORTS = 63

# Status of a kernel call: finished, needs more input, or one of the failures.
DONE, NEED_ROWS, NEED_PACKETS, MAX_CYCLES, DEADLOCK, UNKNOWN, DUPLICATE, MISROUTE, \
    CORRUPT, REORDER, OVERFLOW = range(11)

# Integer configuration (cf).
(C_N, C_V, C_D, C_LEN, C_WARMUP, C_MEASURE, C_DRAIN, C_WATCHDOG, C_ORDERED, C_QUOTA,
 C_R, C_PM, C_VOQ, C_ISLIP, C_ITER, C_MAXCYC, C_EJCAP, C_NCFG, C_PIDMASK) = range(19)
# Scalar state (sc).
(S_T, S_IDLE, S_CREATING, S_SATURATED, S_MEAS_CREATED, S_MEAS_OUT, S_EJ_WIN, S_FLITS_WIN,
 S_FLITS, S_DELIVERED, S_LAST, S_NPKTS, S_IN_FLIGHT, S_EJ_TOTAL, S_HELD, S_HELD_MAX,
 S_NMEAS, S_CFG_PTR, S_PARITY, S_BASE, S_DONE) = range(21)
# Fields of the packet table (pk[field, packet]); a packet's index is its creation order.
(P_SRC, P_DEST, P_VC, P_PID, P_CREATED, P_INJECTED, P_NEXT, P_SENT, P_MEASURED, P_STATE,
 P_SRC_NEXT, P_FLOW_NEXT, P_RELEASED) = range(13)
N_FIELDS = 13
# Packet states.
QUEUED, IN_FLIGHT, ARRIVED, RELEASED = range(4)


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
def _release(sc, pk, meas, g, t):
    sc[S_DELIVERED] += 1
    sc[S_LAST] = t
    pk[P_STATE, g] = RELEASED
    pk[P_RELEASED, g] = t
    if pk[P_MEASURED, g]:
        sc[S_MEAS_OUT] -= 1
        meas[sc[S_NMEAS]] = g
        sc[S_NMEAS] += 1


@njit(cache=True, inline="always", error_model="numpy")
def _pop_flow(pk, flow_head, flow_tail, f, g):
    nxt = pk[P_FLOW_NEXT, g]
    flow_head[f] = nxt
    if nxt < 0:
        flow_tail[f] = -1


@njit(cache=True, inline="always", error_model="numpy")
def _check(cf, sc, err, pk, meas, flow_head, flow_tail, held_cnt, e, code, t):
    """The scoreboard on one ejected flit (``Endpoints._check``); returns a status."""
    n, V, L = cf[C_N], cf[C_V], cf[C_LEN]
    g = code >> 6
    idx = code & 63
    err[0] = e
    err[1] = g
    err[2] = idx
    st = pk[P_STATE, g]
    if st != IN_FLIGHT:
        return DUPLICATE if st >= ARRIVED else UNKNOWN
    if pk[P_DEST, g] != e:
        return MISROUTE
    if idx != pk[P_NEXT, g]:
        return CORRUPT
    f = (pk[P_SRC, g] * n + pk[P_DEST, g]) * V + pk[P_VC, g]
    ordered = cf[C_ORDERED]
    if idx == 0 and ordered:
        if flow_head[f] != g:
            err[3] = flow_head[f]
            return REORDER
        _pop_flow(pk, flow_head, flow_tail, f, g)
    pk[P_NEXT, g] = idx + 1
    sc[S_FLITS] += 1
    if idx + 1 < L:
        return DONE
    sc[S_IN_FLIGHT] -= 1
    pk[P_STATE, g] = ARRIVED
    if ordered:
        _release(sc, pk, meas, g, t)
        return DONE
    # Resequencing: release the flow's packets in order, as far as they are in.
    if flow_head[f] != g:
        held_cnt[e] += 1
        sc[S_HELD] += 1
        if held_cnt[e] > sc[S_HELD_MAX]:
            sc[S_HELD_MAX] = held_cnt[e]
        return DONE
    _pop_flow(pk, flow_head, flow_tail, f, g)
    _release(sc, pk, meas, g, t)
    h = flow_head[f]
    while h >= 0 and pk[P_STATE, h] == ARRIVED:
        _pop_flow(pk, flow_head, flow_tail, f, h)
        held_cnt[e] -= 1
        _release(sc, pk, meas, h, t)
        h = flow_head[f]
    return DONE


@njit(cache=True, inline="always", error_model="numpy")
def _pick_queue(elig, qout, i, Q, o, ptr):
    """Round-robin over the eligible queues of input ``i`` (that go to ``o`` when
    ``o >= 0``): the first at or after ``ptr``, else the first."""
    first = -1
    for q in range(Q):
        if elig[i, q] and (o < 0 or qout[i, q] == o):
            if q >= ptr:
                return q
            if first < 0:
                first = q
    return first


@njit(cache=True, inline="always", error_model="numpy")
def _separable(cf, r, P, Q, any_elig, elig, qout, arb, match_q, match_o, scr):
    """Input-first separable allocation, iterated (``RouterModel._separable``);
    arb[r, 2 * k] are iteration k's input arbiters' pointers, arb[r, 2 * k + 1] its
    output arbiters'."""
    # scr[0]: per output, the inputs that want it; scr[1]: per input, its picked queue.
    matched_in = 0
    matched_out = 0
    n = 0
    for k in range(cf[C_ITER]):
        for i in range(P):
            scr[0, i] = 0
        wants = False
        for i in range(P):
            if not (any_elig & ~matched_in) >> i & 1:
                continue
            q = _pick_free(elig, qout, i, Q, matched_out, arb[r, 2 * k, i])
            if q < 0:
                continue
            scr[1, i] = q
            scr[0, qout[i, q]] |= 1 << i
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
def _pick_free(elig, qout, i, Q, matched_out, ptr):
    """Round-robin over the eligible queues of input ``i`` whose output is not in
    ``matched_out``: the first at or after ``ptr``, else the first (-1: none)."""
    first = -1
    for q in range(Q):
        if elig[i, q] and not matched_out >> qout[i, q] & 1:
            if q >= ptr:
                return q
            if first < 0:
                first = q
    return first


@njit(cache=True, inline="always", error_model="numpy")
def _islip(cf, r, P, Q, any_elig, elig, qout, arb, match_q, match_o, scr):
    """iSLIP (``RouterModel._islip``); arb[r, 0] are the queue arbiters' pointers,
    arb[r, 1] the grant arbiters', arb[r, 2] the accept arbiters'."""
    # scr[0]: per output, the requesting inputs; scr[1]: per output, the input it
    # granted; scr[2]: per input, the granting outputs; scr[3]: per input, the output it
    # accepted in the first iteration (its pointers move on those).
    for i in range(P):
        scr[0, i] = 0
        scr[3, i] = -1
    for i in range(P):
        if not any_elig >> i & 1:
            continue
        for q in range(Q):
            if elig[i, q]:
                scr[0, qout[i, q]] |= 1 << i
    matched_in = 0
    matched_out = 0
    for k in range(cf[C_ITER]):
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
        q = _pick_queue(elig, qout, i, Q, o, arb[r, 0, i])
        arb[r, 0, i] = q + 1
        match_q[i] = q
        n += 1
    return n


@njit(cache=True, error_model="numpy")
def _kernel(cf, sc, err, create, sdest, svc, sdrain, r_ports, table, spread, spread_len,
            in_spread, q_n, q_vc, q_fixed, q_of, in_kind, in_idx, cr_kind, cr_idx, ep_in, ep_out, qbuf, qroute, qhead,
            qcount, held, turn, credit, busy, claim, arb, counters, out_flit, in_credit, occ, in_occ, cfg_t, cfg_d,
            cfg_p, ep_credit, current, srcq_head, srcq_tail, created_count, next_pid,
            credit_pending, ej_ready, ej_vc, ej_head, ej_count, ej_per_port, held_cnt, pk,
            meas, flow_head, flow_tail):
    """Run cycles until the run ends, fails, or needs more rows or packet slots; all
    state lives in the arrays, so a call resumes where the previous one returned."""
    n, V, D, L = cf[C_N], cf[C_V], cf[C_D], cf[C_LEN]
    R, Pm = cf[C_R], cf[C_PM]
    warmup, measure, quota = cf[C_WARMUP], cf[C_MEASURE], cf[C_QUOTA]
    end_window = warmup + measure
    EJ = cf[C_EJCAP]
    cap = pk.shape[1]
    rows = create.shape[0]
    Qm = qcount.size // (R * Pm)
    credits_out = np.zeros(n, dtype=np.int64)
    inject = np.full(n, -1, dtype=np.int64)
    elig = np.zeros((Pm, Qm), dtype=np.bool_)
    qout = np.zeros((Pm, Qm), dtype=np.int64)
    match_q = np.zeros(Pm, dtype=np.int64)
    match_o = np.zeros(Pm, dtype=np.int64)
    scr = np.zeros((4, Pm), dtype=np.int64)
    # Per (output, vc) of the router in hand: the inputs whose head flits find it held.
    waitv = np.zeros(Pm * V, dtype=np.int64)
    wlist = np.zeros(Pm * V, dtype=np.int64)
    while not sc[S_DONE]:
        t = sc[S_T]
        if t >= cf[C_MAXCYC]:
            return MAX_CYCLES
        row = t - sc[S_BASE]
        if row >= rows:
            return NEED_ROWS
        if sc[S_CREATING] and sc[S_NPKTS] + n > cap:
            return NEED_PACKETS
        cur = sc[S_PARITY]
        nxt = 1 - cur
        # ---- endpoints (Endpoints.step) ----
        # Each endpoint's ejector, then each source; one pass each, since no endpoint's
        # step reads another's state of the same phase.
        window = quota > 0 or (warmup <= t < end_window)
        moved = False
        for e in range(n):
            credits_out[e] = credit_pending[e]
            credit_pending[e] = 0
            code = out_flit[cur, ep_out[e]]
            if code >= 0:
                moved = True
                st = _check(cf, sc, err, pk, meas, flow_head, flow_tail, held_cnt, e, code, t)
                if st != DONE:
                    return st
                if window:
                    sc[S_EJ_WIN] += 1
                    ej_per_port[e] += 1
                c = ej_count[e]
                if c >= EJ:
                    err[0] = e
                    return OVERFLOW
                w = (ej_head[e] + c) % EJ
                ej_ready[e, w] = t + 1
                ej_vc[e, w] = pk[P_VC, code >> 6]
                ej_count[e] = c + 1
                sc[S_EJ_TOTAL] += 1
            if ej_count[e] == 0:
                continue
            h = ej_head[e]
            if ej_ready[e, h] <= t and sdrain[row, e]:
                credit_pending[e] = 1 << ej_vc[e, h]
                ej_head[e] = h + 1 if h + 1 < EJ else 0
                ej_count[e] -= 1
                sc[S_EJ_TOTAL] -= 1
        # Phase control.
        if quota > 0:
            if sc[S_CREATING] and sc[S_MEAS_OUT] == 0:
                least = created_count[0]
                for s in range(1, n):
                    least = min(least, created_count[s])
                if least >= quota:
                    sc[S_CREATING] = 0
        elif sc[S_CREATING] and t >= end_window and (
                sc[S_MEAS_OUT] == 0 or t >= end_window + cf[C_DRAIN]):
            sc[S_CREATING] = 0
            sc[S_SATURATED] = 1 if sc[S_MEAS_OUT] > 0 else 0
        creating = sc[S_CREATING]
        any_current = False
        for s in range(n):
            # Creation (packet slots are numbered in creation order).
            if creating and create[row, s] and not (quota and created_count[s] >= quota):
                created_count[s] += 1
                g = sc[S_NPKTS]
                sc[S_NPKTS] = g + 1
                pk[P_SRC, g] = s
                pk[P_DEST, g] = sdest[row, s]
                pk[P_VC, g] = svc[row, s]
                pk[P_PID, g] = next_pid[s]
                next_pid[s] = (next_pid[s] + 1) & cf[C_PIDMASK]
                pk[P_CREATED, g] = t
                pk[P_INJECTED, g] = -1
                pk[P_NEXT, g] = 0
                pk[P_SENT, g] = 0
                pk[P_MEASURED, g] = 1 if window else 0
                pk[P_STATE, g] = QUEUED
                pk[P_SRC_NEXT, g] = -1
                pk[P_FLOW_NEXT, g] = -1
                if srcq_tail[s] >= 0:
                    pk[P_SRC_NEXT, srcq_tail[s]] = g
                else:
                    srcq_head[s] = g
                srcq_tail[s] = g
                if window:
                    sc[S_MEAS_CREATED] += 1
                    sc[S_MEAS_OUT] += 1
                    sc[S_FLITS_WIN] += L
            # Injection, on the credits held before this cycle's returns.
            inject[s] = -1
            g = current[s]
            send = True
            if g < 0:
                if not creating or srcq_head[s] < 0:
                    send = False
                else:
                    g = srcq_head[s]
                    v = pk[P_VC, g]
                    if ep_credit[s, v] == 0:
                        send = False
                    else:
                        srcq_head[s] = pk[P_SRC_NEXT, g]
                        if srcq_head[s] < 0:
                            srcq_tail[s] = -1
                        current[s] = g
                        pk[P_INJECTED, g] = t
                        pk[P_STATE, g] = IN_FLIGHT
                        sc[S_IN_FLIGHT] += 1
                        f = (s * n + pk[P_DEST, g]) * V + v
                        if flow_tail[f] >= 0:
                            pk[P_FLOW_NEXT, flow_tail[f]] = g
                        else:
                            flow_head[f] = g
                        flow_tail[f] = g
            else:
                v = pk[P_VC, g]
                if ep_credit[s, v] == 0:
                    any_current = True
                    send = False
            if send:
                idx = pk[P_SENT, g]
                inject[s] = g * 64 + idx
                ep_credit[s, v] -= 1
                pk[P_SENT, g] = idx + 1
                moved = True
                if idx + 1 == L:
                    current[s] = -1
                else:
                    any_current = True
            # Credits returned this cycle.
            pulses = in_credit[cur, ep_in[s]]
            if pulses:
                for v in range(V):
                    if pulses >> v & 1:
                        ep_credit[s, v] += 1
        # Watchdog and end of run.
        busy_eps = sc[S_IN_FLIGHT] > 0 or sc[S_EJ_TOTAL] > 0
        if moved or not busy_eps:
            sc[S_IDLE] = 0
        else:
            sc[S_IDLE] += 1
            if sc[S_IDLE] >= cf[C_WATCHDOG]:
                return DEADLOCK
        if not creating and not busy_eps and not any_current:
            pending = False
            for e in range(n):
                if credit_pending[e]:
                    pending = True
                    break
            if not pending:
                sc[S_DONE] = 1
        sc[S_T] = t + 1
        # ---- network (NetworkModel.step) ----
        for r in range(R):
            P = r_ports[r]
            Q = q_n[r]
            base = r * Pm
            for i in range(P):
                if out_flit[cur, base + i] >= 0:
                    counters[0, base + i] += 1      # sent: the output register is valid
                out_flit[nxt, base + i] = -1
                in_credit[nxt, base + i] = 0
                match_o[i] = -1
            nw = 0
            if occ[r] > 0:
                # Eligibility of every queue (RouterModel._eligible).
                any_elig = 0
                starved = 0     # outputs a queue head waits at for a credit
                for i in range(P):
                    if in_occ[base + i] == 0:
                        continue
                    qb = (base + i) * Qm
                    for q in range(Q):
                        elig[i, q] = False
                        qid = qb + q
                        if qcount[qid] == 0:
                            continue
                        slot = qid * D + qhead[qid]
                        code = qbuf[slot]
                        v = q_vc[r, q]
                        o = q_fixed[r, q] if q_fixed[r, q] >= 0 else qroute[slot]
                        qout[i, q] = o
                        co = (base + o) * V + v
                        if credit[co] == 0:
                            starved |= 1 << o
                        if (code & 63) == 0:
                            # A head flit waits while its VC is held or out of credits.
                            if busy[co] or credit[co] == 0:
                                w = o * V + v
                                if waitv[w] == 0:
                                    wlist[nw] = w
                                    nw += 1
                                waitv[w] |= 1 << i
                                continue
                            if claim[0, co] >= 0 and claim[0, co] != i:
                                continue
                        if credit[co] > 0:
                            elig[i, q] = True
                            any_elig |= 1 << i
                if any_elig:
                    if cf[C_ISLIP]:
                        _islip(cf, r, P, Q, any_elig, elig, qout, arb, match_q, match_o, scr)
                    else:
                        _separable(cf, r, P, Q, any_elig, elig, qout, arb, match_q, match_o, scr)
                # Counters (RouterModel._count): credit stalls, blocked inputs.
                won = 0
                for i in range(P):
                    if match_o[i] >= 0:
                        won |= 1 << match_o[i]
                    elif in_occ[base + i] > 0:
                        counters[2, base + i] += 1
                starved &= ~won
                for o in range(P):
                    if starved >> o & 1:
                        counters[1, base + o] += 1
            # Dequeue the winners into the output registers, credits back upstream; spend
            # the output credit, hold or free the output VC.
            for i in range(P):
                o = match_o[i]
                if o < 0:
                    continue
                q = match_q[i]
                v = q_vc[r, q]
                qid = (base + i) * Qm + q
                h = qhead[qid]
                code = qbuf[qid * D + h]
                qhead[qid] = h + 1 if h + 1 < D else 0
                qcount[qid] -= 1
                in_occ[base + i] -= 1
                occ[r] -= 1
                out_flit[nxt, base + o] = code
                in_credit[nxt, base + i] = 1 << v
                co = (base + o) * V + v
                credit[co] -= 1
                idx = code & 63
                first = idx == 0
                last = idx == L - 1
                if first:
                    claim[0, co] = -1
                    if not last:
                        busy[co] = True
                elif last:
                    busy[co] = False
            # An output VC without a claim is claimed by one of the inputs waiting (with
            # one VC a router has no claims).
            for k in range(nw):
                w = wlist[k]
                co = base * V + w
                if V > 1 and claim[0, co] < 0:
                    i = _rr_bits(waitv[w], claim[1, co])
                    claim[0, co] = i
                    claim[1, co] = i + 1
                waitv[w] = 0
            for i in range(P):
                # Credits returned by the downstream side of output i.
                k = cr_kind[r, i]
                if k != 0:
                    pulses = credits_out[cr_idx[r, i]] if k == 1 \
                        else in_credit[cur, cr_idx[r, i]]
                    if pulses:
                        for v in range(V):
                            if pulses >> v & 1:
                                credit[(base + i) * V + v] += 1
                # Arrival at input i: route lookup on the head, then into the queue.
                k = in_kind[r, i]
                if k == 0:
                    continue
                code = inject[in_idx[r, i]] if k == 1 else out_flit[cur, in_idx[r, i]]
                if code < 0:
                    continue
                g = code >> 6
                v = pk[P_VC, g]
                if (code & 63) == 0:
                    route = table[r, pk[P_DEST, g]]
                    if in_spread[r, route]:
                        route = spread[r, turn[r, i]]
                        turn[r, i] = turn[r, i] + 1 if turn[r, i] + 1 < spread_len[r] else 0
                    held[r, i, v] = route
                else:
                    route = held[r, i, v]
                q = q_of[r, v, route]
                qid = (base + i) * Qm + q
                c = qcount[qid]
                if c >= D:
                    err[0] = r
                    return OVERFLOW
                w = qhead[qid] + c
                if w >= D:
                    w -= D
                qbuf[qid * D + w] = code
                qroute[qid * D + w] = route
                qcount[qid] = c + 1
                in_occ[base + i] += 1
                occ[r] += 1
        sc[S_PARITY] = nxt
        p = sc[S_CFG_PTR]
        while p < cf[C_NCFG] and cfg_t[p] <= t:
            if cfg_t[p] == t:
                table[0, cfg_d[p]] = cfg_p[p]
            p += 1
        sc[S_CFG_PTR] = p
    return DONE


class EngineNetwork:
    """The static description of a network in the arrays the compiled loop reads.

    Parameters
    ----------
    network : NetworkModel
        A freshly built network of :class:`~supernode.fabric.network.model.RouterModel` (its
        routers' parameters, routing tables, spread ports and links are read from it).
    """

    def __init__(self, network):
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
        self.V, self.D = first.V, first.D
        self.voq, self.islip, self.iterations = first.voq, first.allocator == "islip", \
            first.iterations
        # The routers' queue numbering (``RouterParams.queues``), as tables: per queue its
        # VC and fixed output (-1: none), per (VC, route) the queue a flit enters.
        self.Qm = max(r.Q for r in routers)
        self.q_n = np.array([r.Q for r in routers], dtype=np.int64)
        self.q_vc = np.zeros((R, self.Qm), dtype=np.int64)
        self.q_fixed = np.full((R, self.Qm), -1, dtype=np.int64)
        self.q_of = np.zeros((R, self.V, Pm), dtype=np.int64)
        for k, r in enumerate(routers):
            for q, (v, fixed) in enumerate(r.params.queues):
                self.q_vc[k, q] = v
                if fixed is not None:
                    self.q_fixed[k, q] = fixed
            for v in range(self.V):
                for route in range(r.P):
                    self.q_of[k, v, route] = r.params.queue_of(v, route)
        self.n = len(network.endpoints)
        dests = max(len(r.table) for r in routers)
        self.ports = np.array([r.P for r in routers], dtype=np.int64)
        self.table = np.zeros((R, dests), dtype=np.int64)
        self.spread = np.zeros((R, Pm), dtype=np.int64)
        self.spread_len = np.zeros(R, dtype=np.int64)
        self.in_spread = np.zeros((R, Pm), dtype=np.bool_)
        for k, r in enumerate(routers):
            self.table[k, :len(r.table)] = r.table
            self.spread[k, :len(r.spread)] = r.spread
            self.spread_len[k] = len(r.spread)
            for p in r.spread:
                self.in_spread[k, p] = True
        self.in_kind = np.zeros((R, Pm), dtype=np.int64)
        self.in_idx = np.zeros((R, Pm), dtype=np.int64)
        self.cr_kind = np.zeros((R, Pm), dtype=np.int64)
        self.cr_idx = np.zeros((R, Pm), dtype=np.int64)
        for r in range(R):
            for p in range(routers[r].P):
                for kind, idx, src in ((self.in_kind, self.in_idx, network._flit_src[r][p]),
                                       (self.cr_kind, self.cr_idx,
                                        network._credit_src[r][p])):
                    if src is None:
                        continue
                    if src[0] == "e":
                        kind[r, p], idx[r, p] = 1, src[1]
                    else:
                        kind[r, p], idx[r, p] = 2, src[0] * Pm + src[1]
        self.ep_in = np.array([ri * Pm + pi for (ri, pi), _ in network.endpoints],
                              dtype=np.int64)
        self.ep_out = np.array([ro * Pm + po for _, (ro, po) in network.endpoints],
                               dtype=np.int64)
        self.destinations = len(routers[0].table)
        self.names = list(network.names)
        self.stats = [r.counters is not None for r in routers]
        self.stats_width = first.params.STATS_WIDTH


class _State:
    """Every array the compiled loop reads and writes, made for one run."""

    def __init__(self, net: EngineNetwork, eps, max_cycles, cfg_writes):
        spec = eps.spec
        n, V, D, R, Pm, Qm = net.n, net.V, net.D, net.R, net.Pm, net.Qm
        cfg = {}
        for c, d, p in cfg_writes:
            cfg[c] = (d, p)
        cycles = sorted(c for c in cfg if c >= 0)
        self.cfg_t = np.array(cycles, dtype=np.int64)
        self.cfg_d = np.array([cfg[c][0] for c in cycles], dtype=np.int64)
        self.cfg_p = np.array([cfg[c][1] for c in cycles], dtype=np.int64)
        self.ej_cap = V * D
        self.cf = np.zeros(19, dtype=np.int64)
        self.cf[[C_N, C_V, C_D, C_LEN, C_WARMUP, C_MEASURE, C_DRAIN, C_WATCHDOG, C_ORDERED,
                 C_QUOTA, C_R, C_PM, C_VOQ, C_ISLIP, C_ITER, C_MAXCYC, C_EJCAP, C_NCFG,
                 C_PIDMASK]] = [
            n, V, D, spec.packet_length, spec.warmup, spec.measure, spec.drain,
            spec.watchdog, int(spec.ordered), spec.packets_per_source, R, Pm, int(net.voq),
            int(net.islip), net.iterations, max_cycles, self.ej_cap, len(cycles),
            eps.packet_id_mask]
        self.sc = np.zeros(21, dtype=np.int64)
        self.sc[S_CREATING] = 1
        self.sc[S_LAST] = -1
        self.err = np.full(8, -1, dtype=np.int64)
        self.table = net.table.copy()
        # Queue (router r, input i, queue q) is entry (r * Pm + i) * Qm + q of the per-queue
        # arrays, its slots D entries from D times that in the buffers; the output state of
        # (r, o, vc v) is entry (r * Pm + o) * V + v.
        self.qbuf = np.zeros(R * Pm * Qm * D, dtype=np.int64)
        self.qroute = np.zeros(R * Pm * Qm * D, dtype=np.int64)
        self.qhead = np.zeros(R * Pm * Qm, dtype=np.int64)
        self.qcount = np.zeros(R * Pm * Qm, dtype=np.int64)
        self.held = np.zeros((R, Pm, V), dtype=np.int64)
        self.turn = np.zeros((R, Pm), dtype=np.int64)
        self.credit = np.full(R * Pm * V, D, dtype=np.int64)
        self.busy = np.zeros(R * Pm * V, dtype=np.bool_)
        # Claims on output VCs: [0] the claimant (-1: none), [1] its arbiter's pointer.
        self.claim = np.zeros((2, R * Pm * V), dtype=np.int64)
        self.claim[0] = -1
        # Arbiter pointers: see _separable and _islip for the rows each uses.
        self.arb = np.zeros((R, max(3, 2 * net.iterations), Pm), dtype=np.int64)
        # Performance counters per router port: sent, credit stalls, blocked (the RTL's).
        self.counters = np.zeros((3, R * Pm), dtype=np.int64)
        self.out_flit = np.full((2, R * Pm), -1, dtype=np.int64)
        self.in_credit = np.zeros((2, R * Pm), dtype=np.int64)
        self.occ = np.zeros(R, dtype=np.int64)
        self.in_occ = np.zeros(R * Pm, dtype=np.int64)
        self.ep_credit = np.full((n, V), eps.depth, dtype=np.int64)
        self.current = np.full(n, -1, dtype=np.int64)
        self.srcq_head = np.full(n, -1, dtype=np.int64)
        self.srcq_tail = np.full(n, -1, dtype=np.int64)
        self.created_count = np.zeros(n, dtype=np.int64)
        self.next_pid = np.zeros(n, dtype=np.int64)
        self.credit_pending = np.zeros(n, dtype=np.int64)
        self.ej_ready = np.zeros((n, self.ej_cap), dtype=np.int64)
        self.ej_vc = np.zeros((n, self.ej_cap), dtype=np.int64)
        self.ej_head = np.zeros(n, dtype=np.int64)
        self.ej_count = np.zeros(n, dtype=np.int64)
        self.ej_per_port = np.zeros(n, dtype=np.int64)
        self.held_cnt = np.zeros(n, dtype=np.int64)
        self.flow_head = np.full(n * n * V, -1, dtype=np.int64)
        self.flow_tail = np.full(n * n * V, -1, dtype=np.int64)
        # Packet slots: what the run is expected to create (it grows them if not enough).
        if spec.packets_per_source:
            cap = n * spec.packets_per_source + n
        else:
            rate = spec.load / spec.packet_length
            cap = int(1.1 * rate * n * (spec.warmup + spec.measure)) + 4 * n
        self.pk = np.zeros((N_FIELDS, cap), dtype=np.int64)
        self.meas = np.zeros(cap, dtype=np.int64)

    def grow_packets(self):
        cap = self.pk.shape[1]
        pk = np.zeros((N_FIELDS, 2 * cap), dtype=np.int64)
        pk[:, :cap] = self.pk
        meas = np.zeros(2 * cap, dtype=np.int64)
        meas[:cap] = self.meas
        self.pk, self.meas = pk, meas

    def call(self, net, rows):
        create, dest, vc, drain = rows
        return _kernel(self.cf, self.sc, self.err, create, dest, vc, drain, net.ports,
                       self.table, net.spread, net.spread_len, net.in_spread, net.q_n,
                       net.q_vc, net.q_fixed, net.q_of, net.in_kind,
                       net.in_idx, net.cr_kind, net.cr_idx, net.ep_in, net.ep_out,
                       self.qbuf, self.qroute, self.qhead, self.qcount, self.held, self.turn,
                       self.credit, self.busy, self.claim, self.arb, self.counters, self.out_flit, self.in_credit,
                       self.occ, self.in_occ, self.cfg_t, self.cfg_d, self.cfg_p, self.ep_credit,
                       self.current, self.srcq_head, self.srcq_tail, self.created_count,
                       self.next_pid, self.credit_pending, self.ej_ready, self.ej_vc,
                       self.ej_head, self.ej_count, self.ej_per_port, self.held_cnt, self.pk,
                       self.meas, self.flow_head, self.flow_tail)


#: Blocks of the traffic schedule handed to the compiled loop per call after the first
#: (which covers the warm-up and measurement windows and one block more).
WINDOW_BLOCKS = 2


def simulate(network, eps, *, max_cycles: int = 10_000_000, cfg_writes=()) -> dict:
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
            b = int(st.sc[S_T]) // block
            st.sc[S_BASE] = b * block
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
            out[name] = {counter: [int(c) & wrap for c in st.counters[k, base:base + P]]
                         for k, counter in enumerate(STATS_COUNTERS)}
    return out


def _failure(status, st, eps, max_cycles):
    """The exception the Python endpoints raise for the same failure."""
    t = int(st.sc[S_T])
    if status == MAX_CYCLES:
        return DeadlockError(f"the run did not end within {max_cycles} cycles")
    if status == DEADLOCK:
        return DeadlockError(
            f"watchdog: no flit moved for {eps.spec.watchdog} cycles (cycle {t}) with "
            f"{int(st.sc[S_IN_FLIGHT])} packets in flight; the network is deadlocked "
            f"or an ejector is stuck")
    if status == OVERFLOW:
        return RuntimeError(f"compiled engine: a buffer overflowed at cycle {t} (a credit "
                            f"was returned twice); the Python model shows where")
    e, g, idx, other = (int(x) for x in st.err[:4])
    pk = st.pk
    src, dest, vc, pid = (int(pk[f, g]) for f in (P_SRC, P_DEST, P_VC, P_PID))
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
        return ScoreboardError(f"corrupt or reordered flit {int(pk[P_NEXT, g])} of packet "
                               f"{pid} from {src} to {dest} {where}: got {flit}")
    return ScoreboardError(f"reorder: packet {pid} of flow {src}->{dest} VC {vc} arrived "
                           f"before packet {int(pk[P_PID, other])} {where}")


def _fill(eps, st):
    """Put the run's statistics into the endpoints object, as its own run would."""
    sc, pk = st.sc, st.pk
    m = st.meas[:sc[S_NMEAS]]
    released = pk[P_RELEASED, m]
    latency = released - pk[P_CREATED, m]
    eps.latencies = latency.tolist()
    eps.network_latencies = (released - pk[P_INJECTED, m]).tolist()
    if eps.zero_load is not None and m.size:
        n, L = eps.n, eps.spec.packet_length
        pairs, inverse = np.unique(pk[P_SRC, m] * n + pk[P_DEST, m], return_inverse=True)
        zero = np.array([eps.zero_load(int(p) // n, int(p) % n, L) for p in pairs],
                        dtype=np.int64)[inverse]
        excess = latency - zero
        eps.hops_latency = excess.tolist()
        eps.min_excess = {int(z): int(excess[zero == z].min()) for z in np.unique(zero)}
    eps.cycle = int(sc[S_T])
    eps.idle_cycles = int(sc[S_IDLE])
    eps.measured_created = int(sc[S_MEAS_CREATED])
    eps.measured_outstanding = int(sc[S_MEAS_OUT])
    eps.ejected_in_window = int(sc[S_EJ_WIN])
    eps.ejected_per_port = st.ej_per_port.tolist()
    eps.created_flits_in_window = int(sc[S_FLITS_WIN])
    eps.flits_moved = int(sc[S_FLITS])
    eps.packets_delivered = int(sc[S_DELIVERED])
    eps.last_delivery = None if sc[S_LAST] < 0 else int(sc[S_LAST])
    eps.created_count = st.created_count.tolist()
    eps.next_pkt = st.next_pid.tolist()
    eps.held_packets = int(sc[S_HELD])
    eps.held_max = int(sc[S_HELD_MAX])
    eps.creating = bool(sc[S_CREATING])
    eps.saturated = bool(sc[S_SATURATED])
    eps.done = bool(sc[S_DONE])
