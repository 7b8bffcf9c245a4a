"""Input-queued virtual-channel switch router with wormhole switching and credit flow control."""

from collections.abc import Callable, Sequence

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .allocator import ALLOCATOR_CLASSES, ARBITER_ROLES
from .arbiter import RoundRobinArbiter
from .published import Published
from .router_params import ALLOCATORS, RouterParams, bits as _bits
from .router_units import InputUnit, OutputUnit, link_signature

__all__ = ["ALLOCATORS", "Router", "RouterParams", "RouterState", "link_signature",
           "config_signature", "stats_signature"]


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

    The router is built from components joined by ``wiring.connect``: one
    :class:`~supernode.rtl.router_units.InputUnit` per input (``input_units[i]``: queues, route
    lookup, eligibility, dequeue), the switch allocator (``switch_allocator``, joined to
    every input unit by :func:`~supernode.rtl.allocator.request_signature`), and one
    :class:`~supernode.rtl.router_units.OutputUnit` per output (``output_units[o]``: the switch
    column, credits, VC ownership, claims). Each input unit sends its chosen flit to every
    output unit (:func:`~supernode.rtl.router_units.switch_signature`), each output unit tells every
    input unit the state of its VCs (:func:`~supernode.rtl.router_units.status_signature`), and each
    input unit tells each output unit which of its VCs its waiting head flits need
    (:func:`~supernode.rtl.router_units.heads_signature`). The router itself keeps only the routing
    table, which the input units read (:func:`~supernode.rtl.router_units.lookup_signature`).

    The router publishes its state, for proofs and waveforms (read-only): ``table`` and
    ``buffers[i]`` (the memories), ``state`` (:class:`RouterState`, the units' state
    signals by input and output: queue counters and pointers, held routes, eligibility,
    output credits, VC ownership, claims, the switch matching), ``claim_arbiters`` and
    ``arbiters`` (every :class:`~supernode.rtl.arbiter.RoundRobinArbiter`, the allocator's and the
    output units' included, by name; a name it lacks is a ``KeyError`` naming it).
    ``memory`` is the memory class (``amaranth.lib.memory.Memory``, or a model of it with
    the same ports); variants for proofs are subclasses that replace entries of
    :attr:`ARBITERS` or :attr:`ALLOCATOR_CLASSES`, or replace :attr:`INPUT_UNIT` or
    :attr:`OUTPUT_UNIT` by a subclass (one overriding
    :meth:`~supernode.rtl.router_units.InputUnit.next_spread_turn` or
    :meth:`~supernode.rtl.router_units.OutputUnit.claim_requests`).
    """

    #: The arbiter class of each role: ``claim`` (per output VC) and the allocators' roles
    #: (:data:`~supernode.rtl.allocator.ARBITER_ROLES`: ``separable_input``, ``separable_output``,
    #: ``islip_grant``, ``islip_accept``, ``islip_follow``, ``islip_queue``).
    ARBITERS = {role: RoundRobinArbiter for role in ("claim",) + ARBITER_ROLES}

    #: The switch allocator component of each ``params.allocator``
    #: (:class:`~supernode.rtl.allocator.SeparableAllocator`, :class:`~supernode.rtl.allocator.ISlipAllocator`).
    ALLOCATOR_CLASSES = ALLOCATOR_CLASSES

    #: The component of each input port (:class:`~supernode.rtl.router_units.InputUnit`).
    INPUT_UNIT = InputUnit

    #: The component of each output port (:class:`~supernode.rtl.router_units.OutputUnit`).
    OUTPUT_UNIT = OutputUnit

    def __init__(self, params: "RouterParams | None" = None, /, *,
                 memory: "Callable[..., Memory]" = Memory, **options: object) -> None:
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
        P = params.ports
        # A memory rather than an array of registers: simulators index it directly instead
        # of building a multiplexer per read, which keeps Verilator builds small.
        self.table = memory(shape=params.port_bits, depth=params.destinations,
                            init=params.routes)
        self.input_units = [self.INPUT_UNIT(params, index=i, memory=memory) for i in range(P)]
        self.output_units = [self.OUTPUT_UNIT(params, index=o, arbiter=self.ARBITERS["claim"])
                             for o in range(P)]
        self.buffers = [unit.buffer for unit in self.input_units]
        self.state = RouterState(self.input_units, self.output_units)
        self.switch_allocator = self.ALLOCATOR_CLASSES[params.allocator](
            params, arbiters=self.ARBITERS)
        self.claim_arbiters = {f"claim_{o}_{v}": arbiter
                               for o, unit in enumerate(self.output_units)
                               for v, arbiter in enumerate(unit.claim_arbiters)}
        self.arbiters = Published("router", "arbiter")
        self.arbiters.update({**self.claim_arbiters, **self.switch_allocator.arbiters})

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

    def elaborate(self, platform: object) -> Module:
        m = Module()
        p = self._params
        P = p.ports
        # Routing table, writable through cfg.
        m.submodules.table = table = self.table
        table_wr = table.write_port()
        # The port field can name a missing port when the radix is not a power of two: a
        # packet routed there would never leave, so such a write is ignored.
        m.d.comb += [table_wr.addr.eq(self.cfg.dest), table_wr.data.eq(self.cfg.port),
                     table_wr.en.eq(self.cfg.valid & (self.cfg.dest < p.destinations)
                                    & (self.cfg.port < P))]

        m.submodules.switch_allocator = allocator = self.switch_allocator
        ins, outs = self.input_units, self.output_units
        for i, unit in enumerate(ins):
            m.submodules[f"input_{i}"] = unit
            wiring.connect(m, link=wiring.flipped(self.inp[i]), input_unit=unit.link)
            # One combinational read port of the table per input.
            lookup = table.read_port(domain="comb")
            m.d.comb += [lookup.addr.eq(unit.lookup.dest), unit.lookup.port.eq(lookup.data)]
            wiring.connect(m, input_unit=unit.request, allocator=allocator.requests[i])
        for o, unit in enumerate(outs):
            m.submodules[f"output_{o}"] = unit
            wiring.connect(m, output_unit=unit.link, link=wiring.flipped(self.outp[o]))
        for k in range(P):
            # Input k's flit to every output; output k's VC status to every input.
            wiring.connect(m, ins[k].switch, *[unit.switch[k] for unit in outs])
            wiring.connect(m, outs[k].status, *[unit.status[k] for unit in ins])
            for o in range(P):
                wiring.connect(m, input_unit=ins[k].heads[o], output_unit=outs[o].heads[k])

        if p.stats:
            for k in range(P):
                m.d.comb += [self.stats.sent[k].eq(self.output_units[k].sent),
                             self.stats.credit_stalls[k].eq(self.output_units[k].credit_stalls),
                             self.stats.blocked[k].eq(self.input_units[k].blocked)]
        return m


class RouterState:
    """The router's internal state and decisions, as signals a proof or a waveform reads.

    Gathered by :class:`Router` from the state of its input units
    (:class:`~supernode.rtl.router_units.InputState`) and output units
    (:class:`~supernode.rtl.router_units.OutputState`); ``[i]`` indexes an input, ``[o]`` an
    output, ``[q]`` a queue (numbered as ``params.queues``), ``[v]`` a VC.

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

    def __init__(self, input_units: "Sequence[InputUnit]",
                 output_units: "Sequence[OutputUnit]") -> None:
        ins = [unit.state for unit in input_units]
        outs = [unit.state for unit in output_units]
        self.count = [st.count for st in ins]
        self.rptr = [st.rptr for st in ins]
        self.wptr = [st.wptr for st in ins]
        self.q_in = [st.q_in for st in ins]
        self.route_in = [st.route_in for st in ins]
        self.held = [st.held for st in ins]
        self.spread_turn = [st.spread_turn for st in ins]
        self.in_spread = [st.in_spread for st in ins]
        self.elig = [st.elig for st in ins]
        self.deq = [st.deq for st in ins]
        self.match = [[st.match[o] for o in range(len(outs))] for st in ins]
        self.chosen = [st.chosen for st in ins]
        self.granted = [st.granted for st in ins]
        self.credit = [st.credit for st in outs]
        self.busy = [st.busy for st in outs]
        self.claimed = [st.claimed for st in outs]
        self.claimant = [st.claimant for st in outs]
        self.waiting = [st.waiting for st in outs]
