"""Input-queued virtual-channel switch router with wormhole switching and credit flow control."""

from amaranth import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .allocator import ALLOCATOR_CLASSES, ARBITER_ROLES
from .arbiter import RoundRobinArbiter
from .published import Published
from .router_params import ALLOCATORS, RouterParams, bits as _bits

__all__ = ["ALLOCATORS", "Router", "RouterParams", "link_signature", "config_signature",
           "stats_signature"]


def link_signature(layout: data.StructLayout, vcs: int) -> wiring.Signature:
    """A credit link: ``valid`` and a flit forward, one ``credit`` pulse per VC back."""
    return wiring.Signature({
        "valid": Out(1),
        "payload": Out(layout),
        "credit": In(vcs),
    })


def config_signature(*, destinations: int, ports: int) -> wiring.Signature:
    """Routing-table write port: when ``valid``, ``table[dest] <= port``."""
    return wiring.Signature({
        "valid": Out(1),
        "dest": Out(_bits(destinations)),
        "port": Out(_bits(ports)),
    })


def stats_signature(params: RouterParams) -> wiring.Signature:
    """Performance counters of a router, counted from reset (see :class:`Router`)."""
    width = params.STATS_WIDTH
    return wiring.Signature({
        "sent": Out(width).array(params.ports),
        "blocked": Out(width).array(params.ports),
        "credit_stalls": Out(width).array(params.ports),
    })


class Router(wiring.Component):
    """Input-queued virtual-channel router (wormhole, credit-based flow control per VC).

    Every input port keeps one FIFO per virtual channel, or with ``voq`` one queue per
    (virtual channel, output port). The route of a packet is looked up in the routing
    table when its head flit arrives and is stored with every flit of the packet. Each
    cycle a switch allocator (separable input-first, or iSLIP) matches inputs to outputs;
    a head flit may only go when the output VC it needs is free, every flit needs a
    credit for its VC at the output. A packet keeps its VC from hop to hop; the output
    VC is held from its head to its tail, so packets never interleave on a VC.

    A head flit that finds its output VC held by another packet, or out of credits,
    claims it: each such output VC keeps one claim, given round-robin to the inputs
    whose head flits wait for it, and once the VC is free and has a credit only the
    claimant's head may take it. The switch arbiters are fair to inputs, not to their
    VCs; without the claim a head flit can lose the freed VC every time to the input
    that held it, or find the VC's credits spent by other inputs' short packets every
    time the output arbiter comes round to it (and then block its own input's other
    VC, which the input arbiter keeps behind it). With one VC an input has one
    queue, fairness to inputs is fairness to queues, and a router has no claims (a claim
    there would only add a second round-robin pointer to a head flit's wait).

    Parameters
    ----------
    params : RouterParams
        Everything about the router that is a number (see
        :class:`~supernode.rtl.router_params.RouterParams`); or, instead, its fields as keywords.

    With ``params.stats`` the router has performance counters (``stats`` member,
    ``STATS_WIDTH`` bits each, counted from reset): per output port the flits ``sent`` and
    the ``credit_stalls``, cycles in which it sent nothing while a queue head routed to it
    waited for a credit; per input port the cycles ``blocked``, in which it held at least
    one flit and sent none. The routing table can be rewritten at run time through ``cfg``
    (a write takes effect from the next cycle; one naming a destination beyond the table or
    a port the router does not have is ignored).

    Members
    -------
    inp : In(link_signature).array(ports)
        Input links: flits in, credits back.
    outp : Out(link_signature).array(ports)
        Output links: flits out, credits in.
    cfg : In(config_signature)
        Routing-table write port.
    stats : Out(stats_signature)
        Performance counters, present when ``params.stats``.

    The router also publishes its state, for proofs and waveforms (read-only):
    ``table`` and ``buffers[i]`` (the memories), ``state`` (:class:`RouterState`: queue
    counters and pointers, held routes, eligibility, output credits, VC ownership, claims,
    the switch matching), ``switch_allocator`` (the allocator component, joined to the
    router by :func:`~supernode.rtl.allocator.allocation_signature`), ``claim_arbiters`` and
    ``arbiters`` (every :class:`~supernode.rtl.arbiter.RoundRobinArbiter`, the allocator's included,
    by name; a name it lacks is a ``KeyError`` naming it). ``memory`` is the memory class
    (``amaranth.lib.memory.Memory``, or a model of it with the same ports); variants for
    proofs are subclasses that replace entries of :attr:`ARBITERS` or
    :attr:`ALLOCATOR_CLASSES`, or override :meth:`next_spread_turn` or
    :meth:`claim_requests`.
    """

    #: The arbiter class of each role: ``claim`` (per output VC) and the allocators' roles
    #: (:data:`~supernode.rtl.allocator.ARBITER_ROLES`: ``separable_input``, ``separable_output``,
    #: ``islip_grant``, ``islip_accept``, ``islip_follow``, ``islip_queue``).
    ARBITERS = {role: RoundRobinArbiter for role in ("claim",) + ARBITER_ROLES}

    #: The switch allocator component of each ``params.allocator``
    #: (:class:`~supernode.rtl.allocator.SeparableAllocator`, :class:`~supernode.rtl.allocator.ISlipAllocator`).
    ALLOCATOR_CLASSES = ALLOCATOR_CLASSES

    def __init__(self, params: "RouterParams | None" = None, /, *, memory=Memory, **options):
        if params is None:
            params = RouterParams(**options)
        elif options:
            raise TypeError("give the router a RouterParams or its fields as keywords, "
                            "not both")
        elif not isinstance(params, RouterParams):
            raise TypeError(f"params must be a RouterParams, not {params!r}")
        self._params = params
        link = link_signature(params.flit_layout, params.vcs)
        members = {
            "inp": In(link).array(params.ports),
            "outp": Out(link).array(params.ports),
            "cfg": In(config_signature(destinations=params.destinations, ports=params.ports)),
        }
        if params.stats:
            members["stats"] = Out(stats_signature(params))
        super().__init__(members)
        P, Q, D = params.ports, params.queue_count, params.buffer_depth
        # Memories rather than arrays of registers: simulators index them directly instead
        # of building a multiplexer per read, which keeps Verilator builds small.
        self.table = memory(shape=params.port_bits, depth=params.destinations,
                            init=params.routes)
        # All queues of one input live in one memory, queue q at [q*D, q*D + D).
        self.buffers = [memory(shape=params.entry_layout, depth=Q * D, init=[])
                        for _ in range(P)]
        self.state = RouterState(params)
        self.switch_allocator = self.ALLOCATOR_CLASSES[params.allocator](
            params, arbiters=self.ARBITERS)
        self.claim_arbiters = self._make_claim_arbiters()
        self.arbiters = Published("router", "arbiter")
        self.arbiters.update({**self.claim_arbiters, **self.switch_allocator.arbiters})

    def _make_claim_arbiters(self) -> dict:
        p = self._params
        P, V = p.ports, p.vcs
        arb = {}
        if V > 1:           # with one VC a router has no claims
            for o in range(P):
                for v in range(V):
                    arb[f"claim_{o}_{v}"] = self.ARBITERS["claim"](n=P)
        return arb

    def next_spread_turn(self, turn, last: int):
        """The spread turn after ``turn`` (``0..last``): the next one, wrapping around."""
        return Mux(turn == last, 0, turn + 1)

    def claim_requests(self, waiting):
        """What a claim arbiter sees of the inputs ``waiting`` for its output VC: all."""
        return waiting

    params = property(lambda self: self._params, doc="The router's RouterParams.")
    ports = property(lambda self: self._params.ports, doc="Number of ports.")
    vcs = property(lambda self: self._params.vcs, doc="Virtual channels per port.")
    buffer_depth = property(lambda self: self._params.buffer_depth, doc="Flits per VC buffer.")
    flit_width = property(lambda self: self._params.flit_width, doc="Payload bits per flit.")
    allocator = property(lambda self: self._params.allocator, doc="Switch allocator.")
    separable_iterations = property(lambda self: self._params.separable_iterations,
                                    doc="Iterations of the separable allocator.")
    islip_iterations = property(lambda self: self._params.islip_iterations,
                                doc="iSLIP iterations.")
    voq = property(lambda self: self._params.voq, doc="Virtual output queues at the inputs.")
    destinations = property(lambda self: self._params.destinations, doc="Routing-table size.")
    routes = property(lambda self: self._params.routes, doc="Initial routing table.")
    spread = property(lambda self: self._params.spread, doc="Load-balanced output ports.")
    has_stats = property(lambda self: self._params.stats, doc="Performance counters present.")
    flit_layout = property(lambda self: self._params.flit_layout, doc="Layout of a flit.")
    latency = property(lambda self: self._params.latency,
                       doc="Zero-load cycles from a flit valid on an input to valid on an output.")
    credit_round_trip = property(lambda self: self._params.credit_round_trip,
                                 doc="Cycles from spending a credit to spending it again.")

    def elaborate(self, platform):
        m = Module()
        p = self._params
        P, V, D = p.ports, p.vcs, p.buffer_depth
        layout = p.flit_layout
        entry_layout = p.entry_layout
        queues = p.queues
        Q = len(queues)

        st = self.state
        for name, arbiter in self.claim_arbiters.items():
            m.submodules[name] = arbiter
        # Routing table, writable through cfg.
        m.submodules.table = table = self.table
        table_wr = table.write_port()
        # The port field can name a missing port when the radix is not a power of two: a
        # packet routed there would never leave, so such a write is ignored.
        m.d.comb += [table_wr.addr.eq(self.cfg.dest), table_wr.data.eq(self.cfg.port),
                     table_wr.en.eq(self.cfg.valid & (self.cfg.dest < p.destinations)
                                    & (self.cfg.port < P))]

        # Output state: credits and VC ownership per (output, vc).
        credit, busy = st.credit, st.busy
        credit_by_out = [Array(credit[o][v] for o in range(P)) for v in range(V)]
        busy_by_out = [Array(busy[o][v] for o in range(P)) for v in range(V)]
        # Claims on output VCs: claimed[o][v], and by which input.
        claimed, claimant = st.claimed, st.claimant
        claimed_by_out = [Array(claimed[o][v] for o in range(P)) for v in range(V)]
        claimant_by_out = [Array(claimant[o][v] for o in range(P)) for v in range(V)]
        # waiting[o][v][i]: input i's head flit for output o, VC v finds the VC held or out
        # of credits.
        waiting = [[[Const(0, 1)] * P for _ in range(V)] for _ in range(P)]

        # Per input: queues and their eligibility.
        heads = []      # heads[i][q]: View(entry_layout) of the head entry
        outs = []       # outs[i][q]: output port of the head
        elig = []       # elig[i]: Q-bit vector of queues that may send this cycle
        deq = []        # deq[i]: Q-bit one-hot of the queue dequeued this cycle
        holding = []    # holding[i]: input i has at least one flit buffered
        starved = [[] for _ in range(P)]  # starved[o]: heads routed to o without a credit
        for i in range(P):
            link = self.inp[i]
            flit = link.payload
            # Route lookup on arrival.
            held = Array(st.held[i])
            lookup = table.read_port(domain="comb")
            looked_up = lookup.data
            m.d.comb += lookup.addr.eq(flit.dest)
            if p.spread:
                turn, in_spread = st.spread_turn[i], st.in_spread[i]
                m.d.comb += in_spread.eq(Cat(*[looked_up == port for port in p.spread]).any())
                # A chain of multiplexers, not an `Array` of constants: its Verilog is one
                # continuous assignment, which Icarus evaluates from time 0 (the `case`
                # block an `Array` becomes is only evaluated once `turn` first changes).
                spread_port = Const(p.spread[0], _bits(P))
                for k, port in enumerate(p.spread[1:], start=1):
                    spread_port = Mux(turn == k, port, spread_port)
                table_route = Mux(in_spread, spread_port, looked_up)
                with m.If(link.valid & flit.first & in_spread):
                    m.d.sync += turn.eq(self.next_spread_turn(turn, len(p.spread) - 1))
            else:
                table_route = looked_up
            route = st.route_in[i]
            m.d.comb += route.eq(Mux(flit.first, table_route, held[flit.vc]))
            with m.If(link.valid & flit.first):
                m.d.sync += held[flit.vc].eq(route)

            entry = Signal(entry_layout, name=f"entry_{i}")
            m.d.comb += [entry.flit.eq(flit), entry.out.eq(route)]

            deq_i, e_i = st.deq[i], st.elig[i]
            heads_i, outs_i, nonempty_i = [], [], []
            m.submodules[f"buffer_{i}"] = store = self.buffers[i]
            wptrs = st.wptr[i]
            q_in = st.q_in[i]
            if p.voq:
                m.d.comb += q_in.eq(flit.vc * P + route)
            else:
                m.d.comb += q_in.eq(flit.vc)
            write = store.write_port()
            m.d.comb += [write.addr.eq(q_in * D + Array(wptrs)[q_in]),
                         write.data.eq(entry), write.en.eq(link.valid)]
            for q, (v, fixed) in enumerate(queues):
                count, rptr = st.count[i][q], st.rptr[i][q]
                wptr = wptrs[q]
                we = link.valid & (q_in == q)
                with m.If(we):
                    m.d.sync += wptr.eq(Mux(wptr == D - 1, 0, wptr + 1))
                with m.If(deq_i[q]):
                    m.d.sync += rptr.eq(Mux(rptr == D - 1, 0, rptr + 1))
                m.d.sync += count.eq(count + we - deq_i[q])
                read = store.read_port(domain="comb")
                m.d.comb += read.addr.eq(q * D + rptr)
                # Materialise the head and the per-output lookups once: every use of an
                # Array index would otherwise be a separate multiplexer in the netlist.
                head = Signal(entry_layout, name=f"head_{i}_{q}")
                m.d.comb += head.eq(read.data)
                if fixed is not None:
                    out = Const(fixed, _bits(P))
                    has_credit = credit[fixed][v] != 0
                    vc_busy = busy[fixed][v]
                    vc_claimed, vc_claimant = claimed[fixed][v], claimant[fixed][v]
                else:
                    out = head.out
                    has_credit = Signal(name=f"has_credit_{i}_{q}")
                    vc_busy = Signal(name=f"vc_busy_{i}_{q}")
                    vc_claimed = Signal(name=f"vc_claimed_{i}_{q}")
                    vc_claimant = Signal(range(P), name=f"vc_claimant_{i}_{q}")
                    m.d.comb += [has_credit.eq(credit_by_out[v][out] != 0),
                                 vc_busy.eq(busy_by_out[v][out]),
                                 vc_claimed.eq(claimed_by_out[v][out]),
                                 vc_claimant.eq(claimant_by_out[v][out])]
                may_open = ~vc_busy & (~vc_claimed | (vc_claimant == i))
                m.d.comb += e_i[q].eq(
                    (count != 0) & has_credit & (~head.flit.first | may_open))
                # A head flit waits for its output VC while the VC is held or out of
                # credits: either way other inputs' packets may keep taking what it needs.
                blocked_head = (count != 0) & head.flit.first & (vc_busy | ~has_credit)
                for o in ([fixed] if fixed is not None else range(P)):
                    waiting[o][v][i] = waiting[o][v][i] | (blocked_head & (out == o))
                if p.stats:
                    nonempty_i.append(count != 0)
                    for o in range(P):
                        starved[o].append((count != 0) & ~has_credit & (out == o))
                heads_i.append(head)
                outs_i.append(out)
            heads.append(heads_i)
            outs.append(outs_i)
            holding.append(Cat(*nonempty_i).any() if p.stats else None)
            elig.append(e_i)
            deq.append(deq_i)

        # Switch allocation: match[i][o], and per input the queue that goes.
        match, chosen = st.match, st.chosen
        m.submodules.switch_allocator = allocator = self.switch_allocator
        requests = allocator.signature.flip().create(path=("alloc",))
        wiring.connect(m, requests=requests, allocator=allocator)
        for i in range(P):
            m.d.comb += [requests.elig[i].eq(elig[i]), chosen[i].eq(requests.chosen[i])]
            for q in range(Q):
                m.d.comb += requests.outs[i][q].eq(outs[i][q])
            for o in range(P):
                m.d.comb += match[i][o].eq(requests.match[i][o])

        # Dequeue, crossbar, credits out, and output state updates.
        sel_flit = [Signal(layout, name=f"sel_flit_{i}") for i in range(P)]
        sel_vc = [Signal(_bits(V), name=f"sel_vc_{i}") for i in range(P)]
        granted = st.granted
        for i in range(P):
            m.d.comb += granted[i].eq(Cat(*match[i]).any())
            m.d.comb += deq[i].eq(Mux(granted[i], chosen[i], 0))
            for q, (v, _) in enumerate(queues):
                with m.If(chosen[i][q]):
                    m.d.comb += [sel_flit[i].eq(heads[i][q].flit), sel_vc[i].eq(v)]
            credit_back = Signal(V, name=f"credit_back_{i}")
            for v in range(V):
                m.d.comb += credit_back[v].eq(granted[i] & (sel_vc[i] == v))
            m.d.sync += self.inp[i].credit.eq(credit_back)

        out_win = []
        for o in range(P):
            link = self.outp[o]
            any_win = Signal(name=f"out_win_{o}")
            out_win.append(any_win)
            win = Signal(layout, name=f"out_flit_{o}")
            m.d.comb += any_win.eq(Cat(*[match[i][o] for i in range(P)]).any())
            for i in range(P):
                with m.If(match[i][o]):
                    m.d.comb += win.eq(sel_flit[i])
            m.d.sync += [link.valid.eq(any_win), link.payload.eq(win)]
            for v in range(V):
                spend = any_win & (win.vc == v)
                m.d.sync += credit[o][v].eq(credit[o][v] - spend + link.credit[v])
                with m.If(spend & win.first & ~win.last):
                    m.d.sync += busy[o][v].eq(1)
                with m.If(spend & win.last & ~win.first):
                    m.d.sync += busy[o][v].eq(0)
                # A claim is given while a head flit waits and ends when the claimant's head
                # flit takes the VC (no other head flit can while it stands).
                wait = st.waiting[o][v]
                m.d.comb += wait.eq(self.claim_requests(Cat(*waiting[o][v])))
                if V == 1:
                    continue        # no claims: ``claimed`` stays 0
                arbiter = self.arbiters[f"claim_{o}_{v}"]
                m.d.comb += [arbiter.req.eq(wait), arbiter.update.eq(~claimed[o][v])]
                pick = arbiter.grant
                with m.If(spend & win.first):
                    m.d.sync += claimed[o][v].eq(0)
                with m.Elif(~claimed[o][v] & wait.any()):
                    m.d.sync += claimed[o][v].eq(1)
                    for i in range(P):
                        with m.If(pick[i]):
                            m.d.sync += claimant[o][v].eq(i)

        if p.stats:
            for o in range(P):
                sent = self.outp[o].valid
                m.d.sync += self.stats.sent[o].eq(self.stats.sent[o] + sent)
                stalled = Signal(name=f"credit_stall_{o}")
                m.d.comb += stalled.eq(Cat(*starved[o]).any() & ~out_win[o])
                m.d.sync += self.stats.credit_stalls[o].eq(
                    self.stats.credit_stalls[o] + stalled)
            for i in range(P):
                blocked = Signal(name=f"blocked_{i}")
                m.d.comb += blocked.eq(holding[i] & ~granted[i])
                m.d.sync += self.stats.blocked[i].eq(self.stats.blocked[i] + blocked)
        return m


class RouterState:
    """The router's internal state and decisions, as signals a proof or a waveform reads.

    Built by :class:`Router` from its :class:`~supernode.rtl.router_params.RouterParams` and driven
    by it; ``[i]`` indexes an input, ``[o]`` an output, ``[q]`` a queue (numbered as
    ``params.queues``), ``[v]`` a VC.

    Members
    -------
    count, rptr, wptr : [i][q]
        Flits held by each queue, and its read and write pointers in its D slots.
    q_in, route_in : [i]
        The queue and output port of the flit arriving at input ``i`` this cycle.
    held : [i][v]
        The route of the open packet arriving on each input VC (for its body flits).
    spread_turn, in_spread : [i]
        With ``spread``: the input's spread turn, and whether this cycle's lookup hit a
        spread port.
    elig, deq : [i]
        Queues of input ``i`` that may send this cycle; the one dequeued (one-hot).
    credit, busy : [o][v]
        Credits of each output VC; held by an open packet.
    claimed, claimant, waiting : [o][v]
        Claims on output VCs: claimed, by which input, and the inputs whose head flits
        wait for the VC (one bit per input).
    match : [i][o]
        The switch matching of this cycle.
    chosen, granted : [i]
        The queue of input ``i`` the allocator picked (one-hot); whether the input sends.
    """

    def __init__(self, params: RouterParams):
        P, V, D, Q = params.ports, params.vcs, params.buffer_depth, params.queue_count
        self.count = [[Signal(range(D + 1), name=f"count_{i}_{q}") for q in range(Q)]
                      for i in range(P)]
        self.rptr = [[Signal(range(D), name=f"rptr_{i}_{q}") for q in range(Q)]
                     for i in range(P)]
        self.wptr = [[Signal(range(D), name=f"wptr_{i}_{q}") for q in range(Q)]
                     for i in range(P)]
        self.q_in = [Signal(range(Q), name=f"q_in_{i}") for i in range(P)]
        self.route_in = [Signal(params.port_bits, name=f"route_in_{i}") for i in range(P)]
        self.held = [[Signal(params.port_bits, name=f"held_{i}_{v}") for v in range(V)]
                     for i in range(P)]
        turns = max(1, len(params.spread))
        self.spread_turn = [Signal(range(turns), name=f"spread_turn_{i}") for i in range(P)]
        self.in_spread = [Signal(name=f"in_spread_{i}") for i in range(P)]
        self.elig = [Signal(Q, name=f"elig_{i}") for i in range(P)]
        self.deq = [Signal(Q, name=f"deq_{i}") for i in range(P)]
        self.credit = [[Signal(range(D + 1), init=D, name=f"credit_{o}_{v}") for v in range(V)]
                       for o in range(P)]
        self.busy = [[Signal(name=f"busy_{o}_{v}") for v in range(V)] for o in range(P)]
        self.claimed = [[Signal(name=f"claimed_{o}_{v}") for v in range(V)] for o in range(P)]
        self.claimant = [[Signal(range(P), name=f"claimant_{o}_{v}") for v in range(V)]
                         for o in range(P)]
        self.waiting = [[Signal(P, name=f"waiting_{o}_{v}") for v in range(V)]
                        for o in range(P)]
        self.match = [[Signal(name=f"match_{i}_{o}") for o in range(P)] for i in range(P)]
        self.chosen = [Signal(Q, name=f"chosen_{i}") for i in range(P)]
        self.granted = [Signal(name=f"granted_{i}") for i in range(P)]
