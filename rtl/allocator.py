"""Switch allocators of the router: separable input-first (iterated) and iSLIP, as components."""

from __future__ import annotations

from collections.abc import Mapping

from amaranth import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .arbiter import RoundRobinArbiter
from .router_params import RouterParams, bits

__all__ = ["request_signature", "allocation_signature", "SwitchAllocator", "SeparableAllocator", "ISlipAllocator",
           "ARBITER_ROLES"]

#: The roles of the round-robin arbiters inside the allocators: ``separable_input`` and
#: ``separable_output`` (every iteration), ``islip_grant``/``islip_accept`` (first iteration),
#: ``islip_follow`` (later iterations) and ``islip_queue``.
ARBITER_ROLES = ("separable_input", "separable_output", "islip_grant", "islip_accept",
                 "islip_follow", "islip_queue")


def request_signature(params: RouterParams) -> wiring.Signature:
    """One input's side of switch allocation, from the input: the queues that may send
    (``elig``, one bit per queue) and the output each queue's head is routed to
    (``outs[q]``); back, the outputs it is matched to (``match``, one bit per output, at
    most one set) and the queue it sends if it is matched (``chosen``, one-hot)."""
    P, Q = params.ports, params.queue_count
    return wiring.Signature({
        "elig": Out(Q),
        "outs": Out(data.ArrayLayout(params.port_bits, Q)),
        "match": In(P),
        "chosen": In(Q),
    })


def allocation_signature(params: RouterParams) -> wiring.Signature:
    """An allocator's ports: the :func:`request_signature` of every input, from the
    allocator's side (``requests[i]``)."""
    return wiring.Signature({"requests": In(request_signature(params)).array(params.ports)})


class SwitchAllocator(wiring.Component):
    """What the router's allocators share: the ports of :func:`allocation_signature` and
    their round-robin arbiters, published by name in :attr:`arbiters`.

    Parameters
    ----------
    params : RouterParams
        The router's parameters.
    arbiters : dict
        The arbiter class of each role of :data:`ARBITER_ROLES` (variants for proofs
        replace some of them); missing roles are :class:`~supernode.rtl.arbiter.RoundRobinArbiter`.
    """

    def __init__(self, params: RouterParams, *,
                 arbiters: Mapping[str, type[RoundRobinArbiter]] | None = None) -> None:
        self._params = params
        self._classes = {role: RoundRobinArbiter for role in ARBITER_ROLES}
        self._classes.update({k: v for k, v in (arbiters or {}).items() if k in ARBITER_ROLES})
        super().__init__(allocation_signature(params))
        self.arbiters = self._make_arbiters()

    params = property(lambda self: self._params, doc="The router's RouterParams.")

    def _make_arbiters(self) -> dict:
        raise NotImplementedError

    def _module(self) -> Module:
        """A module holding this allocator's arbiters as named submodules."""
        m = Module()
        for name, arbiter in self.arbiters.items():
            m.submodules[name] = arbiter
        return m

    def _ports(self):
        """``(P, Q, elig, outs)``: ``elig[i]`` the eligible queues of input ``i``,
        ``outs[i][q]`` the output of its queue ``q``."""
        P, Q = self._params.ports, self._params.queue_count
        outs = [[self.requests[i].outs[q] for q in range(Q)] for i in range(P)]
        return P, Q, [self.requests[i].elig for i in range(P)], outs


class SeparableAllocator(SwitchAllocator):
    """Input-first separable allocation with round-robin arbiters at both stages.

    Each input arbiter picks one eligible queue and asks for its output; each output
    arbiter grants one asking input. With ``separable_iterations`` above one, the inputs
    still unmatched ask again in the next iteration, each among its eligible queues whose
    output is still unmatched (:meth:`still_free`), through that iteration's own arbiters
    (``sep_in_{i}_it{k}``, ``sep_out_{o}_it{k}``; the first iteration's are ``sep_in_{i}``
    and ``sep_out_{o}``). An input arbiter's pointer moves when its pick is granted, an
    output arbiter's whenever it grants.
    """

    def _make_arbiters(self):
        p = self._params
        arb = {}
        for k in range(p.separable_iterations):
            tag = "" if k == 0 else f"_it{k}"
            for i in range(p.ports):
                arb[f"sep_in_{i}{tag}"] = self._classes["separable_input"](n=p.queue_count)
            for o in range(p.ports):
                arb[f"sep_out_{o}{tag}"] = self._classes["separable_output"](n=p.ports)
        return arb

    def still_free(self, matched_out: Value) -> Value:
        """The outputs a later iteration may ask for, given the ones earlier iterations
        ``matched_out`` (one bit per output): every other one."""
        return ~matched_out

    def elaborate(self, platform: object) -> Module:
        m = self._module()
        arb = self.arbiters
        P, Q, elig, outs = self._ports()
        matched_in = [Const(0, 1)] * P
        matched_out = Const(0, P)
        pairs = [[Const(0, 1)] * P for _ in range(P)]   # pairs[i][o]: matched so far
        picked = [None] * P     # picked[i]: the queue input i sends (if it is matched)
        for k in range(self._params.separable_iterations):
            tag = "" if k == 0 else f"_it{k}"
            want, picks = [], []
            for i in range(P):
                stage = arb[f"sep_in_{i}{tag}"]
                if k == 0:
                    m.d.comb += stage.req.eq(elig[i])
                else:
                    # Only queues whose output is still free, of an input still unmatched.
                    free_out = self.still_free(matched_out)
                    free = Cat(*[elig[i][q] & free_out.bit_select(outs[i][q], 1)
                                 for q in range(Q)])
                    m.d.comb += stage.req.eq(Mux(matched_in[i], 0, free))
                g = stage.grant
                # The output the chosen queue asks for, looked up once.
                want_out = Signal(bits(P), name=f"sep_want_{i}{tag}")
                for q in range(Q):
                    with m.If(g[q]):
                        m.d.comb += want_out.eq(outs[i][q])
                want.append([g.any() & (want_out == o) for o in range(P)])
                picks.append(g)
            grants = []     # grants[o]: P-bit one-hot over inputs
            for o in range(P):
                stage = arb[f"sep_out_{o}{tag}"]
                m.d.comb += [stage.req.eq(Cat(*[want[i][o] for i in range(P)])),
                             stage.update.eq(1)]
                grants.append(stage.grant)
            won = []
            for i in range(P):
                won_i = Signal(name=f"sep_won_{i}{tag}")
                m.d.comb += [won_i.eq(Cat(*[grants[o][i] for o in range(P)]).any()),
                             arb[f"sep_in_{i}{tag}"].update.eq(won_i)]
                won.append(won_i)
                pairs[i] = [pairs[i][o] | grants[o][i] for o in range(P)]
                # Unmatched, the input shows its first iteration's pick (not sent).
                picked[i] = picks[i] if k == 0 else Mux(won_i, picks[i], picked[i])
            matched_in = [matched_in[i] | won[i] for i in range(P)]
            matched_out = matched_out | Cat(*[grants[o].any() for o in range(P)])
        for i in range(P):
            m.d.comb += [self.requests[i].chosen.eq(picked[i]),
                         self.requests[i].match.eq(Cat(*pairs[i]))]
        return m


class ISlipAllocator(SwitchAllocator):
    """iSLIP: request, grant, accept; pointers move on first-iteration accepts only.

    Every eligible queue requests its output; each output grants one requesting input
    (``islip_g_{o}``), each input accepts one grant (``islip_a_{i}``); later iterations
    (``..._it{k}``) match what is left with the first iteration's priorities. A matched
    input sends, round-robin (``islip_q_{i}``), one of its eligible queues for its output.
    """

    def _make_arbiters(self):
        p = self._params
        P, Q = p.ports, p.queue_count
        arb = {}
        for k in range(p.islip_iterations):
            for o in range(P):
                arb[f"islip_g_{o}" if k == 0 else f"islip_g_{o}_it{k}"] = \
                    self._classes["islip_grant" if k == 0 else "islip_follow"](
                        n=P, follow=k > 0)
            for i in range(P):
                arb[f"islip_a_{i}" if k == 0 else f"islip_a_{i}_it{k}"] = \
                    self._classes["islip_accept" if k == 0 else "islip_follow"](
                        n=P, follow=k > 0)
        for i in range(P):
            arb[f"islip_q_{i}"] = self._classes["islip_queue"](n=Q)
        return arb

    def elaborate(self, platform: object) -> Module:
        m = self._module()
        arb = self.arbiters
        P, Q, elig, outs = self._ports()
        req = [[Cat(*[elig[i][q] & (outs[i][q] == o) for q in range(Q)]).any()
                for o in range(P)] for i in range(P)]
        matched_in = [Const(0, 1)] * P
        matched_out = [Const(0, 1)] * P
        acc = [[Const(0, 1)] * P for _ in range(P)]
        for k in range(self._params.islip_iterations):
            tag = "" if k == 0 else f"_it{k}"
            grants = []  # grants[o]: P-bit one-hot over inputs
            for o in range(P):
                g = arb[f"islip_g_{o}{tag}"]
                m.d.comb += g.req.eq(Cat(*[req[i][o] & ~matched_in[i] & ~matched_out[o]
                                           for i in range(P)]))
                if k > 0:
                    m.d.comb += g.mask.eq(arb[f"islip_g_{o}"].mask)
                grants.append(g.grant)
            accepts = []  # accepts[i]: P-bit one-hot over outputs
            for i in range(P):
                a = arb[f"islip_a_{i}{tag}"]
                m.d.comb += a.req.eq(Cat(*[grants[o][i] for o in range(P)]))
                if k > 0:
                    m.d.comb += a.mask.eq(arb[f"islip_a_{i}"].mask)
                accepts.append(a.grant)
            if k == 0:
                for o in range(P):
                    m.d.comb += arb[f"islip_g_{o}"].update.eq(
                        Cat(*[accepts[i][o] for i in range(P)]).any())
                for i in range(P):
                    m.d.comb += arb[f"islip_a_{i}"].update.eq(accepts[i].any())
            acc = [[acc[i][o] | accepts[i][o] for o in range(P)] for i in range(P)]
            matched_in = [matched_in[i] | accepts[i].any() for i in range(P)]
            matched_out = [matched_out[o] | Cat(*[accepts[i][o] for i in range(P)]).any()
                           for o in range(P)]
        for i in range(P):
            m.d.comb += self.requests[i].match.eq(Cat(*acc[i]))
            # Which queue of input i goes to its matched output: round-robin over queues.
            q_arb = arb[f"islip_q_{i}"]
            m.d.comb += [
                q_arb.req.eq(Cat(*[elig[i][q] & Cat(*[acc[i][o] & (outs[i][q] == o)
                                                      for o in range(P)]).any()
                                   for q in range(Q)])),
                q_arb.update.eq(1),
                self.requests[i].chosen.eq(q_arb.grant),
            ]
        return m


#: The allocator component of each ``RouterParams.allocator``.
ALLOCATOR_CLASSES = {"separable": SeparableAllocator, "islip": ISlipAllocator}
