"""Proof harness of the virtual-channel router: credits, framing, conservation, allocation."""

from __future__ import annotations

from typing import Any

from amaranth.asserts import AnySeq
from amaranth.hdl import (Array, Assert, Assume, Cat, Const, Cover, Module, Mux, ResetSignal,
                          Signal, Value)
from amaranth.lib import data

from supernode.rtl.allocator import SeparableAllocator
from supernode.rtl.arbiter import RoundRobinArbiter
from supernode.rtl.errors import UserError
from supernode.rtl.router import ALLOCATORS, Router, RouterParams
from supernode.rtl.router_units import OutputUnit

from .harness import Harness
from . import progress
from .memory import RegisterMemory
from .properties import past, round_robin_fairness

__all__ = ["RouterHarness", "DROPPABLE", "FAULTS", "FAULTY_ROUTERS"]

#: Environment assumptions a mutation test may drop; the proof must then fail.
#: ``"input_credit"``: the upstream sends without holding a credit;
#: ``"packet_framing"``: the upstream may start a packet inside another on the same VC;
#: ``"credit_return"`` (with ``liveness``): a downstream may keep its credits for ever.
DROPPABLE = ("input_credit", "packet_framing", "credit_return")

#: Deliberately broken allocators for the mutation tests (``rtl/`` is untouched: each is a
#: subclass of the router, :data:`FAULTY_ROUTERS`). ``"frozen_grant_pointer"``: the iSLIP
#: output (grant) arbiters never move their pointer; ``"accept_all"``: the iSLIP input
#: (accept) arbiters of the first iteration accept every grant instead of one;
#: ``"no_claims"`` (either allocator): the claim arbiters see no waiting head flit, so no
#: output VC is ever claimed (the router as it was before claims); ``"rematch"``: a later
#: iteration of the separable allocator lets inputs ask for outputs already matched.
FAULTS = ("frozen_grant_pointer", "accept_all", "no_claims", "rematch")

#: The allocator each fault breaks (None: either).
_FAULT_ALLOCATOR = {"frozen_grant_pointer": "islip", "accept_all": "islip", "no_claims": None,
                    "rematch": "separable"}


def _bits(n):
    return max(1, (n - 1).bit_length())


def free_input(dut, i):
    """Statements that drive input link ``i`` of the router ``dut`` freely (``AnySeq``),
    tagged with its port in ``src``, with only VCs and destinations the router has."""
    link = dut.inp[i]
    flit = link.payload
    return [
        link.valid.eq(AnySeq(1)), flit.first.eq(AnySeq(1)), flit.last.eq(AnySeq(1)),
        flit.vc.eq(AnySeq(len(flit.vc))), flit.dest.eq(AnySeq(len(flit.dest))),
        flit.data.eq(AnySeq(len(flit.data))), flit.src.eq(i),
        Assume(~link.valid | (flit.vc < dut.vcs)),
        Assume(~link.valid | (flit.dest < dut.destinations)),
    ]


def _popcount_le1(bits):
    """True when at most one of ``bits`` is set."""
    v = Cat(*bits)
    return (v & (v - 1)) == 0


class FrozenPointerArbiter(RoundRobinArbiter):
    """A broken round-robin arbiter: its pointer never moves."""

    def moves(self, choice):
        return Const(0)


class AcceptAllArbiter(RoundRobinArbiter):
    """A broken round-robin arbiter: it grants every request (its pointer still moves past
    the one it would have chosen)."""

    def granted(self, choice):
        return self.req


class FrozenGrantPointerRouter(Router):
    """The router whose iSLIP output (grant) arbiters never move their pointer."""
    ARBITERS = dict(Router.ARBITERS, islip_grant=FrozenPointerArbiter)


class AcceptAllRouter(Router):
    """The router whose first-iteration iSLIP input (accept) arbiters accept every grant."""
    ARBITERS = dict(Router.ARBITERS, islip_accept=AcceptAllArbiter)


class NoClaimsOutputUnit(OutputUnit):
    """A broken output unit: its claim arbiters see no waiting head flit."""

    def claim_requests(self, waiting):
        return Const(0, len(waiting))


class NoClaimsRouter(Router):
    """The router as it was before claims: no claim arbiter sees a waiting head flit."""
    OUTPUT_UNIT = NoClaimsOutputUnit


class RematchAllocator(SeparableAllocator):
    """A broken separable allocator: later iterations ask for outputs already matched."""

    def still_free(self, matched_out):
        return Const(-1, len(matched_out))


class RematchRouter(Router):
    """The router whose later separable iterations ask for outputs already matched."""
    ALLOCATOR_CLASSES = dict(Router.ALLOCATOR_CLASSES, separable=RematchAllocator)


#: The router class of each fault (None: the router itself).
FAULTY_ROUTERS = {None: Router, "frozen_grant_pointer": FrozenGrantPointerRouter,
                  "accept_all": AcceptAllRouter, "no_claims": NoClaimsRouter,
                  "rematch": RematchRouter}


#: Keys of the ``liveness`` parameter: the environment's bounds and the bounds proved.
LIVENESS_KEYS = ("credit_bound", "send_bound", "packet_length", "body_bound", "head_bound")


def _check_liveness(liveness):
    """None when ``liveness`` is a dict of the four bounds, else what is wrong with it."""
    def bad(k, b):
        if k in ("body_bound", "head_bound") and b == "auto":
            return False
        if k == "head_bound" and b is None:
            return False
        return isinstance(b, bool) or not isinstance(b, int) or not 0 <= b <= 4096
    if not isinstance(liveness, dict) or set(liveness) != set(LIVENESS_KEYS) or any(
            bad(k, b) for k, b in liveness.items()) or liveness["packet_length"] < 1:
        return (f"liveness must be None or a dict of {', '.join(LIVENESS_KEYS)} "
                f"(integers from 0 to 4096, packet_length at least 1, body_bound and "
                f"head_bound may be 'auto', head_bound may be None), not {liveness!r}")
    return None


def _refusal(allocator, vcs, drop, fault, liveness, separable_iterations):
    """What is wrong with the harness options, or None."""
    if liveness is not None and (bad := _check_liveness(liveness)):
        return bad
    if drop is not None and drop not in DROPPABLE:
        return f"drop must be None or one of {', '.join(DROPPABLE)}, not {drop!r}"
    if drop == "credit_return" and liveness is None:
        return "drop 'credit_return' drops a liveness assumption: it needs liveness bounds"
    if fault is not None and fault not in FAULTS:
        return f"fault must be None or one of {', '.join(FAULTS)}, not {fault!r}"
    if allocator not in ALLOCATORS:
        return f"allocator must be one of {', '.join(ALLOCATORS)}, not {allocator!r}"
    if fault == "no_claims" and vcs == 1:
        return "fault 'no_claims' needs 2 or more VCs: a router with 1 VC has no claims"
    if fault is not None and _FAULT_ALLOCATOR[fault] not in (None, allocator):
        name = {"islip": "iSLIP", "separable": "separable"}[_FAULT_ALLOCATOR[fault]]
        return f"fault {fault!r} is a fault of the {name} allocator, not of {allocator!r}"
    if fault == "rematch" and separable_iterations < 2:
        return (f"fault 'rematch' breaks a later separable iteration: it needs "
                f"separable_iterations of 2 or more, not {separable_iterations!r}")
    return None


class RouterHarness(Harness):
    """Properties of :class:`supernode.rtl.router.Router`, with either allocator, with or without VOQ.

    The environment: each input is driven by an upstream router model that holds one credit
    counter per VC (starting at ``buffer_depth``), sends a flit only with a credit and frames
    packets (a head flit starts a packet, ``last`` ends it, per VC); it tags every flit with
    its input port in ``src``. Each output feeds a downstream buffer model of
    ``buffer_depth`` flits per VC that returns a credit whenever it frees a slot (when it
    does so is free). The routing table keeps its initial contents (``cfg`` idle).

    Proves, for every input ``i``, output ``o`` and VC ``v``:
    credits are conserved (router credit + flits downstream + flit on the link = depth), so
    a credit count never goes negative nor above the depth and no buffer overflows on
    either side; no flit is created (flits from ``i`` out of ``o`` never exceed flits in at
    ``i`` routed to ``o``); packets never interleave on an output VC and the router's VC
    ownership matches the packets on the links; the switch allocation is a matching (one
    input per output, one output per input, only eligible queues, the matched queue's flit
    is for that output); every round-robin arbiter moves its pointer just past its grant
    exactly when its grant is used (for iSLIP: an output's grant pointer when its
    first-iteration grant is accepted, an input's accept pointer when it accepts in the
    first iteration) and serves a steady requester within ``n - 1`` moves of its pointer.
    With VOQ the queues are per (VC, output): every queue holds only flits for its output,
    framed, and a packet is open at an output exactly while its queue is empty and
    upstream is still sending it there or its queue's head is a body flit.

    Parameters
    ----------
    ports, vcs, buffer_depth, flit_width, allocator, islip_iterations, voq,
    separable_iterations :
        Router parameters (see :class:`supernode.rtl.router.Router`).
    drop : str or None
        One of :data:`DROPPABLE` to drop an assumption (mutation test), or None.
    fault : str or None
        One of :data:`FAULTS` to prove a broken allocator (mutation test), or None.
    liveness : dict or None
        Bounded liveness (see :meth:`_head_progress`): a dict of :data:`LIVENESS_KEYS`.
        The environment then also promises that a downstream holding flits returns a credit
        at least every ``credit_bound + 1`` cycles, that an upstream holding a credit sends
        the next flit of an open packet within ``send_bound`` cycles, and that packets have
        at most ``packet_length`` flits (every flit carries its position in the packet in
        ``pkt``, so the invariants can follow packets through the queues). Proved: a body
        flit at the head of an input queue leaves it within ``body_bound`` cycles, a head
        flit within ``head_bound`` (None: not asserted). With the separable allocator, one
        queue per VC and 2 VCs, either bound may be ``"auto"``: the bound of
        :mod:`supernode.sim.formal.progress`, whose invariants close by an induction of
        :data:`~supernode.sim.formal.progress.DEPTH` cycles. They are used whenever the bounds asked
        for are no tighter than theirs; tighter bounds (up to the exact worst cases, which
        the covers then reach) need an induction longer than the bound.
    """

    kind = "router"
    default_depth = 4
    cover_depth = 6

    def __init__(self, *, ports: int = 4, vcs: int = 2, buffer_depth: int = 2,
                 flit_width: int = 1, allocator: str = "separable", islip_iterations: int = 1,
                 voq: bool = False, drop: str | None = None, fault: str | None = None,
                 liveness: dict[str, Any] | None = None,
                 separable_iterations: int = RouterParams.separable_iterations) -> None:
        bad = _refusal(allocator, vcs, drop, fault, liveness, separable_iterations)
        if bad:
            raise UserError(bad)
        params = dict(ports=ports, vcs=vcs, buffer_depth=buffer_depth, flit_width=flit_width,
                      drop=drop)
        if allocator != "separable" or voq or fault is not None:
            # Separable, one queue per VC keeps the parameters (and build directory) it had.
            params.update(allocator=allocator, voq=voq, fault=fault)
            if allocator == "islip":
                params["islip_iterations"] = islip_iterations
        if allocator == "separable":
            # Always named: a result says which of the allocators it proved.
            params["separable_iterations"] = separable_iterations
        # Bounded liveness is proved by the progress measures where they apply and the
        # bounds asked for are no tighter than theirs (a short induction); otherwise by an
        # induction longer than the longest wait, whose covers reach the bounds.
        self._measured = self._windowed = False
        self._limits = None         # the progress measures' bounds, where they apply
        if liveness is not None:
            if fault is None and progress.applies(allocator=allocator, voq=voq, vcs=vcs,
                                                  iterations=separable_iterations):
                self._limits = progress.bounds(
                    ports=ports, buffer_depth=buffer_depth,
                    credit_bound=liveness["credit_bound"], send_bound=liveness["send_bound"],
                    packet_length=liveness["packet_length"])
            auto = [k for k in ("body_bound", "head_bound") if liveness[k] == "auto"]
            if auto and self._limits is None:
                raise UserError(f"{auto[0]} 'auto' takes the bound of the progress measures, "
                                f"which cover the separable allocator with one queue per VC, "
                                f"2 VCs and no fault; give a number of cycles for this router "
                                f"instead")
            liveness = dict(liveness)
            for k in auto:
                liveness[k] = self._limits["body" if k == "body_bound" else "head"]
            params["liveness"] = liveness
            if self._limits is not None:
                head = liveness["head_bound"]
                self._measured = (liveness["body_bound"] >= self._limits["body"]
                                  and (head is None or head >= self._limits["head"]))
            self._windowed = not self._measured
        super().__init__(**params)
        if self._measured:
            self.default_depth = progress.DEPTH
            self.cover_depth = progress.COVER_DEPTH
        elif liveness is not None:
            # An inductive step longer than the longest wait sees a whole waiting window.
            longest = max(liveness["body_bound"], liveness["head_bound"] or 0)
            self.default_depth = longest + 3
            self.cover_depth = longest + 9
        self._allocator, self._iterations, self._voq = allocator, islip_iterations, voq
        self._separable_iterations = separable_iterations
        if (allocator == "islip" or voq) and liveness is None:
            # The invariants of these are 2-inductive; the induction's cost grows with
            # the queues, so the default is the shortest length that closes.
            self.default_depth = 2
        self.router_params = self._router_params()      # validates the router parameters

    def _router_params(self) -> RouterParams:
        p = self.params
        return RouterParams(ports=p["ports"], vcs=p["vcs"], buffer_depth=p["buffer_depth"],
                            flit_width=p["flit_width"], allocator=self._allocator,
                            islip_iterations=self._iterations, voq=self._voq,
                            separable_iterations=self._separable_iterations)

    def design(self) -> Router:
        """The router under proof, with :class:`~supernode.sim.formal.memory.RegisterMemory` for its
        memories so that the invariants can name every word; a mutant (``fault``) is the
        broken subclass of :data:`FAULTY_ROUTERS`."""
        cls = FAULTY_ROUTERS[self.params.get("fault")]
        return cls(self.router_params, memory=RegisterMemory)

    def _memory_words(self, dut):
        """The router's table words, and its buffer words by ``(input, queue, slot)``."""
        D = dut.buffer_depth
        table = [Value.cast(c) for c in dut.table.cells]
        return table, lambda i, q, k: Value.cast(dut.buffers[i].cells[q * D + k])

    def elaborate(self, platform: object) -> Module:
        m = Module()
        dut = self.design()
        table_cells, buffer_cell = self._memory_words(dut)
        m.submodules.dut = dut
        P, V, D = dut.ports, dut.vcs, dut.buffer_depth
        voq = dut.voq
        # The queues of one input, as the router numbers them: (vc, fixed output or None).
        queues = [(v, o) for v in range(V) for o in range(P)] if voq else \
            [(v, None) for v in range(V)]
        drop = self.params["drop"]
        live = self.params.get("liveness")
        entry_layout = data.StructLayout({"flit": dut.flit_layout, "out": _bits(P)})
        routes = Array(Const(r, _bits(P)) for r in dut.routes)
        m.d.comb += [Assume(~ResetSignal()), dut.cfg.valid.eq(0)]
        for d, r in enumerate(dut.routes):
            m.d.comb += Assert(table_cells[d] == r, "routing table keeps its contents")

        # -- Outputs: downstream buffer models, credit conservation, packet framing ---------
        state = [[None] * V for _ in range(P)]      # (open after this cycle, owner after)
        out_pos = [[None] * V for _ in range(P)]    # position of the last flit sent, after
        env = {}    # liveness: (o, v) -> downstream counters, ("up", i, v) -> upstream's
        up_sent = [[None] * V for _ in range(P)]    # flits of upstream's open packet sent
        for o in range(P):
            link = dut.outp[o]
            flit = link.payload
            ret = Signal(V, name=f"down_ret_{o}")
            m.d.comb += [ret.eq(AnySeq(V)), link.credit.eq(0)]
            m.d.comb += Assert(~link.valid | (flit.src < P), f"out {o}: flit tagged by an input")
            for v in range(V):
                occ = Signal(range(D + 1), name=f"down_occ_{o}_{v}")
                give = Signal(name=f"down_give_{o}_{v}")
                m.d.comb += [give.eq(ret[v] & (occ != 0)), link.credit[v].eq(give)]
                if live:
                    # The downstream returns a credit at least every credit_bound + 1
                    # cycles while it holds flits.
                    bound = live["credit_bound"]
                    stall = Signal(range(bound + 2), name=f"down_stall_{o}_{v}")
                    env[o, v] = {"occ": occ, "stall": stall}
                    stall_now = Mux((occ != 0) & ~give, stall + 1, 0)
                    m.d.sync += stall.eq(stall_now)
                    if drop != "credit_return":
                        m.d.comb += [Assume(stall_now <= bound),
                                     Assert(stall <= bound, f"out {o} vc {v}: the downstream "
                                                            f"has kept a credit at most "
                                                            f"{bound} cycles")]
                arrive = link.valid & (flit.vc == v)
                m.d.sync += occ.eq(occ + arrive - give)
                credit = dut.state.credit[o][v]
                m.d.comb += [
                    Assert(credit <= D, f"out {o} vc {v}: credit count within 0..depth"),
                    Assert(credit + occ + arrive == D,
                           f"out {o} vc {v}: credits conserved (credit + downstream + link)"),
                    Assert(occ + arrive - give <= D,
                           f"out {o} vc {v}: downstream buffer never overflows"),
                ]
                is_open = Signal(name=f"out_open_{o}_{v}")
                owner = Signal(range(P), name=f"out_owner_{o}_{v}")
                with m.If(arrive):
                    m.d.comb += Assert(flit.first == ~is_open,
                                       f"out {o} vc {v}: a head flit only on a free VC")
                    with m.If(is_open):
                        m.d.comb += Assert(flit.src == owner,
                                           f"out {o} vc {v}: packets never interleave")
                    m.d.sync += is_open.eq(~flit.last)
                    with m.If(flit.first):
                        m.d.sync += owner.eq(flit.src)
                m.d.comb += Assert(owner < P, f"out {o} vc {v}: the owner is an input")
                now_open = Signal(name=f"out_open_now_{o}_{v}")
                now_owner = Signal(range(P), name=f"out_owner_now_{o}_{v}")
                m.d.comb += [now_open.eq(Mux(arrive, ~flit.last, is_open)),
                             now_owner.eq(Mux(arrive & flit.first, flit.src, owner))]
                state[o][v] = (now_open, now_owner)
                if live:
                    # Flits carry their position in their packet in ``pkt`` (1 = head).
                    length = live["packet_length"]
                    pos = Signal(range(length + 1), name=f"out_pos_{o}_{v}")
                    with m.If(arrive):
                        m.d.sync += pos.eq(flit.pkt)
                        m.d.comb += Assert(flit.pkt == Mux(flit.first, 1, pos + 1),
                                           f"out {o} vc {v}: a packet's flits leave in order")
                    m.d.comb += Assert(~is_open | ((pos >= 1) & (pos < length)),
                                       f"out {o} vc {v}: an open packet has sent 1..length-1")
                    out_pos[o][v] = Mux(arrive, flit.pkt, pos)
                m.d.comb += Assert(dut.state.busy[o][v] == now_open,
                                   f"out {o} vc {v}: VC ownership matches the link")

        # -- Inputs: upstream models, buffer accounting and contents ------------------------
        pending = [[Signal(range(len(queues) * D + 2), name=f"pending_{i}_{o}")
                    for o in range(P)] for i in range(P)]
        queue_out = [[None] * len(queues) for _ in range(P)]    # output of each queue's head
        queue = {}          # (i, q) -> [(present, entry view)] in queue order
        waits = {}          # (i, q) -> cycles the flit at the head has waited (liveness)
        for i in range(P):
            link = dut.inp[i]
            flit = link.payload
            m.d.comb += free_input(dut, i)
            in_route = [Signal(_bits(P), name=f"up_route_{i}_{v}") for v in range(V)]
            in_open = [Signal(name=f"up_open_{i}_{v}") for v in range(V)]
            route_now = Mux(flit.first, routes[flit.dest], Array(in_route)[flit.vc])
            positions = []
            for v in range(V):
                credit = Signal(range(D + 1), init=D, name=f"up_credit_{i}_{v}")
                send = link.valid & (flit.vc == v)
                if drop != "input_credit":
                    m.d.comb += Assume(~send | (credit != 0))
                if drop != "packet_framing":
                    m.d.comb += Assume(~send | (flit.first == ~in_open[v]))
                m.d.sync += credit.eq(credit - send + link.credit[v])
                if live:
                    # The upstream sends the next flit of an open packet within send_bound
                    # cycles of holding a credit for it, and packets have at most
                    # packet_length flits.
                    bound, length = live["send_bound"], live["packet_length"]
                    idle = Signal(range(bound + 2), name=f"up_idle_{i}_{v}")
                    env["up", i, v] = {"credit": credit, "idle": idle}
                    idle_now = Mux(in_open[v] & (credit != 0) & ~send, idle + 1, 0)
                    m.d.sync += idle.eq(idle_now)
                    sent = Signal(range(length + 1), name=f"up_sent_{i}_{v}")
                    sent_now = Mux(flit.first, 1, sent + 1)
                    with m.If(send):
                        m.d.sync += sent.eq(sent_now)
                    positions.append(sent_now)
                    up_sent[i][v] = sent
                    m.d.comb += [
                        Assume(idle_now <= bound),
                        Assert(idle <= bound, f"in {i} vc {v}: the upstream has held a "
                                              f"credit at most {bound} cycles unused"),
                        Assume(~send | (sent_now <= length)),
                        Assume(~send | flit.last | (sent_now < length)),
                        Assert(~in_open[v] | ((sent >= 1) & (sent < length)),
                               f"in {i} vc {v}: an open packet has sent 1..length-1 flits"),
                    ]
                else:
                    positions.append(0)
                with m.If(send):
                    m.d.sync += in_open[v].eq(~flit.last)
                    with m.If(flit.first):
                        m.d.sync += in_route[v].eq(routes[flit.dest])
                if v == V - 1:
                    m.d.comb += flit.pkt.eq(Array(positions)[flit.vc])
                counts = sum(dut.state.count[i][q] for q, (qv, _) in enumerate(queues)
                             if qv == v)
                m.d.comb += [
                    Assert(counts + credit + link.credit[v] == D,
                           f"in {i} vc {v}: credits conserved (upstream + buffer + returning)"),
                    Assert(in_route[v] < P, f"in {i} vc {v}: the held route is a port"),
                    Assert(dut.state.held[i][v] == in_route[v],
                           f"in {i} vc {v}: the route held for body flits is the head's"),
                ]
                sent_open = Cat(*[state[o][v][0] & (state[o][v][1] == i) for o in range(P)])
                if not voq:
                    m.d.comb += Assert(_popcount_le1(list(sent_open)),
                                       f"in {i} vc {v}: at most one packet of it open at "
                                       f"outputs")

            for q, (v, fixed) in enumerate(queues):
                name = f"in {i} vc {v}" if fixed is None else f"in {i} vc {v} for out {fixed}"
                count = dut.state.count[i][q]
                rptr = dut.state.rptr[i][q]
                m.d.comb += [
                    Assert(count <= D, f"{name}: input buffer never overflows"),
                    Assert((rptr < D) & (dut.state.wptr[i][q] < D),
                           f"{name}: buffer pointers in range"),
                    Assert(dut.state.wptr[i][q] == Mux(rptr + count >= D, rptr + count - D,
                                                         rptr + count),
                           f"{name}: write pointer = read pointer + count"),
                ]
                # Buffer contents in queue order: entry n sits in slot (rptr + n) mod D.
                store = Array(buffer_cell(i, q, k) for k in range(D))
                slots = [Mux(rptr + n >= D, rptr + n - D, rptr + n) for n in range(D)]
                entries = []
                for n, slot in enumerate(slots):
                    e = Signal(entry_layout, name=f"queue_{i}_{q}_{n}")
                    m.d.comb += e.eq(store[slot])
                    entries.append((n < count, e))
                queue[i, q] = entries
                # Upstream's open packet on this VC is being written into this queue.
                if fixed is None:
                    open_here = in_open[v]
                else:
                    open_here = in_open[v] & (in_route[v] == fixed)
                open_at = Array(state[o][v][0] & (state[o][v][1] == i) for o in range(P))
                for n, (present, e) in enumerate(entries):
                    with m.If(present):
                        m.d.comb += [
                            Assert((e.flit.vc == v) & (e.flit.src == i) & (e.out < P),
                                   f"{name}: buffered flits belong to the queue"),
                            Assert(~e.flit.first | (e.out == routes[e.flit.dest]),
                                   f"{name}: a head is routed by the table"),
                        ]
                        if fixed is not None:
                            m.d.comb += Assert(e.out == fixed,
                                               f"{name}: a virtual output queue holds flits "
                                               f"for its output only")
                        if live:
                            length = live["packet_length"]
                            m.d.comb += [
                                Assert((e.flit.pkt >= 1) & (e.flit.pkt <= length) &
                                       (e.flit.first == (e.flit.pkt == 1)) &
                                       (e.flit.last | (e.flit.pkt < length)),
                                       f"{name}: buffered flits hold their packet position"),
                            ]
                        if n + 1 < D:
                            nxt_present, nxt = entries[n + 1]
                            if live:
                                with m.If(nxt_present & ~e.flit.last):
                                    m.d.comb += Assert(nxt.flit.pkt == e.flit.pkt + 1,
                                                       f"{name}: buffered positions follow")
                            with m.If(nxt_present):
                                m.d.comb += [
                                    Assert(e.flit.last == nxt.flit.first,
                                           f"{name}: buffered packets are framed"),
                                    Assert(e.flit.last | (nxt.out == e.out),
                                           f"{name}: a packet keeps its route"),
                                ]
                        with m.If(count == n + 1):
                            if live:
                                with m.If(open_here):
                                    m.d.comb += Assert(e.flit.pkt == up_sent[i][v],
                                                       f"{name}: last buffered flit is the "
                                                       f"last sent")
                            m.d.comb += [
                                Assert(open_here == ~e.flit.last,
                                       f"{name}: last buffered flit matches upstream"),
                                Assert(~open_here | (e.out == in_route[v]),
                                       f"{name}: open packet keeps its route"),
                            ]
                head_present, head = entries[0]
                queue_out[i][q] = head.out if fixed is None else Const(fixed, _bits(P))
                if live:
                    waits[i, q] = self._head_progress(m, dut, live, name, i, q,
                                                      head_present, head,
                                                      reach=self._windowed)
                    # (A mutant is checked for the wait bound it breaks, not for this.)
                    if live["head_bound"] is not None and self.params.get("fault") is None:
                        written = link.valid & (flit.vc == v)
                        if fixed is not None:
                            written = written & (route_now == fixed)
                        self._residence(m, dut, live, name, i, q, slots, entries,
                                        waits[i, q], written)
                    at = Array(out_pos[o][v] for o in range(P))
                    with m.If(head_present & ~head.flit.first):
                        m.d.comb += Assert(head.flit.pkt == at[queue_out[i][q]] + 1,
                                           f"{name}: a body flit at the head follows the last "
                                           f"sent")
                    with m.If(~head_present & open_here):
                        m.d.comb += Assert(
                            at[in_route[v]] == up_sent[i][v],
                            f"{name}: an empty queue's open packet is sent up to upstream's")
                if fixed is None:
                    sent_open = Cat(*[open_at[o] for o in range(P)])
                    with m.If(head_present):
                        m.d.comb += [
                            Assert(sent_open.any() == ~head.flit.first,
                                   f"{name}: a body flit at the head follows its head"),
                            Assert(head.flit.first | open_at[head.out],
                                   f"{name}: a body flit goes where its head went"),
                        ]
                    with m.Else():
                        m.d.comb += [
                            Assert(sent_open.any() == in_open[v],
                                   f"{name}: an empty queue's packet is open downstream"),
                            Assert(~in_open[v] | open_at[in_route[v]],
                                   f"{name}: ... at the output it was routed to"),
                        ]
                else:
                    with m.If(head_present):
                        m.d.comb += Assert(open_at[fixed] == ~head.flit.first,
                                           f"{name}: a body flit at the head follows its head")
                    with m.Else():
                        m.d.comb += Assert(open_at[fixed] == open_here,
                                           f"{name}: an empty queue's packet is open "
                                           f"downstream")

            # No flit is created: flits from input i leaving output o never exceed those
            # that entered at i routed to o; ``pending`` is what is still inside.
            for o in range(P):
                into = link.valid & (route_now == o)
                out_link = dut.outp[o]
                outof = out_link.valid & (out_link.payload.src == i)
                m.d.sync += pending[i][o].eq(pending[i][o] + into - outof)
                m.d.comb += Assert(~outof | (pending[i][o] != 0),
                                   f"in {i} to out {o}: no flit is created")
        # Contents of ``pending``: flits buffered at i for o, plus the one on o's link.
        for i in range(P):
            for o in range(P):
                held = []
                for q in range(len(queues)):
                    held += [present & (e.out == o) for present, e in queue[i, q]]
                out_link = dut.outp[o]
                held.append(out_link.valid & (out_link.payload.src == i))
                total = sum(h.as_unsigned() for h in held)
                m.d.comb += Assert(pending[i][o] == total,
                                   f"in {i} to out {o}: flits inside = in - out")

        # -- Claims on output VCs (a router with one VC has none) ----------------------------
        if V > 1:
            self._claims(m, dut, queues, queue, queue_out)
        else:
            for o in range(P):
                m.d.comb += Assert(~dut.state.claimed[o][0], f"out {o}: 1 VC, never claimed")
        # -- Bounded liveness by progress measures (see sim/formal/progress.py) -------------
        if self._measured:
            progress.progress_measures(
                m, dut, limits=self._limits, ports=P, credit_bound=live["credit_bound"],
                send_bound=live["send_bound"], queue=queue, queue_out=queue_out,
                waits=waits, env=env,
                out_owner=[[state[o][v][1] for v in range(V)] for o in range(P)],
                out_pos=out_pos, heads_too=live["head_bound"] is not None)

        # -- Switch allocation ---------------------------------------------------------------
        match = [[dut.state.match[i][o] for o in range(P)] for i in range(P)]
        elig = [dut.state.elig[i] for i in range(P)]
        for o in range(P):
            m.d.comb += Assert(_popcount_le1([match[i][o] for i in range(P)]),
                               f"allocator: at most one input per output {o}")
        for i in range(P):
            chosen = dut.state.chosen[i]
            m.d.comb += [
                Assert(_popcount_le1([match[i][o] for o in range(P)]),
                       f"allocator: at most one output per input {i}"),
                Assert(_popcount_le1(list(chosen)), f"allocator: one queue of input {i}"),
                Assert((chosen & ~elig[i]) == 0, f"allocator: input {i} sends an eligible queue"),
            ]
            for o in range(P):
                with m.If(match[i][o]):
                    m.d.comb += Assert(
                        Cat(*[chosen[q] & (queue_out[i][q] == o)
                              for q in range(len(queues))]).any(),
                        f"allocator: input {i} matched to output {o} sends a flit for it")
        # Which outputs each input's eligible queues ask for.
        asks = [[Cat(*[elig[i][q] & (queue_out[i][q] == o) for q in range(len(queues))]).any()
                 for o in range(P)] for i in range(P)]
        if self._allocator == "separable":
            contend = self._separable_fairness(m, dut, P, queues, queue_out)
        else:
            contend = self._islip_fairness(m, dut, P, queues, queue_out, match, asks)
        m.d.comb += Cover((contend & (contend - 1)) != 0, "two inputs contend for output 0")

        # -- Covers: the interesting states are reachable ------------------------------------
        out0 = dut.outp[0]
        m.d.comb += [
            Cover(dut.state.count[0][0] == D, "input 0 vc 0 buffer full"),
            Cover(dut.state.credit[0][0] == 0, "output 0 vc 0 out of credits"),
            Cover(dut.state.busy[0][V - 1], f"output 0 vc {V - 1} held by an open packet"),
            Cover(out0.valid & past(m, out0.valid, name="out0_valid_before"),
                  "back-to-back flits on output 0"),
            Cover(out0.valid & out0.payload.last & ~out0.payload.first,
                  "a multi-flit packet completes on output 0"),
        ]
        if voq:
            # Past a blocked packet: input 0 has packets of VC 0 open at two outputs at once.
            opened = Cat(*[state[o][0][0] & (state[o][0][1] == 0) for o in range(P)])
            m.d.comb += Cover((opened & (opened - 1)) != 0,
                              "input 0 vc 0 has packets open at two outputs (VOQ)")
        return m

    def _claims(self, m, dut, queues, queue, queue_out):
        """A claim on an output VC: its claimant waits for it, claims go round-robin.

        The claimant of output ``o``'s VC ``v`` has, at the head of its queue for that VC
        (and output, with VOQ), a head flit routed to ``o``; so it holds no open packet on
        ``v`` and is never the packet holding the VC. A head flit sent on a claimed VC is
        the claimant's. Every input whose head flit waits for the VC (held, or out of
        credits) is reported waiting, no other; the claim arbiter moves its pointer just
        past the input it gives the claim to, exactly when it gives one, and so serves a
        waiting input within ``P - 1`` claims.
        """
        outp = dut.outp
        P, V = len(outp), len(queues) // (len(outp) if self._voq else 1)
        for o in range(P):
            flit = outp[o].payload
            for v in range(V):
                claimed = dut.state.claimed[o][v]
                claimant = dut.state.claimant[o][v]
                busy = dut.state.busy[o][v]
                credit = dut.state.credit[o][v]
                waiting = dut.state.waiting[o][v]
                m.d.comb += Assert(claimant < P, f"out {o} vc {v}: the claimant is an input")
                # The output register shows next cycle the head flit sent under this claim.
                was_claimed = past(m, claimed, name=f"claimed_before_{o}_{v}")
                was_claimant = past(m, claimant, name=f"claimant_before_{o}_{v}")
                with m.If(outp[o].valid & (flit.vc == v) & flit.first & was_claimed):
                    m.d.comb += Assert(flit.src == was_claimant,
                                       f"out {o} vc {v}: only the claimant's head flit takes "
                                       f"a claimed VC")
                for i in range(P):
                    q = queues.index((v, None if (v, None) in queues else o))
                    present, head = queue[i, q][0]
                    for_it = present & head.flit.first & (queue_out[i][q] == o)
                    with m.If(claimed & (claimant == i)):
                        m.d.comb += Assert(for_it, f"out {o} vc {v}: the claimant's queue head "
                                                   f"is a head flit for it")
                    if self.params.get("fault") != "no_claims":     # its waiting is 0
                        m.d.comb += Assert(waiting[i] == (for_it & (busy | (credit == 0))),
                                           f"out {o} vc {v}: input {i} waits exactly while "
                                           f"its head flit finds the VC held or out of "
                                           f"credits")
                arbiter = dut.arbiters[f"claim_{o}_{v}"]
                round_robin_fairness(
                    m, name=f"claim arbiter {o} vc {v}", req=waiting,
                    grant=arbiter.grant, mask=arbiter.mask,
                    update=~claimed, serves=not self._measured)
        m.d.comb += Cover(dut.state.claimed[0][V - 1] & dut.state.busy[0][V - 1],
                          f"a head flit claims output 0 vc {V - 1} while it is held")

    def _head_progress(self, m, dut, live, name, i, q, present, head, reach):
        """Bounded liveness: the flit at the head of queue ``q`` of input ``i`` leaves in time.

        ``wait`` counts the cycles the present head has stayed; a body flit (its packet
        holds its output VC) must leave within ``body_bound`` cycles, a head flit (which may
        wait for another packet to free the VC) within ``head_bound``. With ``reach``,
        covers show both bounds are reached (so they are exact).
        """
        body, first = live["body_bound"], live["head_bound"]
        wait = Signal(range(max(body, first or 0) + 2), name=f"wait_{i}_{q}")
        stays = present & ~dut.state.deq[i][q]
        m.d.sync += wait.eq(Mux(stays, wait + 1, 0))
        # With no head bound, only the wait of a body flit is counted.
        if first is None:
            m.d.sync += wait.eq(Mux(stays & ~head.flit.first, wait + 1, 0))
        with m.If(present):
            with m.If(head.flit.first):
                if first is not None:
                    m.d.comb += Assert(wait <= first, f"{name}: a head flit at the queue head "
                                                      f"leaves within {first} cycles")
            with m.Else():
                m.d.comb += Assert(wait <= body, f"{name}: a body flit at the queue head "
                                                 f"leaves within {body} cycles")
        if i == 0 and q == 0 and reach:
            m.d.comb += [
                Cover(present & ~head.flit.first & (wait == body),
                      f"a body flit waits {body} cycles at a queue head"),
            ]
            if first is not None:
                m.d.comb += Cover(present & head.flit.first & (wait == first),
                                  f"a head flit waits {first} cycles at a queue head")
        return wait

    def _residence(self, m, dut, live, name, i, q, slots, entries, wait, written):
        """A flit accepted into queue ``q`` of input ``i`` leaves it within a bound.

        Every buffer slot counts the cycles since it was written. A flit ``n`` places behind
        the head has seen at most ``depth - 1 - n`` heads leave since it arrived, each
        within ``bound + 1`` cycles of reaching the head (``bound``: the larger of the
        body and head bounds), so its age is at most ``(depth - 1 - n) * (bound + 1)``
        plus the present head's wait; each cycle relates to the one before, and a flit
        leaves within ``depth * (bound + 1)`` cycles of being accepted. ``slots[n]`` is the
        buffer slot of queue position ``n``.
        """
        D = len(entries)
        B = max(live["body_bound"], live["head_bound"])
        limit = D * (B + 1)
        wptr = dut.state.wptr[i][q]
        ages = []
        for k in range(D):
            age = Signal(range(limit + 1), name=f"age_{i}_{q}_{k}")
            m.d.sync += age.eq(Mux(written & (wptr == k), 0,
                                   Mux(age == limit, limit, age + 1)))
            ages.append(age)
        ages = Array(ages)
        for n, ((present, _), slot) in enumerate(zip(entries, slots)):
            with m.If(present):
                m.d.comb += Assert(ages[slot] <= (D - 1 - n) * (B + 1) + wait,
                                   f"{name}: the flit at queue position {n} is at most "
                                   f"{D - 1 - n} head turns older than the head's wait")
        with m.If(entries[0][0]):
            m.d.comb += Assert(ages[slots[0]] < limit, f"{name}: an accepted flit leaves its "
                                                   f"queue within {limit} cycles")

    def _separable_fairness(self, m, dut, P, queues, queue_out):
        """Round-robin fairness of both separable stages in every iteration; returns output
        0's first-iteration requests.

        The requests of each iteration are computed here from the published grants, not
        read from the design: in the first, an input asks with its eligible queues; in a
        later one, an input not yet matched asks with its eligible queues whose output no
        earlier iteration matched. Each arbiter's pointer moves when its grant is used: an
        input arbiter's when the output it asks for grants it, an output arbiter's whenever
        it grants.
        """
        Q = len(queues)
        matched_in = Const(0, P)
        matched_out = Const(0, P)
        contend = None
        iterations = self._separable_iterations
        for k in range(iterations):
            tag = "" if k == 0 else f"_it{k}"
            label = "" if k == 0 else f" (iteration {k + 1})"
            picks = [dut.arbiters[f"sep_in_{i}{tag}"].grant for i in range(P)]
            grants = [dut.arbiters[f"sep_out_{o}{tag}"].grant for o in range(P)]
            for i in range(P):
                req = Cat(*[dut.state.elig[i][q] & ~matched_in[i]
                            & ~matched_out.bit_select(queue_out[i][q], 1) for q in range(Q)])
                if k:
                    m.d.comb += Assert((picks[i] & ~req) == 0,
                                       f"input arbiter {i}{label}: picks only a queue whose "
                                       f"input and output are unmatched")
                round_robin_fairness(
                    m, name=f"input arbiter {i}{label}", req=req, grant=picks[i],
                    mask=dut.arbiters[f"sep_in_{i}{tag}"].mask,
                    update=Cat(*[grants[o][i] for o in range(P)]).any(),
                    serves=not self._measured)
            for o in range(P):
                want = Cat(*[Cat(*[picks[i][q] & (queue_out[i][q] == o)
                                  for q in range(Q)]).any() for i in range(P)])
                round_robin_fairness(
                    m, name=f"output arbiter {o}{label}", req=want, grant=grants[o],
                    mask=dut.arbiters[f"sep_out_{o}{tag}"].mask, update=Const(1),
                    serves=not self._measured)
                contend = want if contend is None else contend
            matched_in = matched_in | Cat(*[Cat(*[grants[o][i] for o in range(P)]).any()
                                            for i in range(P)])
            matched_out = matched_out | Cat(*[grants[o].any() for o in range(P)])
        if iterations > 1:
            first = Cat(*[dut.arbiters[f"sep_out_{o}"].grant.any() for o in range(P)])
            later = (matched_out & ~first).any()
            if Q > 1:
                m.d.comb += Cover(later, "an output is matched in a later separable iteration")
            else:
                # One queue per input: an input that lost its pick has no other queue to
                # ask with, so the later iterations add nothing to the first.
                m.d.comb += Assert(~later, "one queue per input: no output is matched in a "
                                           "later separable iteration")
        return contend

    def _islip_fairness(self, m, dut, P, queues, queue_out, match, asks):
        """iSLIP's pointer rules and fairness; returns output 0's requests.

        The first iteration's requests are every input's eligible queues; an output's grant
        pointer moves only when its grant is accepted in the first iteration, an input's
        accept pointer whenever it accepts in the first iteration (iSLIP's rule, which
        keeps the outputs' pointers apart). The moves are computed here from the two
        stages' grants, not read from the design, so a pointer that does not move fails.
        """
        grants = [dut.arbiters[f"islip_g_{o}"].grant for o in range(P)]     # over inputs
        accepts = [dut.arbiters[f"islip_a_{i}"].grant for i in range(P)]    # over outputs
        for o in range(P):
            accepted = Cat(*[grants[o][i] & accepts[i][o] for i in range(P)]).any()
            round_robin_fairness(
                m, name=f"iSLIP grant arbiter {o}", req=Cat(*[asks[i][o] for i in range(P)]),
                grant=grants[o], mask=dut.arbiters[f"islip_g_{o}"].mask, update=accepted)
        for i in range(P):
            offered = Cat(*[grants[o][i] for o in range(P)])
            m.d.comb += Assert((accepts[i] & ~offered) == 0,
                               f"iSLIP input {i} accepts only a grant it was given")
            round_robin_fairness(
                m, name=f"iSLIP accept arbiter {i}", req=offered, grant=accepts[i],
                mask=dut.arbiters[f"islip_a_{i}"].mask, update=Const(1))
            # The queue of a matched input that goes: round-robin over its eligible queues.
            qreq = Cat(*[dut.state.elig[i][q] & Cat(*[match[i][o] & (queue_out[i][q] == o)
                                                       for o in range(P)]).any()
                         for q in range(len(queues))])
            round_robin_fairness(
                m, name=f"iSLIP queue arbiter {i}", req=qreq, grant=dut.state.chosen[i],
                mask=dut.arbiters[f"islip_q_{i}"].mask, update=Const(1))
            for o in range(P):
                with m.If(match[i][o]):
                    m.d.comb += Assert(asks[i][o], f"iSLIP matches input {i} to output {o} "
                                                   f"only on a request")
        if self._iterations > 1:
            first = Cat(*[accepts[i].any() for i in range(P)])
            later = Cat(*[Cat(*match[i]).any() for i in range(P)]) & ~first
            m.d.comb += Cover(later.any(), "an input is matched in a later iSLIP iteration")
        return Cat(*[asks[i][0] for i in range(P)])
