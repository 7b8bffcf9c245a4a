"""Proof harness of the router's routing stage: spread routing and run-time table writes."""

from __future__ import annotations

from collections.abc import Sequence

from amaranth.asserts import AnySeq
from amaranth.hdl import Array, Assert, Assume, Cat, Const, Cover, Module, Mux, ResetSignal, Signal

from supernode.rtl.errors import UserError
from supernode.rtl.router import Router, RouterParams
from supernode.rtl.router_units import InputUnit

from .memory import RegisterMemory
from .properties import past
from .router import RouterHarness, free_input

__all__ = ["RoutingHarness", "MUTANTS"]

#: Deliberately broken variants for the mutation tests; each must fail with a counterexample.
#: ``"late_table_write"``: the harness's shadow table takes each ``cfg`` write one cycle
#: late (so it disagrees with the router, which routes by a write from the next cycle on);
#: ``"spread_skips_port"``: a router whose spread turn wraps around to the second spread
#: port, skipping the first one (a subclass; ``rtl/`` is untouched);
#: ``"write_through_lookup"``: the harness expects a head flit arriving in the cycle of a
#: write to its destination to be routed by the new entry already (the router is not).
MUTANTS = ("late_table_write", "spread_skips_port", "write_through_lookup")


def _bits(n):
    return max(1, (n - 1).bit_length())


class SpreadSkippingInputUnit(InputUnit):
    """A broken input unit: after the last spread port its turn goes to the second one."""

    def next_spread_turn(self, turn, last):
        return Mux(turn == last, 1, turn + 1)


class SpreadSkippingRouter(Router):
    """A broken :class:`supernode.rtl.router.Router`: after the last spread port its turn goes to the
    second one, so the first spread port is used by the first packet only."""
    INPUT_UNIT = SpreadSkippingInputUnit


def _refusal(spread, ports, mutant):
    """What is wrong with the routing-specific parameters, or None."""
    if mutant is not None and mutant not in MUTANTS:
        return f"mutant must be None or one of {', '.join(MUTANTS)}, not {mutant!r}"
    valid_ports = isinstance(ports, int) and not isinstance(ports, bool) and ports >= 2
    if len(spread) < 2 or len(set(spread)) != len(spread) or any(
            isinstance(p, bool) or not isinstance(p, int) or p < 0
            or (valid_ports and p >= ports) for p in spread):
        upto = f" from 0 to {ports - 1}" if valid_ports else ""
        return f"spread must be at least two distinct output ports{upto}, not {spread!r}"
    return None


class RoutingHarness(RouterHarness):
    """Properties of the routing stage of :class:`supernode.rtl.router.Router`, with ``spread`` ports
    and a routing table the environment may rewrite in any cycle.

    The environment: ``cfg`` is free (``AnySeq``): any entry may be rewritten in any cycle,
    also with a destination beyond the table or a port the router does not have (possible
    when the radix is not a power of two), both of which the router must ignore.
    Each input is an upstream that frames packets per VC (a head flit opens a packet,
    ``last`` closes it) with destinations inside the table; flits carry their input port
    in ``src``. Credits are free on both sides: routing does not depend on them, so the
    proof holds for every traffic, not only for traffic that respects flow control.

    The harness keeps its own shadow of the routing table from the ``cfg`` writes, its own
    round-robin spread turn per input and its own route per (input, VC) open packet, and
    proves, for every input ``i``:

    - the routing table equals the shadow table: a write to an entry inside the table is
      what every later lookup sees, a write beyond the table or of a missing port changes
      nothing, so every entry names a port of the router;
    - a write is seen from the cycle after it: a head flit arriving in the cycle of a write
      to its own destination is routed by the entry as it was before that write (as the
      RTL does: the table is a memory with a synchronous write port and a combinational
      read port);
    - a head flit enters its queue with the shadow table's entry for its destination as of
      its arrival cycle, or, when that entry is one of the spread ports, with the spread
      port of input ``i``'s round-robin turn;
    - a body flit enters its queue with its head's route, however the table has been
      rewritten since the head arrived (the router's held route per VC equals the head's);
    - the router's spread turn of input ``i`` equals the harness's, which starts at the
      first spread port and moves to the next one, wrapping around, exactly once per head
      flit of input ``i`` whose table entry is any spread port: per-packet round robin per
      input, over the spread ports and no other port;
    - every buffered flit keeps the route it entered with (the harness writes the expected
      route beside every buffer word the router writes), and a flit leaves input ``i``
      through output ``o`` only when ``o`` is that route.

    Parameters
    ----------
    ports, vcs, buffer_depth, flit_width, allocator, islip_iterations, voq :
        Router parameters (see :class:`supernode.rtl.router.Router`).
    destinations : int or None
        Routing-table size; by default the length of ``routes``, or 6 without ``routes``
        (not a power of two, so that ``cfg`` can address entries beyond the table).
    routes : sequence of int, optional
        Initial table; defaults to ``dest % ports``.
    spread : sequence of int
        Spread ports, at least two distinct outputs.
    mutant : str or None
        One of :data:`MUTANTS` to prove a broken variant (mutation test), or None.
    """

    kind = "routing"
    default_depth = 1
    cover_depth = 8

    def __init__(self, *, ports: int = 4, vcs: int = 2, buffer_depth: int = 2,
                 flit_width: int = 1, allocator: str = "separable", islip_iterations: int = 1,
                 voq: bool = False, destinations: int | None = None,
                 routes: Sequence[int] | None = None, spread: Sequence[int] = (2, 3),
                 mutant: str | None = None) -> None:
        spread = tuple(spread)
        bad = _refusal(spread, ports, mutant)
        if bad:
            raise UserError(bad)
        if destinations is None:
            destinations = 6 if routes is None else len(routes)
        self._destinations = destinations
        self._routes = None if routes is None else tuple(routes)
        self._spread = spread
        self._mutant = mutant
        # Validates the router parameters (the router's own messages), spread included.
        super().__init__(ports=ports, vcs=vcs, buffer_depth=buffer_depth,
                         flit_width=flit_width, allocator=allocator,
                         islip_iterations=islip_iterations, voq=voq)
        self._routes = self.router_params.routes     # the router's default, if None
        self.params.update(destinations=destinations, routes=list(self._routes),
                           spread=list(spread), mutant=mutant)
        # The routing properties are inductive by themselves (k = 1) whatever the allocator
        # and queues (the router harness sets its own default for iSLIP and VOQ).
        self.default_depth, self.cover_depth = type(self).default_depth, type(self).cover_depth

    @staticmethod
    def _queues(V, P, voq):
        """The queues of one input, as the router numbers them: (vc, fixed output or None)."""
        return [(v, o) for v in range(V) for o in range(P)] if voq else \
            [(v, None) for v in range(V)]

    def _router_params(self) -> RouterParams:
        p = self.params
        return RouterParams(ports=p["ports"], vcs=p["vcs"], buffer_depth=p["buffer_depth"],
                            flit_width=p["flit_width"], allocator=self._allocator,
                            islip_iterations=self._iterations, voq=self._voq,
                            destinations=self._destinations, routes=self._routes,
                            spread=self._spread)

    def design(self) -> Router:
        cls = SpreadSkippingRouter if self._mutant == "spread_skips_port" else Router
        return cls(self.router_params, memory=RegisterMemory)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        dut = self.design()
        table_cells, buffer_cell = self._memory_words(dut)
        m.submodules.dut = dut
        P, V, D, T = dut.ports, dut.vcs, dut.buffer_depth, dut.destinations
        spread = dut.spread
        S = len(spread)
        queues = self._queues(V, P, dut.voq)
        Q = len(queues)
        entry_layout_out = slice(dut.flit_layout.size, dut.flit_layout.size + _bits(P))
        m.d.comb += Assume(~ResetSignal())

        # -- The table: free writes, a shadow kept by the harness -----------------------------
        cfg = dut.cfg
        m.d.comb += [cfg.valid.eq(AnySeq(1)), cfg.dest.eq(AnySeq(len(cfg.dest))),
                     cfg.port.eq(AnySeq(len(cfg.port)))]
        shadow = [Signal(_bits(P), init=r, name=f"shadow_route_{d}")
                  for d, r in enumerate(dut.routes)]
        writes = cfg.valid & (cfg.dest < T) & (cfg.port < P)
        if self._mutant == "late_table_write":
            # The broken reference: each write lands one cycle later than it should.
            writes = past(m, writes, name="late_write")
            dest, port = past(m, cfg.dest, name="late_dest"), past(m, cfg.port, name="late_port")
        else:
            dest, port = cfg.dest, cfg.port
        with m.If(writes):
            m.d.sync += Array(shadow)[dest].eq(port)
        for d in range(T):
            m.d.comb += [
                Assert(table_cells[d] == shadow[d],
                       f"table entry {d} holds the last write to it (or its initial route), "
                       f"writes beyond the table or of a missing port ignored"),
                Assert(table_cells[d] < P, f"table entry {d} names a port of the router"),
            ]
        shadow_at = Array(shadow)

        # -- Inputs: expected routes, spread turns, held routes, shadow queues ---------------
        turns = []
        spread_ports = Array(Const(p, _bits(P)) for p in spread)
        write_mid_packet = []
        for i in range(P):
            link = dut.inp[i]
            flit = link.payload
            m.d.comb += free_input(dut, i) + [
                flit.pkt.eq(0),
                dut.outp[i].credit.eq(AnySeq(V)),
            ]
            arrive_head = link.valid & flit.first
            entry = shadow_at[flit.dest]
            if self._mutant == "write_through_lookup":
                entry = Mux(writes & (dest == flit.dest), port, entry)
            in_spread = Cat(*[entry == p for p in spread]).any()
            turn = Signal(range(S), name=f"expected_turn_{i}")
            turns.append(turn)
            with m.If(arrive_head & in_spread):
                m.d.sync += turn.eq(Mux(turn == S - 1, 0, turn + 1))
            head_route = Signal(_bits(P), name=f"expected_head_route_{i}")
            m.d.comb += head_route.eq(Mux(in_spread, spread_ports[turn], entry))
            design_turn = dut.state.spread_turn[i]
            m.d.comb += [
                Assert(turn < S, f"in {i}: the expected spread turn names a spread port"),
                Assert(design_turn == turn,
                       f"in {i}: the spread turn moves to the next spread port once per head "
                       f"routed to any of them, wrapping around"),
            ]

            held = [Signal(_bits(P), name=f"expected_held_{i}_{v}") for v in range(V)]
            is_open = [Signal(name=f"up_open_{i}_{v}") for v in range(V)]
            head_dest = [Signal(len(flit.dest), name=f"head_dest_{i}_{v}") for v in range(V)]
            rewritten = [Signal(name=f"rewritten_{i}_{v}") for v in range(V)]
            for v in range(V):
                send = link.valid & (flit.vc == v)
                m.d.comb += Assume(~send | (flit.first == ~is_open[v]))
                with m.If(send):
                    m.d.sync += is_open[v].eq(~flit.last)
                # Whether the open packet's destination was rewritten to another port since
                # its head was routed (for a cover only).
                with m.If(send & flit.first):
                    m.d.sync += [held[v].eq(head_route), head_dest[v].eq(flit.dest),
                                 rewritten[v].eq(0)]
                with m.Elif(is_open[v] & cfg.valid & (cfg.dest == head_dest[v])
                            & (cfg.port != held[v]) & (cfg.port != shadow_at[head_dest[v]])):
                    m.d.sync += rewritten[v].eq(1)
                m.d.comb += Assert(dut.state.held[i][v] == held[v],
                                   f"in {i} vc {v}: the route held for body flits is the "
                                   f"head's route")
            held_at = Array(held)
            expected = Signal(_bits(P), name=f"expected_route_{i}")
            m.d.comb += expected.eq(Mux(flit.first, head_route, held_at[flit.vc]))
            route = dut.state.route_in[i]
            with m.If(link.valid & flit.first):
                m.d.comb += Assert(route == expected,
                                   f"in {i}: a head flit enters its queue with the table's "
                                   f"route as of its arrival or its spread turn's port")
            with m.If(link.valid & ~flit.first):
                m.d.comb += Assert(route == expected,
                                   f"in {i}: a body flit enters its queue with its head's route")
            write_mid_packet.append(link.valid & ~flit.first & Array(rewritten)[flit.vc])

            # Shadow queues: the expected route beside every buffer word the router writes.
            # Queue q of input i holds the words [q*D, q*D + D) of its buffer memory.
            for q in range(Q):
                m.d.comb += Assert((dut.state.rptr[i][q] < D) & (dut.state.wptr[i][q] < D),
                                   f"in {i} queue {q}: buffer pointers in range")
            wptr = Array(dut.state.wptr[i][q] for q in range(Q))
            q_in = dut.state.q_in[i]
            # With virtual output queues a word never written stands for its queue's output
            # (the queue's flits go there whatever the word holds); without, buffer and
            # shadow words both start at 0.
            fixed = [queue_out for _, queue_out in queues]
            slots = [Signal(_bits(P), init=fixed[k // D] or 0, name=f"expected_slot_{i}_{k}")
                     for k in range(Q * D)]
            written = [Signal(name=f"written_{i}_{k}") for k in range(Q * D)]
            with m.If(link.valid):
                m.d.sync += [Array(slots)[q_in * D + wptr[q_in]].eq(expected),
                             Array(written)[q_in * D + wptr[q_in]].eq(1)]
            for q in range(Q):
                for k in range(D):
                    word = buffer_cell(i, q, k)[entry_layout_out]
                    same = word == slots[q * D + k]
                    if fixed[q] is not None:
                        same = ~written[q * D + k] | same
                        m.d.comb += Assert(slots[q * D + k] == fixed[q],
                                           f"in {i} queue {q} slot {k}: a virtual output "
                                           f"queue holds flits routed to its output")
                    m.d.comb += Assert(same, f"in {i} queue {q} slot {k}: a buffered flit "
                                             f"keeps the route it entered with")
            chosen = dut.state.chosen[i]
            head_routes = [Array(slots[q * D:(q + 1) * D])[dut.state.rptr[i][q]]
                           for q in range(Q)]
            for o in range(P):
                with m.If(dut.state.match[i][o]):
                    m.d.comb += Assert(
                        Cat(*[chosen[q] & (head_routes[q] == o) for q in range(Q)]).any(),
                        f"in {i}: a flit leaves through output {o} only when routed to it")

        # -- Covers: the interesting cases are reachable --------------------------------------
        link0 = dut.inp[0]
        wrapped = past(m, link0.valid & link0.payload.first & (turns[0] == S - 1)
                       & Cat(*[shadow_at[link0.payload.dest] == p for p in spread]).any(),
                       name="wrapped_0")
        m.d.comb += [
            Cover(write_mid_packet[0],
                  "a body flit arrives after its destination's entry was rewritten mid-packet"),
            Cover(link0.valid & link0.payload.first & cfg.valid
                  & (cfg.dest == link0.payload.dest) & (cfg.port != shadow_at[cfg.dest]),
                  "a head flit arrives in the cycle its destination's entry is rewritten"),
            Cover(wrapped & (turns[0] == 0), "input 0's spread turn wraps around"),
            Cover(turns[0] != turns[1], "inputs 0 and 1 are at different spread turns"),
            Cover(dut.outp[spread[-1]].valid, f"a flit leaves through spread port {spread[-1]}"),
        ]
        if T < 2 ** len(cfg.dest):
            m.d.comb += Cover(cfg.valid & (cfg.dest >= T), "a write beyond the table")
        return m
