"""Progress measures of the router: bounds on a flit's wait that each step proves alone.

A liveness bound checked with one wait counter per queue head needs an induction longer
than the bound: only a window that covers the whole wait rules out a counter that is high
while the arbiters sit in their worst positions. Here every wait is instead tied to the
state that limits it, the way :func:`~supernode.sim.formal.properties.round_robin_fairness` ties a
requester's lost moves to its arbiter's pointer, so each invariant relates neighbouring
cycles only and the induction stays a few cycles long whatever the bound.

The measures cover the separable allocator with one queue per VC and two VCs per port, of
any number of iterations (:func:`applies`). Their bounds (:func:`bounds`) are upper bounds
built from the structure, looser than the exact worst cases that the long inductions find on
small routers.

*Later iterations.* The argument below follows the first iteration's arbiters, which a later
iteration neither moves nor overrides: an output asked for in the first iteration is always
granted there, so a later iteration only matches an unmatched input to an output nobody
asked for, with a queue whose output that is. For the flit the argument follows, that is
either its own queue leaving early (its wait ends) or another input sending to an output
its own input did not ask for, which spends that output's credits and takes its VCs exactly
as a first-iteration send would; every step below counts those events whichever iteration
made them. So the same measures, with the same bounds, hold with more iterations (proved
for two on 2 and 4 ports).

The two VCs of an input are its queues ``q`` and ``1 - q``; its input arbiter prefers one
of them (the other one was granted last) and picks the preferred queue when it is
eligible, the other one otherwise. The argument, for the head of queue ``q`` of input
``i``, routed to output ``o``:

*Eligible run.* While the head stays eligible, a cycle in which the arbiter prefers ``q``
sends a request to ``o``, and a lost request moves ``o``'s pointer closer to ``i``, so
``run + distance_o(i) <= Y`` holds (``Y``, :func:`bounds`). While it prefers the other
queue, whose head ``G`` asks for output ``o'``, input ``i`` asks ``o'`` in the cycles when
``G`` is eligible and ``o`` in the others; each stretch of equal eligibility of ``G`` loses
at most ``n - 1`` times (``stretch + distance <= n - 1``). ``G`` changes eligibility a
bounded number of times: a body flit or the claimant of its free VC at most once (its
credits come back and nobody else spends them); any other head flit loses its eligibility
only when another input takes its VC, after which it waits and the VC's claim is given
(claims go only to inputs that wait, and it waits whenever anyone does), so every further
pair of changes costs another input a claim, which moves the claim pointer closer to
``i``. ``switches + remaining(G) <= 2n + 1``, with ``remaining`` read off ``G``'s claim
state and the claim pointer's distance to ``i``.

*Exclusive flit.* A body flit (its packet holds the VC) or a head flit that is the
claimant of its free VC is the only one spending its VC's credits: once it has a credit
it stays eligible. Before that it waits while the downstream may keep its credits, which
the downstream model's stall counter measures.

*Held and claimed VCs.* A held VC's next flit reaches its queue head within ``arrival``
cycles of the previous one leaving (the upstream model's idle counter measures it) and is
exclusive there, so the packet holds the VC for a bounded time; a claim on a held VC is
younger than the hold, one on a free VC waits for its exclusive claimant.

*Waiting head flit.* Its wait is cut into segments at the claims given to other inputs:
at most ``n - 1`` (each moves the claim pointer closer to it, since it waits whenever
anyone does). A segment is a claim of another input, then at most one eligible run while
the VC is free and unclaimed, then one cycle in which the VC is waited for again, which
gives the next claim; the last segment ends with its own claim and its exclusive wait.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from amaranth.hdl import Array, Assert, Cat, Cover, Module, Mux, Signal, Value

from .properties import past, rr_distance, rr_pointer

if TYPE_CHECKING:
    from supernode.rtl.router import Router

__all__ = ["applies", "bounds", "progress_measures", "DEPTH", "COVER_DEPTH"]

#: Induction length that closes the measures (every invariant relates neighbouring cycles;
#: a few need the cycle before as well), whatever the bounds.
DEPTH = 2

#: Cycles from reset within which the covers of the measures are reached.
COVER_DEPTH = 12


def applies(*, allocator: str, voq: bool, vcs: int, iterations: int = 1) -> bool:
    """True when the progress measures cover this router shape: the separable allocator,
    of any number of ``iterations`` (see *Later iterations* above), two VCs, no VOQ."""
    return allocator == "separable" and not voq and vcs == 2


def bounds(*, ports: int, buffer_depth: int, credit_bound: int, send_bound: int,
           packet_length: int) -> dict[str, int]:
    """The bounds the measures prove, as a dict of cycles (see the module docstring).

    ``credit_wait`` (``A``): an exclusive flit waits for its first credit;
    ``switches``: changes of the other queue's eligibility within one eligible run;
    ``eligible_run`` (``Y``): a head stays eligible before it leaves;
    ``body``: a body flit (or a claimant head on its free VC) waits at its queue head;
    ``arrival``: a held VC waits for its packet's next flit to reach its queue head;
    ``hold``: an output VC stays held by one packet;
    ``claim``: an output VC stays claimed;
    ``round``: a waiting head flit waits per claim given to another input;
    ``head``: a head flit waits at its queue head.
    """
    n = ports
    credit_wait = credit_bound + (1 if buffer_depth == 1 else 0)
    switches = 2 * n + 1
    eligible_run = (switches + 1) * n + n - 1
    body = credit_wait + 1 + eligible_run
    arrival = send_bound + 1 + (1 if buffer_depth == 1 else 0)
    hold = (packet_length - 1) * (arrival + body + 1) - 1
    claim = hold + 1 + body
    round_ = claim + eligible_run + 3
    return {"credit_wait": credit_wait, "switches": switches, "eligible_run": eligible_run,
            "body": body, "arrival": arrival, "hold": hold, "claim": claim,
            "round": round_, "head": n * round_ + claim}


def progress_measures(m: Module, dut: Router, *, limits: Mapping[str, int], ports: int,
                      credit_bound: int, send_bound: int,
                      queue: Mapping[tuple[int, int], Sequence[tuple[Value, Any]]],
                      queue_out: Sequence[Sequence[Value]],
                      waits: Mapping[tuple[int, int], Value],
                      env: Mapping[tuple[Any, ...], Mapping[str, Value]],
                      out_owner: Sequence[Sequence[Value]],
                      out_pos: Sequence[Sequence[Value]], heads_too: bool
                      ) -> dict[tuple[int, int], dict[str, Value]]:
    """Assert the progress measures of a router with two VCs (see the module docstring).

    ``limits`` is what :func:`bounds` gives for this router and environment.
    ``queue[i, q]`` lists ``(present, entry)`` of queue ``q`` of input ``i`` in order,
    ``queue_out[i][q]`` is the output its head is routed to, ``waits[i, q]`` the cycles
    its head has waited (counted for body flits at least; for head flits too with
    ``heads_too``), ``out_owner[o][v]`` and ``out_pos[o][v]`` the input whose packet holds
    output ``o``'s VC ``v`` and the position of its last flit sent. Returns the per-queue-head
    signals later measures build on: ``{(i, q): {"run": ..., "exclusive": ...,
    "held": ...}}``.
    """
    P, V = ports, 2
    b = limits
    A, NSW, Y = b["credit_wait"], b["switches"], b["eligible_run"]

    # Output arbiters: each input's distance from the pointer, per output.
    out_dist = []
    for o in range(P):
        ptr = rr_pointer(m, dut.arbiters[f"sep_out_{o}"].mask, name=f"pm_out_ptr_{o}")
        out_dist.append([rr_distance(m, ptr, i, P, name=f"pm_out_dist_{o}_{i}")
                         for i in range(P)])
    out_dist_of = [Array(out_dist[o][i] for o in range(P)) for i in range(P)]
    # Claim arbiters, per (output, vc).
    claim_dist_of = {}
    for v in range(V):
        per_out = []
        for o in range(P):
            ptr = rr_pointer(m, dut.arbiters[f"claim_{o}_{v}"].mask, name=f"pm_claim_ptr_{o}_{v}")
            per_out.append([rr_distance(m, ptr, i, P, name=f"pm_claim_dist_{o}_{v}_{i}")
                            for i in range(P)])
        for i in range(P):
            claim_dist_of[i, v] = Array(per_out[o][i] for o in range(P))
    by_out = {name: [Array(getattr(dut.state, name)[o][v] for o in range(P)) for v in range(V)]
              for name in ("credit", "busy", "claimed", "claimant")}

    # Cycles (this one included) a VC's credit count may still stay at zero: the downstream
    # holding flits gives one back within credit_bound + 1 cycles; holding none (depth 1,
    # its flit on the link), it holds one next cycle.
    zero_left_of = []
    for v in range(V):
        zero_left = []
        for o in range(P):
            occ, stall = env[o, v]["occ"], env[o, v]["stall"]
            z = Signal(range(credit_bound + 3), name=f"pm_zero_left_{o}_{v}")
            m.d.comb += z.eq(Mux(occ != 0, credit_bound - stall + 1, credit_bound + 2))
            zero_left.append(z)
        zero_left_of.append(Array(zero_left))

    heads = {}
    for i in range(P):
        elig, deq = dut.state.elig[i], dut.state.deq[i]
        mask = dut.arbiters[f"sep_in_{i}"].mask
        prefers_1 = mask == 0b10            # queue 0 was granted last
        for q in range(V):
            present, head = queue[i, q][0]
            o = queue_out[i][q]
            credit = by_out["credit"][q][o]
            busy = by_out["busy"][q][o]
            claimed = by_out["claimed"][q][o]
            claimant = by_out["claimant"][q][o]
            tag = f"{i}_{q}"

            # -- Eligible run --------------------------------------------------------------
            run = Signal(range(Y + 2), name=f"pm_run_{tag}")
            stays = elig[q] & ~deq[q]
            m.d.sync += run.eq(Mux(stays, run + 1, 0))
            prefers_me = prefers_1 if q == 1 else ~prefers_1
            dist_o = out_dist_of[i][o]
            with m.If(elig[q] & prefers_me):
                m.d.comb += Assert(run + dist_o <= Y,
                                   f"in {i} vc {q}: an eligible head that its input arbiter "
                                   f"prefers leaves within the distance of its output's "
                                   f"pointer")

            # The other queue's head G and its eligibility (sigma).
            r = 1 - q
            g_present, g_head = queue[i, r][0]
            g_out = queue_out[i][r]
            sigma = elig[r]
            g_claimed = by_out["claimed"][r][g_out]
            g_claimant = by_out["claimant"][r][g_out]
            g_mine = g_claimed & (g_claimant == i)
            distc = claim_dist_of[i, r][g_out]
            remaining = Signal(range(2 * P + 2), name=f"pm_remaining_{tag}")
            with m.If(~g_present):
                m.d.comb += remaining.eq(2 * P + 1)
            with m.Elif(~g_head.flit.first | g_mine):
                m.d.comb += remaining.eq(Mux(sigma, 0, 1))
            with m.Elif(g_claimed):
                m.d.comb += remaining.eq(2 * distc + 3)
            with m.Else():
                m.d.comb += remaining.eq(Mux(sigma, 2 * distc + 2, 2 * distc + 1))

            active = elig[q] & ~prefers_me
            was_active = past(m, active & ~deq[q], name=f"pm_was_active_{tag}")
            was_sigma = past(m, sigma, name=f"pm_was_sigma_{tag}")
            stretch = Signal(range(P + 1), name=f"pm_stretch_{tag}")
            switches = Signal(range(NSW + 2), name=f"pm_switches_{tag}")
            stretch_reg = Signal.like(stretch, name=f"pm_stretch_reg_{tag}")
            switches_reg = Signal.like(switches, name=f"pm_switches_reg_{tag}")
            going_on = was_active & active
            m.d.comb += [
                stretch.eq(Mux(going_on & (sigma == was_sigma), stretch_reg + 1, 0)),
                switches.eq(Mux(going_on, switches_reg + (sigma != was_sigma), 0)),
            ]
            m.d.sync += [stretch_reg.eq(stretch), switches_reg.eq(switches)]
            target_dist = Mux(sigma, out_dist_of[i][g_out], dist_o)
            with m.If(active):
                m.d.comb += [
                    Assert(stretch + target_dist <= P - 1,
                           f"in {i} vc {q}: while the other VC is preferred, each stretch of "
                           f"its eligibility loses within the pointer distance"),
                    Assert(run <= switches * P + stretch,
                           f"in {i} vc {q}: while the other VC is preferred, the run is at "
                           f"most {P} cycles per stretch"),
                    Assert(switches + remaining <= NSW,
                           f"in {i} vc {q}: the other VC's eligibility changes at most "
                           f"{NSW} times"),
                ]
            with m.If(elig[q]):
                m.d.comb += Assert(run <= Y, f"in {i} vc {q}: an eligible head leaves within "
                                             f"{Y} cycles of eligibility")
            if i == 0 and q == 0:
                m.d.comb += Cover(active & (switches != 0),
                                  "the other VC's eligibility changes while it is preferred "
                                  "over an eligible head")

            # -- Exclusive flit ------------------------------------------------------------
            exclusive = Signal(name=f"pm_exclusive_{tag}")
            m.d.comb += exclusive.eq(present & (~head.flit.first |
                                                (claimed & (claimant == i) & ~busy)))
            held = Signal(range(A + Y + 3), name=f"pm_exclusive_wait_{tag}")
            m.d.sync += held.eq(Mux(exclusive & ~deq[q], held + 1, 0))
            with m.If(exclusive):
                with m.If(elig[q]):
                    m.d.comb += Assert(held <= run + A + 1,
                                       f"in {i} vc {q}: an exclusive flit, once eligible, "
                                       f"stays eligible")
                with m.Else():
                    m.d.comb += [
                        Assert(credit == 0, f"in {i} vc {q}: an exclusive flit waits only "
                                            f"for a credit"),
                        Assert(held + zero_left_of[q][o] <= A + 1,
                               f"in {i} vc {q}: an exclusive flit waits at most {A} cycles "
                               f"for a credit"),
                    ]
            with m.If(present & ~head.flit.first):
                m.d.comb += Assert(waits[i, q] == held, f"in {i} vc {q}: a body flit is "
                                                        f"exclusive from its arrival")
            heads[i, q] = {"run": run, "exclusive": exclusive, "held": held}
    _held_and_claimed(m, dut, b, P, send_bound, queue, heads, env, out_owner, out_pos,
                      by_out, claim_dist_of, queue_out, waits if heads_too else None)
    return heads


def _held_and_claimed(m, dut, b, P, send_bound, queue, heads, env, out_owner, out_pos,
                      by_out, claim_dist_of, queue_out, waits):
    """How long an output VC stays held and claimed; with ``waits``, the head flits' bound.

    Held: the packet's next flit reaches its queue head within ``arrival`` cycles of the
    previous one leaving, and then is exclusive, so each gap between its flits is at most
    ``arrival + body`` (``since``), and the VC is held at most ``hold`` cycles. Claimed:
    while the VC is still held the claim is younger than the hold; once it is free the
    claimant's head is exclusive. A waiting head flit's wait is cut into segments at the
    claims given to other inputs (at most ``n - 1``, each moving the claim pointer closer
    to it): in a segment the VC is first claimed by another input (at most ``claim``
    cycles), then free and unclaimed while the head is eligible (one eligible run), then
    waited for once more (one cycle, after which a claim is given).
    """
    V = 2
    Arr, Bd, Dr, C, R = b["arrival"], b["body"], b["hold"], b["claim"], b["round"]
    Y = b["eligible_run"]
    gap = Arr + Bd
    match = [[dut.state.match[j][o] for o in range(P)] for j in range(P)]
    chosen = [dut.state.chosen[j] for j in range(P)]
    held_of = [Array(heads[j, v]["held"] for j in range(P)) for v in range(V)]
    present_of = [Array(queue[j, v][0][0] for j in range(P)) for v in range(V)]
    # Cycles until upstream's next flit of an open packet is in its queue: it sends within
    # send_bound cycles of holding a credit, and holds one next cycle when it has none
    # (depth 1, the credit on its way back); the flit is buffered the cycle after.
    left_of = []
    for v in range(V):
        left = []
        for j in range(P):
            up = env["up", j, v]
            z = Signal(range(send_bound + 3), name=f"pm_arrival_left_{j}_{v}")
            m.d.comb += z.eq(Mux(up["credit"] != 0, send_bound - up["idle"] + 1,
                                 send_bound + 2))
            left.append(z)
        left_of.append(Array(left))
    grant_given, claimed_for = {}, {}
    for o in range(P):
        for v in range(V):
            tag = f"{o}_{v}"
            busy, claimed = dut.state.busy[o][v], dut.state.claimed[o][v]
            claimant = dut.state.claimant[o][v]
            spend = Signal(name=f"pm_spend_{tag}")
            take = Signal(name=f"pm_take_{tag}")
            m.d.comb += [
                spend.eq(Cat(*[match[j][o] & chosen[j][v] for j in range(P)]).any()),
                take.eq(Cat(*[match[j][o] & chosen[j][v] & queue[j, v][0][1].flit.first
                              for j in range(P)]).any()),
            ]
            since = Signal(range(gap + 2), name=f"pm_since_{tag}")
            hold = Signal(range(Dr + 2), name=f"pm_hold_{tag}")
            cl = claimed_for[o, v] = Signal(range(C + 2), name=f"pm_claimed_for_{tag}")
            m.d.sync += [since.eq(Mux(spend, 0, since + 1)), hold.eq(Mux(take, 0, hold + 1)),
                         cl.eq(Mux(claimed, cl + 1, 0))]
            owner = out_owner[o][v]
            with m.If(busy):
                m.d.comb += Assert(hold <= (out_pos[o][v] - 1) * (gap + 1) + since,
                                   f"out {o} vc {v}: a packet holds its VC {gap + 1} cycles "
                                   f"per flit at most")
                with m.If(present_of[v][owner]):
                    m.d.comb += Assert(since <= Arr + held_of[v][owner],
                                       f"out {o} vc {v}: the holder's next flit waits at its "
                                       f"queue head since it arrived there")
                with m.Else():
                    m.d.comb += Assert(since + left_of[v][owner] <= Arr,
                                       f"out {o} vc {v}: the holder's next flit reaches its "
                                       f"queue head within {Arr} cycles")
            with m.If(claimed & busy):
                m.d.comb += Assert(cl <= hold, f"out {o} vc {v}: a claim on a held VC is "
                                               f"younger than the hold")
            with m.If(claimed & ~busy):
                m.d.comb += Assert(cl <= Dr + 1 + held_of[v][claimant],
                                   f"out {o} vc {v}: a claim on a free VC waits for its "
                                   f"exclusive claimant")
            if o == 0 and v == 0:
                m.d.comb += Cover(busy & ~present_of[v][owner],
                                  "out 0 vc 0 is held while its packet's next flit is not "
                                  "yet at its queue head")
            grant_given[o, v] = (~claimed & dut.state.waiting[o][v].any(),
                                 dut.arbiters[f"claim_{o}_{v}"].grant)
    if waits is None:
        return
    grant_of = [Array(grant_given[o, v][0] for o in range(P)) for v in range(V)]
    pick_of = [Array(grant_given[o, v][1] for o in range(P)) for v in range(V)]
    cl_of = [Array(claimed_for[o, v] for o in range(P)) for v in range(V)]
    for (i, q), wait in waits.items():
        present, head = queue[i, q][0]
        o = queue_out[i][q]
        deq = dut.state.deq[i][q]
        tag = f"{i}_{q}"
        claimed = by_out["claimed"][q][o]
        mine = claimed & (by_out["claimant"][q][o] == i)
        busy = by_out["busy"][q][o]
        credit = by_out["credit"][q][o]
        given = grant_of[q][o]
        to_other = given & ~pick_of[q][o][i]
        ng = Signal(range(P + 1), name=f"pm_claims_to_others_{tag}")
        seg = Signal(range(R + C + 2), name=f"pm_segment_{tag}")
        stays = present & head.flit.first & ~deq
        m.d.sync += [ng.eq(Mux(stays, ng + to_other, 0)),
                     seg.eq(Mux(stays, Mux(to_other, 0, seg + 1), 0))]
        cl = cl_of[q][o]
        if i == 0 and q == 0:
            m.d.comb += Cover(present & head.flit.first & (ng != 0),
                              "a waiting head flit sees a claim given to another input")
        with m.If(present & head.flit.first):
            m.d.comb += [
                Assert(ng <= P - 1, f"in {i} vc {q}: a waiting head flit sees at most {P - 1} "
                                    f"claims given to others"),
                Assert(wait <= ng * R + seg, f"in {i} vc {q}: a head flit waits at most "
                                             f"{R} cycles per claim given to another input"),
            ]
            with m.If(~mine):
                m.d.comb += Assert(ng + claim_dist_of[i, q][o] <= P - 1,
                                   f"in {i} vc {q}: each claim given to another input moves "
                                   f"the claim pointer closer to a waiting head flit")
            with m.If(claimed & ~mine):
                m.d.comb += Assert(seg <= cl, f"in {i} vc {q}: a segment starts with the "
                                              f"claim given to another input")
            with m.If(mine):
                m.d.comb += Assert(seg <= C + Y + 3 + cl, f"in {i} vc {q}: the head flit's "
                                                          f"own claim ends its last segment")
            with m.If(~claimed & ~busy & (credit != 0)):
                m.d.comb += Assert(seg <= C + 1 + heads[i, q]["run"],
                                   f"in {i} vc {q}: a segment has one eligible run")
            with m.If(~claimed & (busy | (credit == 0))):
                m.d.comb += Assert(seg <= C + Y + 2, f"in {i} vc {q}: a segment ends when "
                                                     f"the VC is waited for")

