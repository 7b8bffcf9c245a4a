"""Cycle-level Python model of the router RTL and of networks (single router, Clos) built from it."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from supernode.rtl.clos_params import ClosParams
from supernode.rtl.router_params import RouterParams

from .flit import Flit

#: Where an endpoint or a link attaches: ``(router, port)``.
Port = tuple[int, int]

__all__ = ["RouterModel", "NetworkModel", "router_network", "clos_network",
           "MODEL_MAX_PORTS", "ModelRouterParams", "ModelClosParams"]

#: Largest router radix the models accept. The RTL stops at ``RouterParams.MAX_PORTS``
#: (16); the models carry the same micro-architecture on to the radices of real supernode
#: switches (a CloudMatrix 384 L2 switch has 48 ports), an extrapolation that is checked
#: against the RTL only up to 16 ports.
MODEL_MAX_PORTS = 64

#: The router's performance counters, in the order the RTL bench reads them.
STATS_COUNTERS = ("sent", "credit_stalls", "blocked")


class ModelRouterParams(RouterParams):
    """:class:`~supernode.rtl.router_params.RouterParams` for radices up to :data:`MODEL_MAX_PORTS`:
    what the models accept."""
    MAX_PORTS = MODEL_MAX_PORTS


class ModelClosParams(ClosParams):
    """:class:`~supernode.rtl.clos_params.ClosParams` of routers up to :data:`MODEL_MAX_PORTS` ports."""
    ROUTER_PARAMS = ModelRouterParams


class _RoundRobin:
    """Mirror of ``supernode.rtl.router._rr_arbiter``: the priority is a mask of requesters at or
    after the pointer; the lowest masked requester wins, else the lowest requester."""

    __slots__ = ("mask", "full")

    def __init__(self, n):
        self.full = (1 << n) - 1
        self.mask = self.full

    def pick(self, req: int) -> int:
        masked = req & self.mask
        p = masked if masked else req
        return p & -p

    def update(self, grant: int):
        if grant:
            self.mask = ~((grant << 1) - 1) & self.full


class RouterModel:
    """Cycle-level model of :class:`supernode.rtl.router.Router`, written to mirror its
    micro-architecture: the same queues, route lookup on arrival, the same allocators
    with the same round-robin pointers, the same registered outputs and credit timing.

    Use :meth:`outputs` for the registered outputs of the current cycle, then
    :meth:`step` with the inputs of the current cycle to advance one clock edge.

    This is the readable reference: :mod:`supernode.fabric.network.engine` runs the same
    micro-architecture compiled, and the tests hold the two to identical results.

    Parameters
    ----------
    params : RouterParams
        The router's parameters (any :class:`~supernode.rtl.router_params.RouterParams`); or, instead,
        its fields as keywords, validated by :class:`ModelRouterParams` (``ports`` up to
        :data:`MODEL_MAX_PORTS`).
    """

    def __init__(self, params: RouterParams | None = None, /, **options: Any) -> None:
        if params is None:
            params = ModelRouterParams(**options)
        self.params = params
        self.latency = params.latency
        self.credit_round_trip = params.credit_round_trip
        P, V, D = params.ports, params.vcs, params.buffer_depth
        self.P, self.V, self.D = P, V, D
        self.voq = params.voq
        self.allocator = params.allocator
        # Iterations of the allocator the router is built with.
        self.iterations = params.separable_iterations if self.allocator == "separable" \
            else params.islip_iterations
        assert params.routes is not None        # filled in by RouterParams
        self.table = list(params.routes)
        self.spread = params.spread
        self.spread_set = frozenset(self.spread)
        self.queue_spec = params.queues
        Q = self.Q = params.queue_count
        self.queues: list[list[deque[tuple[Flit, int]]]] = [
            [deque() for _ in range(Q)] for _ in range(P)]
        self.held = [[0] * V for _ in range(P)]
        self.turn = [0] * P
        self.credit = [[D] * V for _ in range(P)]
        self.busy = [[False] * V for _ in range(P)]
        # Claims on output VCs, (output, vc) -> claimant input; their arbiters.
        self.claims: dict[tuple[int, int], int] = {}
        self.claim_arb = [[_RoundRobin(P) for _ in range(V)] for _ in range(P)]
        if self.allocator == "separable":
            # One input and one output arbiter per port for every iteration.
            self.in_arb = [[_RoundRobin(Q) for _ in range(P)]
                           for _ in range(params.separable_iterations)]
            self.out_arb = [[_RoundRobin(P) for _ in range(P)]
                            for _ in range(params.separable_iterations)]
        else:
            self.grant_arb = [_RoundRobin(P) for _ in range(P)]
            self.accept_arb = [_RoundRobin(P) for _ in range(P)]
            self.queue_arb = [_RoundRobin(Q) for _ in range(P)]
        self.out_flits: list[Flit | None] = [None] * P
        self.in_credits = [0] * P
        self.occupancy = 0
        # The RTL's performance counters (``stats=True``), counted the same way.
        self.counters = {name: [0] * P for name in STATS_COUNTERS} \
            if params.stats else None

    def set_route(self, dest: int, port: int) -> None:
        """Rewrite one routing-table entry (what the RTL ``cfg`` port does)."""
        self.table[dest] = port

    def outputs(self) -> tuple[list[Flit | None], list[int]]:
        """``(flits on each output link, credit pulses on each input link)`` this cycle."""
        return self.out_flits, self.in_credits

    def _eligible(self, i, waiting):
        """Bit vector of queues of input ``i`` that may send, and their output ports;
        adds input ``i`` to ``waiting[(output, vc)]`` where its head flit finds the VC held
        or out of credits."""
        elig, outs = 0, []
        credit, busy, claims = self.credit, self.busy, self.claims
        for q, (v, fixed) in enumerate(self.queue_spec):
            queue = self.queues[i][q]
            if not queue:
                outs.append(fixed)
                continue
            flit, out = queue[0]
            if fixed is not None:
                out = fixed
            outs.append(out)
            if flit.first:
                # A head flit waits (and may claim) while its VC is held or out of credits.
                if busy[out][v] or not credit[out][v]:
                    waiting[out, v] = waiting.get((out, v), 0) | (1 << i)
                    continue
                if claims.get((out, v), i) != i:
                    continue
            if credit[out][v]:
                elig |= 1 << q
        return elig, outs

    def step(self, in_flits: Sequence[Flit | None], out_credits: Sequence[int]) -> None:
        """Advance one clock edge given this cycle's input flits and output credit pulses."""
        P, V = self.P, self.V
        # Allocation on the state of this cycle.
        active = [i for i in range(P) if any(self.queues[i])] if self.occupancy else []
        elig: dict[int, int] = {}
        outs: dict[int, list[int]] = {}
        waiting: dict[tuple[int, int], int] = {}
        for i in active:
            e, o = self._eligible(i, waiting)
            if e:
                elig[i], outs[i] = e, o
        matches = self._separable(elig, outs) if self.allocator == "separable" \
            else self._islip(elig, outs)
        if self.counters is not None:
            self._count(active, matches)

        new_out: list[Flit | None] = [None] * P
        new_credits = [0] * P
        spend = []
        for i, o, q in matches:
            v = self.queue_spec[q][0]
            flit, _ = self.queues[i][q].popleft()
            self.occupancy -= 1
            new_out[o] = flit
            new_credits[i] = 1 << v
            spend.append((o, v, flit))
        credit = self.credit
        for o in range(P):
            pulses = out_credits[o]
            if pulses:
                for v in range(V):
                    if pulses >> v & 1:
                        credit[o][v] += 1
        for o, v, flit in spend:
            credit[o][v] -= 1
            if flit.first:
                # Only the claimant's head flit can take a claimed VC: the claim is met.
                self.claims.pop((o, v), None)
                if not flit.last:
                    self.busy[o][v] = True
            elif flit.last:
                self.busy[o][v] = False
        # A VC without a claim is claimed by one of the inputs waiting for it (with
        # one VC a router has no claims).
        if V > 1:
            for (o, v), req in waiting.items():
                if (o, v) not in self.claims:
                    arb = self.claim_arb[o][v]
                    g = arb.pick(req)
                    arb.update(g)
                    self.claims[o, v] = g.bit_length() - 1
        self.out_flits = new_out
        self.in_credits = new_credits

        # Arrivals: route lookup, then into the queue.
        for i in range(P):
            flit = in_flits[i]
            if flit is None:
                continue
            if flit.first:
                route = self.table[flit.dest]
                if route in self.spread_set:
                    route = self.spread[self.turn[i]]
                    self.turn[i] = (self.turn[i] + 1) % len(self.spread)
                self.held[i][flit.vc] = route
            else:
                route = self.held[i][flit.vc]
            q = self.params.queue_of(flit.vc, route)
            self.queues[i][q].append((flit, route))
            self.occupancy += 1

    def _count(self, active, matches):
        """Advance the performance counters on this cycle's state and allocation."""
        sent, stalls, blocked = (self.counters[name] for name in STATS_COUNTERS)
        for o, flit in enumerate(self.out_flits):
            if flit is not None:
                sent[o] += 1
        starved = set()     # outputs a queue head waits at for a credit
        for i in active:
            for q, (v, fixed) in enumerate(self.queue_spec):
                queue = self.queues[i][q]
                if queue:
                    out = queue[0][1] if fixed is None else fixed
                    if not self.credit[out][v]:
                        starved.add(out)
        won = {o for _, o, _ in matches}
        for o in starved - won:
            stalls[o] += 1
        for i in set(active) - {i for i, _, _ in matches}:
            blocked[i] += 1

    def stats(self) -> dict[str, list[int]] | None:
        """The performance counters as the RTL reads them: ``{counter: [per port]}``,
        wrapped at ``2**STATS_WIDTH``; None without ``stats=True``."""
        if self.counters is None:
            return None
        wrap = (1 << self.params.STATS_WIDTH) - 1
        return {name: [c & wrap for c in self.counters[name]] for name in STATS_COUNTERS}

    def _separable(self, elig, outs):
        """Input-first separable allocation, iterated: each input asks for the output of
        one eligible queue, each output grants one asking input. In a later iteration the
        inputs still unmatched ask again, among their queues whose output is still free,
        through that iteration's own arbiters; a pointer moves when its pick is matched."""
        matched_in = matched_out = 0
        matches = []
        for in_arb, out_arb in zip(self.in_arb, self.out_arb):
            want = {}  # output -> bit vector of inputs
            picked = {}
            for i, e in elig.items():
                if matched_in >> i & 1:
                    continue
                if matched_out:
                    e = self._to_free_outputs(e, outs[i], matched_out)
                if not e:
                    continue
                g = in_arb[i].pick(e)
                q = g.bit_length() - 1
                picked[i] = q
                o = outs[i][q]
                want[o] = want.get(o, 0) | (1 << i)
            for o, req in want.items():
                g = out_arb[o].pick(req)
                out_arb[o].update(g)
                i = g.bit_length() - 1
                in_arb[i].update(1 << picked[i])
                matches.append((i, o, picked[i]))
                matched_in |= 1 << i
                matched_out |= 1 << o
            if not want:
                break
        return matches

    @staticmethod
    def _to_free_outputs(elig, outs, matched_out):
        """The queues of ``elig`` whose output is not in ``matched_out``."""
        keep, q, e = 0, 0, elig
        while e:
            if e & 1 and not matched_out >> outs[q] & 1:
                keep |= 1 << q
            e >>= 1
            q += 1
        return keep

    def _islip(self, elig, outs):
        req = {}  # output -> bit vector of requesting inputs
        for i, e in elig.items():
            o_list = outs[i]
            q = 0
            while e:
                if e & 1:
                    o = o_list[q]
                    req[o] = req.get(o, 0) | (1 << i)
                e >>= 1
                q += 1
        matched_in = 0
        matched_out = 0
        match_of = {}
        updates = []
        for k in range(self.iterations):
            grants = {}  # input -> bit vector of granting outputs
            grant_of = {}
            for o, r in req.items():
                if matched_out >> o & 1:
                    continue
                r &= ~matched_in
                if not r:
                    continue
                g = self.grant_arb[o].pick(r)
                grant_of[o] = g
                i = g.bit_length() - 1
                grants[i] = grants.get(i, 0) | (1 << o)
            if not grants:
                break
            accepted = []
            for i, r in grants.items():
                a = self.accept_arb[i].pick(r)
                o = a.bit_length() - 1
                accepted.append((i, o, a))
            for i, o, a in accepted:
                if k == 0:   # pointers move after the cycle, on first-iteration accepts
                    updates.append((i, o, a, grant_of[o]))
                matched_in |= 1 << i
                matched_out |= 1 << o
                match_of[i] = o
        for i, o, a, g in updates:
            self.accept_arb[i].update(a)
            self.grant_arb[o].update(g)
        matches = []
        for i, o in match_of.items():
            o_list = outs[i]
            qreq = 0
            e = elig[i]
            for q in range(self.Q):
                if e >> q & 1 and o_list[q] == o:
                    qreq |= 1 << q
            g = self.queue_arb[i].pick(qreq)
            self.queue_arb[i].update(g)
            matches.append((i, o, g.bit_length() - 1))
        return matches


class NetworkModel:
    """Routers joined by links, with endpoints attached to some of their ports.

    Parameters
    ----------
    routers : list of RouterModel
    links : list of ((router, out_port), (router, in_port))
        Router-to-router links.
    endpoints : list of ((router, in_port), (router, out_port))
        For endpoint ``e``: where it injects and where it ejects.
    hops : callable (src, dest) -> int
        Routers on the path from ``src`` to ``dest``.
    names : list of str
        The routers' names in the RTL (``router``; ``leaf0``, ..., ``spine0``, ...).
    """

    def __init__(self, routers: list[RouterModel], links: list[tuple[Port, Port]],
                 endpoints: list[tuple[Port, Port]], hops: Callable[[int, int], int],
                 names: list[str]) -> None:
        self.routers = routers
        self.names = names
        self.links = links
        self.endpoints = endpoints
        self.hops = hops
        self.latency = routers[0].latency
        # feed[r][p]: where router r input p gets flits: ("r", router, port) or ("e", e).
        self._flit_src: list[list[tuple[Any, int] | None]] = [[None] * r.P for r in routers]
        self._credit_src: list[list[tuple[Any, int] | None]] = [[None] * r.P for r in routers]
        for (a, ao), (b, bi) in links:
            self._flit_src[b][bi] = (a, ao)
            self._credit_src[a][ao] = (b, bi)
        self._inject_at = [None] * len(endpoints)
        for e, ((ri, pi), (ro, po)) in enumerate(endpoints):
            self._flit_src[ri][pi] = ("e", e)
            self._credit_src[ro][po] = ("e", e)

    def router_stats(self) -> dict[str, dict[str, list[int]] | None] | None:
        """The counters of the routers built with ``stats=True``, by name (as the RTL
        bench reports them), or None when there are none."""
        stats = {name: r.stats() for name, r in zip(self.names, self.routers)
                 if r.counters is not None}
        return stats or None

    def outputs(self) -> tuple[list[Flit | None], list[int]]:
        """``(flit at each endpoint's ejection link, credits at each injection link)``."""
        ejected: list[Flit | None] = []
        credits: list[int] = []
        for (ri, pi), (ro, po) in self.endpoints:
            ejected.append(self.routers[ro].out_flits[po])
            credits.append(self.routers[ri].in_credits[pi])
        return ejected, credits

    def step(self, inject: Sequence[Flit | None], credits_out: Sequence[int]) -> None:
        """Advance one edge; ``inject[e]``/``credits_out[e]`` are the endpoints' drives."""
        routers = self.routers
        inputs = []
        for r, router in enumerate(routers):
            in_flits: list[Flit | None] = [None] * router.P
            out_credits = [0] * router.P
            for p in range(router.P):
                src = self._flit_src[r][p]
                if src is not None:
                    in_flits[p] = inject[src[1]] if src[0] == "e" \
                        else routers[src[0]].out_flits[src[1]]
                src = self._credit_src[r][p]
                if src is not None:
                    out_credits[p] = credits_out[src[1]] if src[0] == "e" \
                        else routers[src[0]].in_credits[src[1]]
            inputs.append((in_flits, out_credits))
        for router, (in_flits, out_credits) in zip(routers, inputs):
            router.step(in_flits, out_credits)


def router_network(params: RouterParams | None = None, /, **options: Any) -> NetworkModel:
    """A single router with one endpoint on every port."""
    router = RouterModel(params, **options)
    eps = [((0, p), (0, p)) for p in range(router.P)]
    return NetworkModel([router], [], eps, hops=lambda s, d: 1, names=["router"])


def clos_network(params: ClosParams | None = None, /, **options: Any) -> NetworkModel:
    """The two-tier folded Clos of :class:`~supernode.rtl.clos_params.ClosParams` as a network of
    router models; given as keywords, routers of up to :data:`MODEL_MAX_PORTS` ports."""
    clos = params if params is not None else ModelClosParams.from_options(**options)
    routers = [RouterModel(p) for p in clos.leaf_params + clos.spine_params]
    links = []
    for leaf, spine, leaf_port, spine_port in clos.wires:
        links.append(((leaf, leaf_port), (clos.leaves + spine, spine_port)))
        links.append(((clos.leaves + spine, spine_port), (leaf, leaf_port)))
    eps = []
    for e in range(clos.endpoints):
        leaf, port = clos.endpoint_port(e)
        eps.append(((leaf, port), (leaf, port)))
    return NetworkModel(routers, links, eps, hops=clos.hops, names=clos.router_names)
