"""Proof harness of the virtual-channel router: credits, framing, conservation, allocation."""

from amaranth.asserts import AnySeq
from amaranth.hdl import (Array, Assert, Assume, Cat, Const, Cover, Module, Mux, ResetSignal,
                          Shape, Signal, Value)
from amaranth.lib import data

from .harness import Harness
from .memory import memories_as_registers
from .probe import ProbeError, elaborate_with_probes
from .properties import past, round_robin_fairness

__all__ = ["RouterHarness", "DROPPABLE"]

#: Environment assumptions a mutation test may drop; the proof must then fail.
#: ``"input_credit"``: the upstream sends without holding a credit;
#: ``"packet_framing"``: the upstream may start a packet inside another on the same VC.
DROPPABLE = ("input_credit", "packet_framing")


def _bits(n):
    return max(1, (n - 1).bit_length())


def _popcount_le1(bits):
    """True when at most one of ``bits`` is set."""
    v = Cat(*bits)
    return (v & (v - 1)) == 0


class RouterHarness(Harness):
    """Properties of :class:`rtl.router.Router` (separable allocator, one queue per VC).

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
    input per output, one output per input, only eligible queues) and every round-robin
    arbiter serves a steady requester within ``n - 1`` moves of its priority.

    Parameters
    ----------
    ports, vcs, buffer_depth, flit_width : int
        Router parameters (see :class:`rtl.router.Router`).
    drop : str or None
        One of :data:`DROPPABLE` to drop an assumption (mutation test), or None.
    """

    kind = "router"
    default_depth = 4
    cover_depth = 6

    def __init__(self, *, ports=4, vcs=2, buffer_depth=2, flit_width=1, drop=None):
        if drop is not None and drop not in DROPPABLE:
            self._MustUse__silence = True
            raise ValueError(f"drop must be None or one of {', '.join(DROPPABLE)}, "
                             f"not {drop!r}")
        super().__init__(ports=ports, vcs=vcs, buffer_depth=buffer_depth,
                         flit_width=flit_width, drop=drop)
        self.design()._MustUse__silence = True       # validates the router parameters

    def design(self):
        from rtl.router import Router
        p = self.params
        return Router(ports=p["ports"], vcs=p["vcs"], buffer_depth=p["buffer_depth"],
                      flit_width=p["flit_width"], allocator="separable", voq=False)

    def _elaborate_router(self, dut, platform):
        """Elaborate the router; return its fragment, probes, table words and buffer words.

        A router that keeps its routing table and input buffers in ``Memory`` blocks is
        elaborated with :class:`~sim.formal.memory.RegisterMemory` in their place, so that
        the invariants can name every word; one that keeps them in registers is read as is.
        """
        import rtl.router as router_module
        P, V, D = dut.ports, dut.vcs, dut.buffer_depth
        entry_bits = dut.flit_layout.size + _bits(P)
        if not hasattr(router_module, "Memory"):
            frag, probe = elaborate_with_probes(dut, platform, design_name="router")
            table = [probe[f"route_{d}"] for d in range(dut.destinations)]
            return frag, probe, table, lambda i, v, k: probe[f"buf_{i}_{v}_{k}"]
        with memories_as_registers(router_module) as memories:
            frag, probe = elaborate_with_probes(dut, platform, design_name="router")
        width = lambda mem: Shape.cast(mem.shape).width          # noqa: E731
        tables = [mem for mem in memories
                  if width(mem) == _bits(P) and mem.depth == dut.destinations]
        buffers = [mem for mem in memories if width(mem) == entry_bits and mem.depth == V * D]
        if len(tables) != 1 or len(buffers) != P or len(memories) != P + 1:
            raise ProbeError(
                f"the router's memories are not one routing table ({dut.destinations} words "
                f"of {_bits(P)} bits) and {P} input buffers ({V * D} words of {entry_bits} "
                f"bits); found {[(mem.depth, width(mem)) for mem in memories]}")
        table = [Value.cast(c) for c in tables[0].cells]
        return frag, probe, table, lambda i, v, k: Value.cast(buffers[i].cells[v * D + k])

    def elaborate(self, platform):
        m = Module()
        dut = self.design()
        frag, probe, table_cells, buffer_cell = self._elaborate_router(dut, platform)
        m.submodules.dut = frag
        P, V, D = dut.ports, dut.vcs, dut.buffer_depth
        drop = self.params["drop"]
        entry_layout = data.StructLayout({"flit": dut.flit_layout, "out": _bits(P)})
        routes = Array(Const(r, _bits(P)) for r in dut.routes)
        m.d.comb += [Assume(~ResetSignal()), dut.cfg.valid.eq(0)]
        for d, r in enumerate(dut.routes):
            m.d.comb += Assert(table_cells[d] == r, "routing table keeps its contents")

        # -- Outputs: downstream buffer models, credit conservation, packet framing ---------
        state = [[None] * V for _ in range(P)]      # (open after this cycle, owner after)
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
                arrive = link.valid & (flit.vc == v)
                m.d.sync += occ.eq(occ + arrive - give)
                credit = probe[f"credit_{o}_{v}"]
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
                m.d.comb += Assert(probe[f"busy_{o}_{v}"] == now_open,
                                   f"out {o} vc {v}: VC ownership matches the link")

        # -- Inputs: upstream models, buffer accounting and contents ------------------------
        pending = [[Signal(range(V * D + 2), name=f"pending_{i}_{o}") for o in range(P)]
                   for i in range(P)]
        head_out = [[None] * V for _ in range(P)]
        queue = {}          # (i, v) -> [(present, entry view)] in queue order
        for i in range(P):
            link = dut.inp[i]
            flit = link.payload
            m.d.comb += [
                link.valid.eq(AnySeq(1)), flit.first.eq(AnySeq(1)), flit.last.eq(AnySeq(1)),
                flit.vc.eq(AnySeq(len(flit.vc))), flit.dest.eq(AnySeq(len(flit.dest))),
                flit.data.eq(AnySeq(len(flit.data))), flit.src.eq(i), flit.pkt.eq(0),
                Assume(~link.valid | (flit.vc < V)),
                Assume(~link.valid | (flit.dest < dut.destinations)),
            ]
            in_route = [Signal(_bits(P), name=f"up_route_{i}_{v}") for v in range(V)]
            route_now = Mux(flit.first, routes[flit.dest], Array(in_route)[flit.vc])
            for v in range(V):
                credit = Signal(range(D + 1), init=D, name=f"up_credit_{i}_{v}")
                in_open = Signal(name=f"up_open_{i}_{v}")
                send = link.valid & (flit.vc == v)
                if drop != "input_credit":
                    m.d.comb += Assume(~send | (credit != 0))
                if drop != "packet_framing":
                    m.d.comb += Assume(~send | (flit.first == ~in_open))
                m.d.sync += credit.eq(credit - send + link.credit[v])
                with m.If(send):
                    m.d.sync += in_open.eq(~flit.last)
                    with m.If(flit.first):
                        m.d.sync += in_route[v].eq(routes[flit.dest])

                count = probe[f"count_{i}_{v}"]
                rptr = probe[f"rptr_{i}_{v}"]
                m.d.comb += [
                    Assert(count + credit + link.credit[v] == D,
                           f"in {i} vc {v}: credits conserved (upstream + buffer + returning)"),
                    Assert(count <= D, f"in {i} vc {v}: input buffer never overflows"),
                    Assert((rptr < D) & (probe[f"wptr_{i}_{v}"] < D),
                           f"in {i} vc {v}: buffer pointers in range"),
                    Assert(in_route[v] < P, f"in {i} vc {v}: the held route is a port"),
                    Assert(probe[f"wptr_{i}_{v}"] == Mux(rptr + count >= D, rptr + count - D,
                                                         rptr + count),
                           f"in {i} vc {v}: write pointer = read pointer + count"),
                    Assert(probe[f"held_{i}_{v}"] == in_route[v],
                           f"in {i} vc {v}: the route held for body flits is the head's"),
                ]
                # Buffer contents in queue order: entry n sits in slot (rptr + n) mod D.
                store = Array(buffer_cell(i, v, k) for k in range(D))
                entries = []
                for n in range(D):
                    slot = Mux(rptr + n >= D, rptr + n - D, rptr + n)
                    e = Signal(entry_layout, name=f"queue_{i}_{v}_{n}")
                    m.d.comb += e.eq(store[slot])
                    entries.append((n < count, e))
                queue[i, v] = entries
                sent_open = Cat(*[state[o][v][0] & (state[o][v][1] == i)
                                  for o in range(P)])
                m.d.comb += Assert(_popcount_le1(list(sent_open)),
                                   f"in {i} vc {v}: at most one packet of it open at outputs")
                open_at = Array(state[o][v][0] & (state[o][v][1] == i) for o in range(P))
                for n, (present, e) in enumerate(entries):
                    with m.If(present):
                        m.d.comb += [
                            Assert((e.flit.vc == v) & (e.flit.src == i) & (e.out < P),
                                   f"in {i} vc {v}: buffered flits belong to the queue"),
                            Assert(~e.flit.first | (e.out == routes[e.flit.dest]),
                                   f"in {i} vc {v}: a head is routed by the table"),
                        ]
                        if n + 1 < D:
                            nxt_present, nxt = entries[n + 1]
                            with m.If(nxt_present):
                                m.d.comb += [
                                    Assert(e.flit.last == nxt.flit.first,
                                           f"in {i} vc {v}: buffered packets are framed"),
                                    Assert(e.flit.last | (nxt.out == e.out),
                                           f"in {i} vc {v}: a packet keeps its route"),
                                ]
                        with m.If(count == n + 1):
                            m.d.comb += [
                                Assert(in_open == ~e.flit.last,
                                       f"in {i} vc {v}: last buffered flit matches upstream"),
                                Assert(~in_open | (e.out == in_route[v]),
                                       f"in {i} vc {v}: open packet keeps its route"),
                            ]
                head_present, head = entries[0]
                head_out[i][v] = head.out
                with m.If(head_present):
                    m.d.comb += [
                        Assert(sent_open.any() == ~head.flit.first,
                               f"in {i} vc {v}: a body flit at the head follows its head"),
                        Assert(head.flit.first | open_at[head.out],
                               f"in {i} vc {v}: a body flit goes where its head went"),
                    ]
                with m.Else():
                    m.d.comb += [
                        Assert(sent_open.any() == in_open,
                               f"in {i} vc {v}: an empty queue's packet is open downstream"),
                        Assert(~in_open | open_at[in_route[v]],
                               f"in {i} vc {v}: ... at the output it was routed to"),
                    ]

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
                for v in range(V):
                    held += [present & (e.out == o) for present, e in queue[i, v]]
                out_link = dut.outp[o]
                held.append(out_link.valid & (out_link.payload.src == i))
                total = sum(h.as_unsigned() for h in held)
                m.d.comb += Assert(pending[i][o] == total,
                                   f"in {i} to out {o}: flits inside = in - out")

        # -- Switch allocation ---------------------------------------------------------------
        match = [[probe[f"match_{i}_{o}"] for o in range(P)] for i in range(P)]
        for o in range(P):
            m.d.comb += Assert(_popcount_le1([match[i][o] for i in range(P)]),
                               f"allocator: at most one input per output {o}")
        for i in range(P):
            chosen = probe[f"chosen_{i}"]
            elig = probe[f"elig_{i}"]
            m.d.comb += [
                Assert(_popcount_le1([match[i][o] for o in range(P)]),
                       f"allocator: at most one output per input {i}"),
                Assert(_popcount_le1(list(chosen)), f"allocator: one queue of input {i}"),
                Assert((chosen & ~elig) == 0, f"allocator: input {i} sends an eligible queue"),
            ]
            for o in range(P):
                with m.If(match[i][o]):
                    m.d.comb += Assert(
                        Cat(*[chosen[v] & (head_out[i][v] == o) for v in range(V)]).any(),
                        f"allocator: input {i} matched to output {o} sends a flit for it")
        # Round-robin fairness of both arbiter stages.
        for i in range(P):
            round_robin_fairness(
                m, name=f"input arbiter {i}", req=probe[f"elig_{i}"],
                grant=probe[f"sep_in_{i}_grant"], mask=probe[f"sep_in_{i}_mask"],
                update=probe[f"granted_{i}"])
        for o in range(P):
            want = Cat(*[Cat(*[probe[f"sep_in_{i}_grant"][v] & (head_out[i][v] == o)
                              for v in range(V)]).any() for i in range(P)])
            round_robin_fairness(
                m, name=f"output arbiter {o}", req=want, grant=probe[f"sep_out_{o}_grant"],
                mask=probe[f"sep_out_{o}_mask"], update=Const(1))
            if o == 0:
                m.d.comb += Cover((want & (want - 1)) != 0,
                                  "two inputs contend for output 0")

        # -- Covers: the interesting states are reachable ------------------------------------
        out0 = dut.outp[0]
        m.d.comb += [
            Cover(probe["count_0_0"] == D, "input 0 vc 0 buffer full"),
            Cover(probe["credit_0_0"] == 0, "output 0 vc 0 out of credits"),
            Cover(probe[f"busy_0_{V - 1}"], f"output 0 vc {V - 1} held by an open packet"),
            Cover(out0.valid & past(m, out0.valid, name="out0_valid_before"),
                  "back-to-back flits on output 0"),
            Cover(out0.valid & out0.payload.last & ~out0.payload.first,
                  "a multi-flit packet completes on output 0"),
        ]
        return m
