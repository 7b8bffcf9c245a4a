"""The router's per-port components: an input unit per input link, an output unit per output."""

from collections.abc import Callable

from amaranth import Array, Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .allocator import request_signature
from .arbiter import RoundRobinArbiter
from .errors import check_int
from .router_params import RouterParams, bits

__all__ = ["link_signature", "lookup_signature", "status_signature", "switch_signature",
           "heads_signature", "InputUnit", "OutputUnit", "InputState", "OutputState"]


def _check_unit(params, index):
    """Refuse a unit's parameters unless ``params`` is a RouterParams and ``index`` a port."""
    if not isinstance(params, RouterParams):
        raise TypeError(f"params must be a RouterParams, not {params!r}")
    check_int("index", index, 0, params.ports - 1)


def link_signature(layout: data.StructLayout, vcs: int) -> wiring.Signature:
    """A credit link: ``valid`` and a flit forward, one ``credit`` pulse per VC back."""
    return wiring.Signature({
        "valid": Out(1),
        "payload": Out(layout),
        "credit": In(vcs),
    })


def lookup_signature(params: RouterParams) -> wiring.Signature:
    """A routing-table lookup, from the side that asks: ``dest`` out, its ``port`` back in
    the same cycle."""
    return wiring.Signature({
        "dest": Out(params.dest_bits),
        "port": In(params.port_bits),
    })


def status_signature(params: RouterParams) -> wiring.Signature:
    """What an output unit tells every input unit about its VCs, one bit (or entry) per VC:
    it ``has_credit``, it is ``busy`` (held by an open packet), it is ``claimed``, and by
    which input (``claimant``)."""
    V = params.vcs
    return wiring.Signature({
        "has_credit": Out(V),
        "busy": Out(V),
        "claimed": Out(V),
        "claimant": Out(data.ArrayLayout(range(params.ports), V)),
    })


def switch_signature(params: RouterParams) -> wiring.Signature:
    """What an input unit sends every output unit through the switch: the ``flit`` of its
    chosen queue and the outputs it is matched to (``match``, one bit per output, at most
    one set); the output it is matched to takes the flit."""
    return wiring.Signature({
        "match": Out(params.ports),
        "flit": Out(params.flit_layout),
    })


def heads_signature(params: RouterParams) -> wiring.Signature:
    """What one input unit tells one output unit about its queue heads routed there:
    ``waiting``, one bit per VC, a head flit finds the VC held or out of credits (it asks
    for a claim); with ``params.stats`` also ``starved``, a head has no credit."""
    members = {"waiting": Out(params.vcs)}
    if params.stats:
        members["starved"] = Out(1)
    return wiring.Signature(members)


class InputState:
    """An input unit's state and decisions, as signals a proof or a waveform reads.

    ``[q]`` indexes a queue (numbered as ``params.queues``), ``[v]`` a VC.

    Members
    -------
    count, rptr, wptr : [q]
        Flits held by each queue, and its read and write pointers in its D slots.
    q_in, route_in
        The queue and output port of the flit arriving this cycle.
    held : [v]
        The route of the open packet arriving on each VC (for its body flits).
    spread_turn, in_spread
        With ``spread``: the spread turn, and whether this cycle's lookup hit a spread port.
    elig, deq
        Queues that may send this cycle; the one dequeued (one-hot).
    match, chosen, granted
        The outputs the allocator matched the input to (one bit per output); the queue it
        picked (one-hot); whether the input sends.
    """

    def __init__(self, params: RouterParams) -> None:
        P, V, D, Q = params.ports, params.vcs, params.buffer_depth, params.queue_count
        self.count = [Signal(range(D + 1), name=f"count_{q}") for q in range(Q)]
        self.rptr = [Signal(range(D), name=f"rptr_{q}") for q in range(Q)]
        self.wptr = [Signal(range(D), name=f"wptr_{q}") for q in range(Q)]
        self.q_in = Signal(range(Q), name="q_in")
        self.route_in = Signal(params.port_bits, name="route_in")
        self.held = [Signal(params.port_bits, name=f"held_{v}") for v in range(V)]
        self.spread_turn = Signal(range(max(1, len(params.spread))), name="spread_turn")
        self.in_spread = Signal(name="in_spread")
        self.elig = Signal(Q, name="elig")
        self.deq = Signal(Q, name="deq")
        self.match = Signal(P, name="match")
        self.chosen = Signal(Q, name="chosen")
        self.granted = Signal(name="granted")


class InputUnit(wiring.Component):
    """One input port of the router: its queues, route lookup, eligibility and dequeue.

    All queues of the input live in one memory, queue ``q`` at ``[q*D, q*D + D)``. A head
    flit's route is looked up (``lookup``) as it arrives, or with ``spread`` taken in turn
    from the spread ports, and stored with every flit of its packet. A queue is eligible
    when it holds a flit whose output VC has a credit and, for a head flit, is free and
    unclaimed or claimed by this input (as the outputs tell, ``status[o]``); the switch
    allocator (``request``) picks at most one queue, whose head goes to its output through
    the switch (``switch``) and whose credit goes back on the link. The heads that wait for
    an output VC ask that output for a claim (``heads[o]``).

    Parameters
    ----------
    params : RouterParams
        The router's parameters.
    index : int
        This input's port number (what a claim names).
    memory : class
        The memory class of the buffer (``amaranth.lib.memory.Memory``, or a model of it
        with the same ports).

    Members
    -------
    link : In(link_signature)
        Flits in, credits back.
    lookup : Out(lookup_signature)
        The routing table, asked for the destination of the arriving flit.
    request : Out(request_signature)
        Eligible queues and their outputs to the switch allocator; its matching back.
    status : In(status_signature).array(ports)
        The VCs of each output unit.
    switch : Out(switch_signature)
        The flit sent, and to which output, to every output unit.
    heads : Out(heads_signature).array(ports)
        The queue heads routed to each output unit.
    blocked : Out(STATS_WIDTH)
        With ``params.stats``: cycles in which the input held a flit and sent none.

    ``buffer`` is the memory and ``state`` (:class:`InputState`) the signals a proof reads.
    A variant for proofs is a subclass that overrides :meth:`next_spread_turn`.
    """

    def __init__(self, params: RouterParams, *, index: int,
                 memory: "Callable[..., Memory]" = Memory) -> None:
        _check_unit(params, index)
        self._params, self._index = params, index
        members = {
            "link": In(link_signature(params.flit_layout, params.vcs)),
            "lookup": Out(lookup_signature(params)),
            "request": Out(request_signature(params)),
            "status": In(status_signature(params)).array(params.ports),
            "switch": Out(switch_signature(params)),
            "heads": Out(heads_signature(params)).array(params.ports),
        }
        if params.stats:
            members["blocked"] = Out(params.STATS_WIDTH)
        super().__init__(members)
        # A memory rather than an array of registers: simulators index it directly instead
        # of building a multiplexer per read, which keeps Verilator builds small.
        self.buffer = memory(shape=params.entry_layout,
                             depth=params.queue_count * params.buffer_depth, init=[])
        self.state = InputState(params)

    params = property(lambda self: self._params, doc="The router's RouterParams.")
    index = property(lambda self: self._index, doc="This input's port number.")

    def next_spread_turn(self, turn: Value, last: int) -> Value:
        """The spread turn after ``turn`` (``0..last``): the next one, wrapping around."""
        return Mux(turn == last, 0, turn + 1)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        p, i, st = self._params, self._index, self.state
        P, D = p.ports, p.buffer_depth
        link, flit = self.link, self.link.payload

        # Route of the arriving flit: looked up for a head, the packet's for a body flit.
        held = Array(st.held)
        looked_up = self.lookup.port
        m.d.comb += self.lookup.dest.eq(flit.dest)
        if p.spread:
            turn, in_spread = st.spread_turn, st.in_spread
            m.d.comb += in_spread.eq(Cat(*[looked_up == port for port in p.spread]).any())
            # A chain of multiplexers, not an `Array` of constants: its Verilog is one
            # continuous assignment, which Icarus evaluates from time 0 (the `case` block
            # an `Array` becomes is only evaluated once `turn` first changes).
            spread_port = Const(p.spread[0], bits(P))
            for k, port in enumerate(p.spread[1:], start=1):
                spread_port = Mux(turn == k, port, spread_port)
            table_route = Mux(in_spread, spread_port, looked_up)
            with m.If(link.valid & flit.first & in_spread):
                m.d.sync += turn.eq(self.next_spread_turn(turn, len(p.spread) - 1))
        else:
            table_route = looked_up
        route = st.route_in
        m.d.comb += route.eq(Mux(flit.first, table_route, held[flit.vc]))
        with m.If(link.valid & flit.first):
            m.d.sync += held[flit.vc].eq(route)

        # Enqueue.
        entry = Signal(p.entry_layout, name="entry")
        m.d.comb += [entry.flit.eq(flit), entry.out.eq(route)]
        m.submodules.buffer = store = self.buffer
        q_in = st.q_in
        m.d.comb += q_in.eq(flit.vc * P + route if p.voq else flit.vc)
        write = store.write_port()
        m.d.comb += [write.addr.eq(q_in * D + Array(st.wptr)[q_in]),
                     write.data.eq(entry), write.en.eq(link.valid)]

        # Output VC status, by output, for the queues whose output is not fixed.
        fields = ("has_credit", "busy", "claimed", "claimant")
        by_out = {name: [Array(getattr(self.status[o], name)[v] for o in range(P))
                         for v in range(p.vcs)] for name in fields}

        # Per queue: pointers, head, eligibility.
        waiting = [[Const(0, 1)] * p.vcs for _ in range(P)]    # waiting[o][v]
        starved = [[] for _ in range(P)]                        # starved[o]: per queue
        head_entries, nonempty = [], []
        for q, (v, fixed) in enumerate(p.queues):
            count, rptr, wptr = st.count[q], st.rptr[q], st.wptr[q]
            we = link.valid & (q_in == q)
            with m.If(we):
                m.d.sync += wptr.eq(Mux(wptr == D - 1, 0, wptr + 1))
            with m.If(st.deq[q]):
                m.d.sync += rptr.eq(Mux(rptr == D - 1, 0, rptr + 1))
            m.d.sync += count.eq(count + we - st.deq[q])
            read = store.read_port(domain="comb")
            m.d.comb += read.addr.eq(q * D + rptr)
            # Materialise the head and the per-output lookups once: every use of an Array
            # index would otherwise be a separate multiplexer in the netlist.
            head = Signal(p.entry_layout, name=f"head_{q}")
            m.d.comb += head.eq(read.data)
            if fixed is not None:
                out = Const(fixed, bits(P))
                has_credit, vc_busy, vc_claimed, vc_claimant = (
                    getattr(self.status[fixed], name)[v] for name in fields)
            else:
                out = head.out
                has_credit = Signal(name=f"has_credit_{q}")
                vc_busy = Signal(name=f"vc_busy_{q}")
                vc_claimed = Signal(name=f"vc_claimed_{q}")
                vc_claimant = Signal(range(P), name=f"vc_claimant_{q}")
                m.d.comb += [has_credit.eq(by_out["has_credit"][v][out]),
                             vc_busy.eq(by_out["busy"][v][out]),
                             vc_claimed.eq(by_out["claimed"][v][out]),
                             vc_claimant.eq(by_out["claimant"][v][out])]
            may_open = ~vc_busy & (~vc_claimed | (vc_claimant == i))
            m.d.comb += st.elig[q].eq(
                (count != 0) & has_credit & (~head.flit.first | may_open))
            # A head flit waits for its output VC while the VC is held or out of credits:
            # either way other inputs' packets may keep taking what it needs.
            blocked_head = (count != 0) & head.flit.first & (vc_busy | ~has_credit)
            for o in ([fixed] if fixed is not None else range(P)):
                waiting[o][v] = waiting[o][v] | (blocked_head & (out == o))
            if p.stats:
                nonempty.append(count != 0)
                for o in range(P):
                    starved[o].append((count != 0) & ~has_credit & (out == o))
            m.d.comb += self.request.outs[q].eq(out)
            head_entries.append(head)

        # Switch allocation: the matching and the queue that goes, back from the allocator.
        m.d.comb += [self.request.elig.eq(st.elig), st.match.eq(self.request.match),
                     st.chosen.eq(self.request.chosen),
                     st.granted.eq(st.match.any()),
                     st.deq.eq(Mux(st.granted, st.chosen, 0))]

        # Dequeue: the chosen head to the switch, its credit back upstream.
        sel_flit = Signal(p.flit_layout, name="sel_flit")
        sel_vc = Signal(p.vc_bits, name="sel_vc")
        for q, (v, _) in enumerate(p.queues):
            with m.If(st.chosen[q]):
                m.d.comb += [sel_flit.eq(head_entries[q].flit), sel_vc.eq(v)]
        credit_back = Signal(p.vcs, name="credit_back")
        for v in range(p.vcs):
            m.d.comb += credit_back[v].eq(st.granted & (sel_vc == v))
        m.d.sync += link.credit.eq(credit_back)
        m.d.comb += [self.switch.match.eq(st.match), self.switch.flit.eq(sel_flit)]
        for o in range(P):
            m.d.comb += self.heads[o].waiting.eq(Cat(*waiting[o]))
            if p.stats:
                m.d.comb += self.heads[o].starved.eq(Cat(*starved[o]).any())

        if p.stats:
            blocked = Signal(name="blocked_now")
            m.d.comb += blocked.eq(Cat(*nonempty).any() & ~st.granted)
            m.d.sync += self.blocked.eq(self.blocked + blocked)
        return m


class OutputState:
    """An output unit's state, as signals a proof or a waveform reads; ``[v]`` is a VC.

    Members
    -------
    credit, busy : [v]
        Credits of each output VC; held by an open packet.
    claimed, claimant, waiting : [v]
        Claims on the VCs: claimed, by which input, and the inputs whose head flits wait
        for the VC (one bit per input).
    """

    def __init__(self, params: RouterParams) -> None:
        P, V, D = params.ports, params.vcs, params.buffer_depth
        self.credit = [Signal(range(D + 1), init=D, name=f"credit_{v}") for v in range(V)]
        self.busy = [Signal(name=f"busy_{v}") for v in range(V)]
        self.claimed = [Signal(name=f"claimed_{v}") for v in range(V)]
        self.claimant = [Signal(range(P), name=f"claimant_{v}") for v in range(V)]
        self.waiting = [Signal(P, name=f"waiting_{v}") for v in range(V)]


class OutputUnit(wiring.Component):
    """One output port of the router: the switch column, credits, VC ownership and claims.

    Of the inputs whose ``switch`` matches them to this output (the allocator matches at
    most one), the flit goes out on the link in the next cycle. Each VC counts its credits (spent by a
    flit sent, returned by the link's ``credit``), is held from a packet's head to its
    tail, and keeps one claim: given round-robin (``claim_arbiters[v]``) to the inputs whose
    head flits wait for it (``heads[i]``), ended when the claimant's head takes the VC. With
    one VC there are no claims. Every input unit sees the VCs' ``status``.

    Parameters
    ----------
    params : RouterParams
        The router's parameters.
    index : int
        This output's port number.
    arbiter : class
        The claim arbiter class (:class:`~supernode.rtl.arbiter.RoundRobinArbiter`, or a variant).

    Members
    -------
    link : Out(link_signature)
        Flits out, credits in.
    switch : In(switch_signature).array(ports)
        Each input unit's flit, and the outputs it is matched to.
    heads : In(heads_signature).array(ports)
        Each input unit's queue heads routed here.
    status : Out(status_signature)
        The VCs, to every input unit.
    sent, credit_stalls : Out(STATS_WIDTH)
        With ``params.stats``: flits sent; cycles in which it sent nothing while a queue
        head routed to it waited for a credit.

    ``state`` (:class:`OutputState`) holds the signals a proof reads. A variant for proofs
    is a subclass that overrides :meth:`claim_requests`.
    """

    def __init__(self, params: RouterParams, *, index: int,
                 arbiter: "type[RoundRobinArbiter]" = RoundRobinArbiter) -> None:
        _check_unit(params, index)
        self._params, self._index = params, index
        members = {
            "link": Out(link_signature(params.flit_layout, params.vcs)),
            "switch": In(switch_signature(params)).array(params.ports),
            "heads": In(heads_signature(params)).array(params.ports),
            "status": Out(status_signature(params)),
        }
        if params.stats:
            members["sent"] = Out(params.STATS_WIDTH)
            members["credit_stalls"] = Out(params.STATS_WIDTH)
        super().__init__(members)
        self.state = OutputState(params)
        # With one VC an input has one queue, fairness to inputs is fairness to queues, and
        # an output has no claims.
        self.claim_arbiters = ([arbiter(n=params.ports) for _ in range(params.vcs)]
                               if params.vcs > 1 else [])

    params = property(lambda self: self._params, doc="The router's RouterParams.")
    index = property(lambda self: self._index, doc="This output's port number.")

    def claim_requests(self, waiting: Value) -> Value:
        """What a claim arbiter sees of the inputs ``waiting`` for its VC: all of them."""
        return waiting

    def elaborate(self, platform: object) -> Module:
        m = Module()
        p, o, st, link = self._params, self._index, self.state, self.link
        P, V = p.ports, p.vcs
        for v, arbiter in enumerate(self.claim_arbiters):
            m.submodules[f"claim_{v}"] = arbiter
        m.d.comb += [self.status.has_credit.eq(Cat(*[credit != 0 for credit in st.credit])),
                     self.status.busy.eq(Cat(*st.busy)),
                     self.status.claimed.eq(Cat(*st.claimed))]
        for v in range(V):
            m.d.comb += self.status.claimant[v].eq(st.claimant[v])

        # The switch column: the flit of the input matched to this output.
        sends = [self.switch[i].match[o] for i in range(P)]
        any_win = Signal(name="out_win")
        win = Signal(p.flit_layout, name="out_flit")
        m.d.comb += any_win.eq(Cat(*sends).any())
        for i in range(P):
            with m.If(sends[i]):
                m.d.comb += win.eq(self.switch[i].flit)
        m.d.sync += [link.valid.eq(any_win), link.payload.eq(win)]
        for v in range(V):
            credit, busy, claimed = st.credit[v], st.busy[v], st.claimed[v]
            spend = any_win & (win.vc == v)
            m.d.sync += credit.eq(credit - spend + link.credit[v])
            with m.If(spend & win.first & ~win.last):
                m.d.sync += busy.eq(1)
            with m.If(spend & win.last & ~win.first):
                m.d.sync += busy.eq(0)
            # A claim is given while a head flit waits and ends when the claimant's head
            # flit takes the VC (no other head flit can while it stands).
            wait = st.waiting[v]
            m.d.comb += wait.eq(self.claim_requests(
                Cat(*[self.heads[i].waiting[v] for i in range(P)])))
            if V == 1:
                continue        # no claims: ``claimed`` stays 0
            arbiter = self.claim_arbiters[v]
            m.d.comb += [arbiter.req.eq(wait), arbiter.update.eq(~claimed)]
            with m.If(spend & win.first):
                m.d.sync += claimed.eq(0)
            with m.Elif(~claimed & wait.any()):
                m.d.sync += claimed.eq(1)
                for i in range(P):
                    with m.If(arbiter.grant[i]):
                        m.d.sync += st.claimant[v].eq(i)

        if p.stats:
            m.d.sync += self.sent.eq(self.sent + link.valid)
            stalled = Signal(name="credit_stall")
            m.d.comb += stalled.eq(
                Cat(*[self.heads[i].starved for i in range(P)]).any() & ~any_win)
            m.d.sync += self.credit_stalls.eq(self.credit_stalls + stalled)
        return m
