"""Two-tier folded Clos (leaf-spine) fabric built from the switch router."""

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .router import Router, link_signature, ROUTER_LATENCY, unused

__all__ = ["Clos", "UP_ROUTINGS"]

#: How a leaf picks the spine for a packet leaving it.
UP_ROUTINGS = ("deterministic", "balanced")


def _check_int(name, value, lo, hi):
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer from {lo} to {hi}, not {value!r}")


class Clos(wiring.Component):
    """Two-tier folded Clos: ``leaves`` leaf routers with ``endpoints_per_leaf`` endpoint
    ports and one up-link to each of ``spines`` spine routers.

    Endpoint ``e`` sits on leaf ``e // endpoints_per_leaf``, port ``e % endpoints_per_leaf``.
    A leaf sends a packet for one of its own endpoints straight down; any other packet
    goes up to a spine, which sends it down to the destination's leaf. The spine is
    ``dest % spines`` (``up_routing="deterministic"``), or the leaf spreads successive
    packets of each input round-robin over all spines (``"balanced"``; packets of one
    flow may then arrive out of order, flits within a packet never do).

    Parameters
    ----------
    endpoints_per_leaf : int
        Endpoint ports per leaf, 1..15.
    leaves : int
        Leaf routers, 2..16 (the spine radix).
    spines : int
        Spine routers, 1..15; ``endpoints_per_leaf + spines`` is the leaf radix (<= 16).
        (The bounds follow the router's radix, ``ROUTER.MAX_PORTS``.)
    up_routing : str
        ``"deterministic"`` or ``"balanced"`` (needs at least two spines).
    **router_params
        ``vcs``, ``buffer_depth``, ``flit_width``, ``allocator``, ``islip_iterations``,
        ``voq``, ``stats`` of every router (the counters are read from the routers,
        submodules ``leaf<k>`` and ``spine<k>``).

    Members
    -------
    inp : In(link_signature).array(endpoints)
        Injection links of the endpoints.
    outp : Out(link_signature).array(endpoints)
        Ejection links of the endpoints.
    """

    #: The router class the Clos is made of, and so its radix limit (``ROUTER.MAX_PORTS``).
    ROUTER = Router

    ROUTER_KEYS = ("vcs", "buffer_depth", "flit_width", "allocator", "islip_iterations", "voq",
                   "stats")

    def __init__(self, *, endpoints_per_leaf: int = 2, leaves: int = 4, spines: int = 2,
                 up_routing: str = "deterministic", **router_params):
        radix = self.ROUTER.MAX_PORTS
        _check_int("endpoints_per_leaf", endpoints_per_leaf, 1, radix - 1)
        _check_int("leaves", leaves, 2, radix)
        _check_int("spines", spines, 1, radix - 1)
        if endpoints_per_leaf + spines > radix:
            raise ValueError(f"endpoints_per_leaf + spines is the leaf radix and must be at "
                             f"most {radix}, not {endpoints_per_leaf + spines}")
        if up_routing not in UP_ROUTINGS:
            raise ValueError(f"up_routing must be one of {', '.join(UP_ROUTINGS)}, "
                             f"not {up_routing!r}")
        if up_routing == "balanced" and spines < 2:
            raise ValueError(f"balanced up-routing needs at least 2 spines, not {spines!r}")
        for key in router_params:
            if key not in self.ROUTER_KEYS:
                raise ValueError(f"router parameter must be one of "
                                 f"{', '.join(self.ROUTER_KEYS)}, not {key!r}")
        self._E, self._L, self._S = endpoints_per_leaf, leaves, spines
        self._up_routing = up_routing
        E, L, S = endpoints_per_leaf, leaves, spines
        n = E * L
        self._router_params = dict(router_params)
        if E + S < 2:
            raise ValueError(f"a leaf needs at least 2 ports, not {E + S}")
        self._leaf_params = []
        for leaf in range(L):
            routes = [d % E if d // E == leaf else E + d % S for d in range(n)]
            spread = list(range(E, E + S)) if up_routing == "balanced" else []
            self._leaf_params.append(dict(router_params, ports=E + S, destinations=n,
                                          routes=routes, spread=spread))
        self._spine_params = [dict(router_params, ports=L, destinations=n,
                                   routes=[d // E for d in range(n)])
                              for _ in range(S)]
        # Validate every router now, so that a bad value fails at construction.
        probe = unused(self.ROUTER(**self._leaf_params[0]))
        unused(self.ROUTER(**self._spine_params[0]))
        self._vcs = probe.vcs
        link = link_signature(probe.flit_layout, probe.vcs)
        self._flit_layout = probe.flit_layout
        super().__init__({
            "inp": In(link).array(n),
            "outp": Out(link).array(n),
        })

    endpoints_per_leaf = property(lambda self: self._E, doc="Endpoint ports per leaf.")
    leaves = property(lambda self: self._L, doc="Leaf routers.")
    spines = property(lambda self: self._S, doc="Spine routers.")
    up_routing = property(lambda self: self._up_routing, doc="Up-routing mode.")
    endpoints = property(lambda self: self._E * self._L, doc="Endpoints of the fabric.")
    flit_layout = property(lambda self: self._flit_layout, doc="Layout of a flit.")
    leaf_params = property(lambda self: [dict(p) for p in self._leaf_params],
                           doc="Parameters of each leaf router.")
    spine_params = property(lambda self: [dict(p) for p in self._spine_params],
                            doc="Parameters of each spine router.")
    vcs = property(lambda self: self._vcs, doc="Virtual channels per link.")

    @property
    def router_names(self):
        """Submodule names of the routers, leaves first: ``leaf0``, ..., ``spine0``, ..."""
        return [f"leaf{k}" for k in range(self._L)] + [f"spine{k}" for k in range(self._S)]

    @property
    def wires(self):
        """``(leaf, spine, leaf_port, spine_port)`` of every leaf-spine link pair."""
        return [(leaf, spine, self._E + spine, leaf)
                for leaf in range(self._L) for spine in range(self._S)]

    def endpoint_port(self, e: int):
        """``(leaf, port)`` where endpoint ``e`` is attached."""
        return e // self._E, e % self._E

    def hops(self, src: int, dest: int) -> int:
        """Routers a packet from ``src`` to ``dest`` passes through."""
        return 1 if src // self._E == dest // self._E else 3

    def zero_load_latency(self, src: int, dest: int, packet_length: int) -> int:
        """Zero-load cycles from a packet's creation (head sent at once) to its tail out."""
        return ROUTER_LATENCY * self.hops(src, dest) + packet_length - 1

    def elaborate(self, platform):
        m = Module()
        leaves = [self.ROUTER(**p) for p in self._leaf_params]
        spines = [self.ROUTER(**p) for p in self._spine_params]
        for k, r in enumerate(leaves):
            m.submodules[f"leaf{k}"] = r
        for k, r in enumerate(spines):
            m.submodules[f"spine{k}"] = r
        for leaf, spine, lp, sp in self.wires:
            wiring.connect(m, up=leaves[leaf].outp[lp], down_in=spines[spine].inp[sp])
            wiring.connect(m, down=spines[spine].outp[sp], up_in=leaves[leaf].inp[lp])
        for e in range(self.endpoints):
            leaf, port = self.endpoint_port(e)
            wiring.connect(m, inject=wiring.flipped(self.inp[e]), leaf_in=leaves[leaf].inp[port])
            wiring.connect(m, leaf_out=leaves[leaf].outp[port], eject=wiring.flipped(self.outp[e]))
        return m
