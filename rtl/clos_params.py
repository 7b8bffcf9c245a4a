"""The Clos's parameters: validation, shape, routing tables of its routers, wiring and latency."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

from .errors import UserError, check_int
from .router_params import RouterParams

__all__ = ["ClosParams", "UP_ROUTINGS", "ROUTER_KEYS"]

#: How a leaf picks the spine for a packet leaving it.
UP_ROUTINGS = ("deterministic", "balanced")

#: The fields of :class:`ClosParams` that are every router's (the rest is the shape).
ROUTER_KEYS = ("vcs", "buffer_depth", "flit_width", "allocator", "separable_iterations",
               "islip_iterations", "voq", "stats", "packet_id_width")


@dataclass(frozen=True)
class ClosParams:
    """A two-tier folded Clos: ``leaves`` leaf routers with ``endpoints_per_leaf`` endpoint
    ports and one up-link to each of ``spines`` spine routers.

    Endpoint ``e`` sits on leaf ``e // endpoints_per_leaf``, port ``e % endpoints_per_leaf``.
    A leaf sends a packet for one of its own endpoints straight down; any other packet goes
    up to a spine, which sends it down to the destination's leaf. The spine is
    ``dest % spines`` (``up_routing="deterministic"``), or the leaf spreads successive
    packets of each input round-robin over all spines (``"balanced"``; packets of one flow
    may then arrive out of order, flits within a packet never do).

    The router fields (:data:`ROUTER_KEYS`) are those of every router; the routers' own
    parameters, routing tables included, are :attr:`leaf_params` and :attr:`spine_params`.

    Parameters
    ----------
    endpoints_per_leaf : int
        Endpoint ports per leaf, 1..radix-1.
    leaves : int
        Leaf routers, 2..radix (the spine radix).
    spines : int
        Spine routers, 1..radix-1; ``endpoints_per_leaf + spines`` is the leaf radix.
        (The radix is the router's, ``ROUTER_PARAMS.MAX_PORTS``.)
    up_routing : str
        ``"deterministic"`` or ``"balanced"`` (needs at least two spines).
    vcs, buffer_depth, flit_width, allocator, separable_iterations, islip_iterations, voq,
    stats, packet_id_width :
        As in :class:`~supernode.rtl.router_params.RouterParams`, for every router.
    """

    endpoints_per_leaf: int = 2
    leaves: int = 4
    spines: int = 2
    up_routing: str = "deterministic"
    vcs: int = RouterParams.vcs
    buffer_depth: int = RouterParams.buffer_depth
    flit_width: int = RouterParams.flit_width
    allocator: str = RouterParams.allocator
    separable_iterations: int = RouterParams.separable_iterations
    islip_iterations: int = RouterParams.islip_iterations
    voq: bool = RouterParams.voq
    stats: bool = RouterParams.stats
    packet_id_width: int = RouterParams.packet_id_width

    #: The parameter class of the routers the Clos is made of, and so its radix limit.
    ROUTER_PARAMS: ClassVar[type[RouterParams]] = RouterParams

    def __post_init__(self) -> None:
        radix = self.ROUTER_PARAMS.MAX_PORTS
        E, L, S = self.endpoints_per_leaf, self.leaves, self.spines
        check_int("endpoints_per_leaf", E, 1, radix - 1)
        check_int("leaves", L, 2, radix)
        check_int("spines", S, 1, radix - 1)
        if E + S > radix:
            raise UserError(f"endpoints_per_leaf + spines is the leaf radix and must be at "
                            f"most {radix}, not {E + S}")
        if self.up_routing not in UP_ROUTINGS:
            raise UserError(f"up_routing must be one of {', '.join(UP_ROUTINGS)}, "
                            f"not {self.up_routing!r}")
        if self.up_routing == "balanced" and S < 2:
            raise UserError(f"balanced up-routing needs at least 2 spines, not {S!r}")
        # Validate every router now, so that a bad value fails at construction.
        self.leaf_params, self.spine_params     # noqa: B018

    @classmethod
    def from_options(cls, **options: Any) -> "ClosParams":
        """``ClosParams(**options)``, naming an unknown key (say, ``ports``) in one sentence."""
        shape = ("endpoints_per_leaf", "leaves", "spines", "up_routing")
        for key in options:
            if key not in shape and key not in ROUTER_KEYS:
                raise UserError(f"router parameter must be one of {', '.join(ROUTER_KEYS)}, "
                                f"not {key!r}")
        return cls(**options)

    @property
    def endpoints(self) -> int:
        """Endpoints of the fabric."""
        return self.endpoints_per_leaf * self.leaves

    @property
    def router(self) -> dict:
        """The router fields, as keywords."""
        return {k: getattr(self, k) for k in ROUTER_KEYS}

    def leaf_routes(self, leaf: int) -> tuple:
        """Routing table of leaf ``leaf``: its own endpoints down, the rest up to spine
        ``dest % spines`` (port ``endpoints_per_leaf + dest % spines``)."""
        E, S = self.endpoints_per_leaf, self.spines
        return tuple(d % E if d // E == leaf else E + d % S for d in range(self.endpoints))

    def spine_routes(self) -> tuple:
        """Routing table of every spine: down to the destination's leaf."""
        return tuple(d // self.endpoints_per_leaf for d in range(self.endpoints))

    @cached_property
    def leaf_params(self) -> tuple:
        """The parameters of each leaf router."""
        E, S = self.endpoints_per_leaf, self.spines
        spread = tuple(range(E, E + S)) if self.up_routing == "balanced" else ()
        return tuple(self.ROUTER_PARAMS(ports=E + S, destinations=self.endpoints,
                                        routes=self.leaf_routes(leaf), spread=spread,
                                        **self.router)
                     for leaf in range(self.leaves))

    @cached_property
    def spine_params(self) -> tuple:
        """The parameters of each spine router."""
        return tuple(self.ROUTER_PARAMS(ports=self.leaves, destinations=self.endpoints,
                                        routes=self.spine_routes(), **self.router)
                     for _ in range(self.spines))

    @property
    def flit_layout(self):
        """Layout of a flit on every link."""
        return self.leaf_params[0].flit_layout

    @property
    def router_names(self) -> list:
        """Names of the routers, leaves first: ``leaf0``, ..., ``spine0``, ..."""
        return [f"leaf{k}" for k in range(self.leaves)] + \
            [f"spine{k}" for k in range(self.spines)]

    @property
    def wires(self) -> list:
        """``(leaf, spine, leaf_port, spine_port)`` of every leaf-spine link pair."""
        return [(leaf, spine, self.endpoints_per_leaf + spine, leaf)
                for leaf in range(self.leaves) for spine in range(self.spines)]

    def endpoint_port(self, e: int) -> tuple:
        """``(leaf, port)`` where endpoint ``e`` is attached."""
        return e // self.endpoints_per_leaf, e % self.endpoints_per_leaf

    def hops(self, src: int, dest: int) -> int:
        """Routers a packet from ``src`` to ``dest`` passes through."""
        E = self.endpoints_per_leaf
        return 1 if src // E == dest // E else 3

    def zero_load_latency(self, src: int, dest: int, packet_length: int) -> int:
        """Zero-load cycles from a packet's creation (head sent at once) to its tail out."""
        return self.leaf_params[0].latency * self.hops(src, dest) + packet_length - 1

    def as_dict(self) -> dict:
        """The fields as keywords."""
        return {"endpoints_per_leaf": self.endpoints_per_leaf, "leaves": self.leaves,
                "spines": self.spines, "up_routing": self.up_routing, **self.router}
