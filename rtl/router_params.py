"""The router's parameters: validation, defaults, derived widths, queue numbering, layouts and latencies."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Optional, TypeVar

from amaranth.lib import data

from .errors import UserError, check_int

__all__ = ["RouterParams", "ALLOCATORS", "bits", "check_int", "build_params"]

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

P = TypeVar("P", bound="DataclassInstance")

#: Switch allocators the router can be built with.
ALLOCATORS = ("separable", "islip")


def bits(n: int) -> int:
    """Width of an unsigned field holding ``0..n-1`` (at least one bit)."""
    return max(1, (n - 1).bit_length())


def check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise UserError(f"{name} must be True or False, not {value!r}")


def build_params(cls: type[P], options: dict[str, Any], *, what: str) -> P:
    """``cls(**options)``, naming an unknown key in one sentence instead of a TypeError."""
    names = [f.name for f in fields(cls)]
    for key in options:
        if key not in names:
            raise UserError(f"{what} parameter must be one of {', '.join(names)}, not {key!r}")
    return cls(**options)


@dataclass(frozen=True)
class RouterParams:
    """Everything about one router that is a number, a width, a numbering or a latency.

    The RTL (:class:`supernode.rtl.router.Router`), the Python model, the compiled engine, the formal
    harnesses, the benches and the CLI all read this object; none restates what it says.
    Construction validates every field (a :class:`~supernode.rtl.errors.UserError` naming the value)
    and fills in the defaults that depend on other fields (``destinations``, ``routes``),
    so a :func:`dataclasses.replace` of an instance keeps the table it was given or given by
    default.

    Parameters
    ----------
    ports : int
        Number of input and output ports, 2..:attr:`MAX_PORTS`.
    vcs : int
        Virtual channels per port, 1..8.
    buffer_depth : int
        Flits per virtual channel in the input buffer (also the credits a router starts
        with per output VC: links join routers of the same depth), 1..64.
    flit_width : int
        Width of the flit payload ``data`` field in bits, 1..1024.
    allocator : str
        ``"separable"`` (input-first, round-robin arbiters) or ``"islip"``.
    separable_iterations : int
        Iterations of the separable allocator, 1..ports (only used with
        ``allocator="separable"``); 2 by default. In each iteration after the first, the
        inputs still unmatched ask again with a queue whose output is still free, through
        arbiters of that iteration's own, so that more VCs raise the saturation throughput
        (see ``docs/fabric.md``, "Saturation of an 8-port router"). One iteration is the
        smaller allocator with the shorter critical path.
    islip_iterations : int
        Iterations of iSLIP, 1..ports (only used with ``allocator="islip"``).
    voq : bool
        Virtual output queues at the inputs (per VC, one queue per output port).
    destinations : int
        Number of destination ids the routing table holds, 2..4096; defaults to the length
        of ``routes``, else to ``ports``.
    routes : tuple of int
        Initial routing table, destination id -> output port; defaults to ``dest % ports``.
    spread : tuple of int
        Output ports over which packets routed to any of them are spread round-robin per
        input (per-packet load balancing). Empty: deterministic routing.
    stats : bool
        Performance counters (``stats`` member of the router).
    packet_id_width : int
        Width of the flit's packet id ``pkt``, 1..32; packet ids wrap around at
        ``2**packet_id_width`` in the endpoints of every model and bench.
    """

    ports: int = 4
    vcs: int = 2
    buffer_depth: int = 4
    flit_width: int = 16
    allocator: str = "separable"
    separable_iterations: int = 2
    islip_iterations: int = 1
    voq: bool = False
    destinations: Optional[int] = None
    routes: Optional[tuple] = None
    spread: tuple = ()
    stats: bool = False
    packet_id_width: int = 16

    #: Largest radix accepted. The models lift it in a subclass, to reach switch radices
    #: beyond what is built as RTL here.
    MAX_PORTS: ClassVar[int] = 16

    #: Cycles from a flit valid on an input link to the same flit valid on an output link
    #: at zero load: one cycle to write the input buffer, one for allocation into the
    #: output register (which drives the link).
    HOP_LATENCY: ClassVar[int] = 2

    #: Cycles from a credit being spent (switch grant) until the same credit can be spent
    #: again, with a router of this kind (or an ejector that behaves like one) downstream:
    #: link (1) + downstream buffer write (1) + downstream grant and registered credit (1)
    #: + counter update (1).
    CREDIT_ROUND_TRIP: ClassVar[int] = 4

    #: Width of each performance counter; counters wrap around at ``2**STATS_WIDTH``.
    STATS_WIDTH: ClassVar[int] = 32

    def __post_init__(self) -> None:
        set_ = object.__setattr__.__get__(self)     # frozen: fill in the derived defaults
        check_int("ports", self.ports, 2, self.MAX_PORTS)
        check_int("vcs", self.vcs, 1, 8)
        check_int("buffer_depth", self.buffer_depth, 1, 64)
        check_int("flit_width", self.flit_width, 1, 1024)
        if self.allocator not in ALLOCATORS:
            raise UserError(f"allocator must be one of {', '.join(ALLOCATORS)}, "
                            f"not {self.allocator!r}")
        check_int("separable_iterations", self.separable_iterations, 1, self.ports)
        check_int("islip_iterations", self.islip_iterations, 1, self.ports)
        check_bool("voq", self.voq)
        destinations = self.destinations
        if destinations is None:
            destinations = self.ports if self.routes is None else len(self.routes)
        check_int("destinations", destinations, 2, 4096)
        given = self.routes
        routes = (tuple(d % self.ports for d in range(destinations)) if given is None
                  else tuple(given))
        if len(routes) != destinations:
            raise UserError(f"routes must have one entry per destination ({destinations}), "
                            f"not {len(routes)} entries")
        for d, r in enumerate(routes):
            if isinstance(r, bool) or not isinstance(r, int) or not 0 <= r < self.ports:
                raise UserError(f"routes[{d}] must be an output port from 0 to "
                                f"{self.ports - 1}, not {r!r}")
        spread = tuple(self.spread)
        if spread and (len(spread) < 2 or len(set(spread)) != len(spread)
                       or any(isinstance(p, bool) or not isinstance(p, int)
                              or not 0 <= p < self.ports for p in spread)):
            raise UserError(f"spread must be empty or at least two distinct output ports "
                            f"from 0 to {self.ports - 1}, not {spread!r}")
        check_bool("stats", self.stats)
        check_int("packet_id_width", self.packet_id_width, 1, 32)
        set_("destinations", destinations)
        set_("routes", routes)
        set_("spread", spread)

    # -- Published latencies -----------------------------------------------------------------

    @property
    def latency(self) -> int:
        """Zero-load cycles from a flit valid on an input to valid on an output."""
        return self.HOP_LATENCY

    @property
    def credit_round_trip(self) -> int:
        """Cycles from spending a credit to being able to spend it again (zero load)."""
        return self.CREDIT_ROUND_TRIP

    # -- Derived widths and numbering ---------------------------------------------------------

    @property
    def port_bits(self) -> int:
        """Width of a port number."""
        return bits(self.ports)

    @property
    def vc_bits(self) -> int:
        """Width of a VC number."""
        return bits(self.vcs)

    @property
    def dest_bits(self) -> int:
        """Width of a destination id (and of a source id: endpoints are destinations)."""
        assert self.destinations is not None     # filled in by __post_init__
        return bits(self.destinations)

    @property
    def packet_id_mask(self) -> int:
        """Packet ids wrap around with ``& packet_id_mask``."""
        return (1 << self.packet_id_width) - 1

    @property
    def queues(self) -> tuple:
        """The queues of one input, in the order the router numbers them: ``(vc, fixed
        output port or None)``. One per VC, or with ``voq`` one per (VC, output), VC-major."""
        if self.voq:
            return tuple((v, o) for v in range(self.vcs) for o in range(self.ports))
        return tuple((v, None) for v in range(self.vcs))

    @property
    def queue_count(self) -> int:
        """Queues per input."""
        return self.vcs * self.ports if self.voq else self.vcs

    def queue_of(self, vc: int, route: int) -> int:
        """The queue a flit of ``vc`` routed to ``route`` enters (Python integers)."""
        return vc * self.ports + route if self.voq else vc

    # -- Layouts ------------------------------------------------------------------------------

    @cached_property
    def flit_layout(self) -> data.StructLayout:
        """Layout of one flit on a link.

        ``first``/``last`` frame the packet; ``dest``, ``src`` and ``pkt`` identify it (every
        flit carries them so that a scoreboard can check each flit); ``vc`` is the virtual
        channel on the link; ``data`` is the payload of ``flit_width`` bits.
        """
        return data.StructLayout({
            "first": 1,
            "last": 1,
            "vc": self.vc_bits,
            "dest": self.dest_bits,
            "src": self.dest_bits,
            "pkt": self.packet_id_width,
            "data": self.flit_width,
        })

    @cached_property
    def entry_layout(self) -> data.StructLayout:
        """Layout of an input-buffer entry: the flit and the output port it is routed to."""
        return data.StructLayout({"flit": self.flit_layout, "out": self.port_bits})

    def as_dict(self) -> dict:
        """The fields as plain values (lists for the tables), e.g. for JSON or a build key."""
        out = asdict(self)
        assert self.routes is not None           # filled in by __post_init__
        out["routes"], out["spread"] = list(self.routes), list(self.spread)
        return out
