"""Traffic specs and schedules, the endpoints that run them on the verification components, and the model runner."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, asdict
from typing import TYPE_CHECKING, Any

import numpy as np

from supernode.rtl.errors import UserError
from supernode.rtl.router_params import RouterParams
from .checks import DeadlockError, ScoreboardError, check_cfg_writes
from .lockstep import LockStep, ModelBackend
from .verification import Resequencer, RunStatistics, Scoreboard, Sink, Source, ZeroLoad

if TYPE_CHECKING:
    from .flit import Flit
    from .model import NetworkModel

#: One block of the schedule: ``(create, dest, vc, drain)``, a row per cycle.
Block = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

__all__ = [
    "PATTERNS", "TrafficSpec", "TrafficSchedule", "Endpoints", "ScoreboardError",
    "DeadlockError", "MODELS", "run_model", "run_endpoints",
]

PATTERNS = ("uniform", "transpose", "bit_complement", "hotspot", "all_to_all")


@dataclass(frozen=True)
class TrafficSpec:
    """What the endpoints inject and how the run is measured.

    Members
    -------
    pattern : str
        One of :data:`PATTERNS`.
    load : float
        Offered load in flits per cycle per endpoint, (0, 1].
    packet_length : int
        Flits per packet.
    warmup, measure : int
        Cycles of warm-up, then of measurement; packets created in the measurement
        window are the measured ones.
    drain : int
        Cycles after the window allowed for the measured packets to arrive.
    seed : int
        Seed of every random choice (packet creation, destinations, VCs, back-pressure),
        all drawn ahead of time by :class:`TrafficSchedule`.
    backpressure : str
        Ejector drain pattern: ``"none"``, ``"periodic:1110"`` (one digit per cycle,
        repeating), or ``"random:P"`` (drains with probability P each cycle).
    hotspot_fraction : float
        Share of packets sent to endpoint 0 under ``hotspot``.
    burst : int
        Packets to each destination in turn under ``all_to_all``.
    watchdog : int
        Cycles without any flit injected or ejected, with packets in flight, after which
        the run fails as deadlocked.
    ordered : bool
        True: the network itself must deliver the packets of each (source, destination,
        VC) flow in order, and the scoreboard fails the run on a reorder. False (for
        per-packet balanced up-routing, where packets of a flow may overtake each other
        across spines): each ejecting endpoint resequences, holding a packet that arrives
        ahead of an earlier packet of its flow until that one is in; latency is counted
        to the release, and the result reports how many packets were held and the most
        held at once at one endpoint.
    packets_per_source : int
        0: open-loop traffic measured in the window. N > 0: a finite exchange: every
        source creates exactly N packets (at the offered load) and the run ends when
        all have arrived; every packet is measured and ``completion_cycles`` reported
        (e.g. ``all_to_all`` with N = endpoints - 1 is one complete all-to-all).
    """
    pattern: str = "uniform"
    load: float = 0.5
    packet_length: int = 1
    warmup: int = 200
    measure: int = 1000
    drain: int = 4000
    seed: int = 1
    backpressure: str = "none"
    hotspot_fraction: float = 0.25
    burst: int = 1
    watchdog: int = 500
    ordered: bool = True
    packets_per_source: int = 0

    def __post_init__(self) -> None:
        if self.pattern not in PATTERNS:
            raise UserError(f"pattern must be one of {', '.join(PATTERNS)}, "
                            f"not {self.pattern!r}")
        if not isinstance(self.load, (int, float)) or not 0 < self.load <= 1:
            raise UserError(f"offered load must be in (0, 1] flits/cycle/port, "
                            f"not {self.load!r}")
        for name, lo in (("packet_length", 1), ("warmup", 0), ("measure", 1), ("drain", 0),
                         ("burst", 1), ("watchdog", 1), ("packets_per_source", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < lo:
                raise UserError(f"{name} must be an integer >= {lo}, not {value!r}")
        if self.packet_length > 64:
            raise UserError(f"packet_length must be at most 64 flits, "
                            f"not {self.packet_length!r}")
        if not 0 <= self.hotspot_fraction <= 1:
            raise UserError(f"hotspot_fraction must be in [0, 1], "
                            f"not {self.hotspot_fraction!r}")
        _parse_backpressure(self.backpressure)

    def as_dict(self) -> dict:
        """The fields as a plain dict (for JSON and the bench)."""
        return asdict(self)


def _parse_backpressure(text: str) -> tuple[str, Any]:
    if text == "none":
        return ("none", None)
    kind, _, arg = text.partition(":")
    if kind == "periodic" and arg and set(arg) <= {"0", "1"}:
        return ("periodic", [c == "1" for c in arg])
    if kind == "random":
        try:
            p = float(arg)
        except ValueError:
            p = -1.0
        if 0 < p <= 1:
            return ("random", p)
    raise UserError(f"back-pressure must be 'none', 'periodic:<0/1 digits>' or "
                    f"'random:<probability in (0, 1]>', not {text!r}")


def _check_power_of_two(pattern: str, n: int) -> None:
    if n & (n - 1):
        raise UserError(f"the {pattern} pattern needs a power-of-two number of endpoints, "
                        f"not {n}")


class TrafficSchedule:
    """All random choices of a run, drawn in numpy ahead of time, block by block.

    Row ``t`` of each array is cycle ``t``, column ``s`` endpoint ``s``: ``create[t, s]``
    says whether source ``s`` creates a packet at cycle ``t``, ``dest[t, s]`` and
    ``vc[t, s]`` are that packet's destination and virtual channel, ``drain[t, e]`` whether
    ejector ``e`` may drain a flit at cycle ``t`` (its back-pressure). Blocks of
    :attr:`BLOCK` cycles are generated in order from streams seeded by the spec's seed,
    so a row never depends on who asks for it or when: the Python endpoints, the compiled
    engine and the RTL bench all read the same traffic.

    Parameters
    ----------
    spec : TrafficSpec
    endpoints : int
    vcs : int
    """

    BLOCK = 1024

    def __init__(self, spec: TrafficSpec, *, endpoints: int, vcs: int) -> None:
        self.spec = spec
        self.n = n = endpoints
        self.vcs = vcs
        if spec.pattern in ("transpose", "bit_complement"):
            _check_power_of_two(spec.pattern, n)
        self._p_packet = spec.load / spec.packet_length
        self._bp_kind, self._bp_arg = _parse_backpressure(spec.backpressure)
        seed = spec.seed
        self._create_rng = np.random.default_rng(seed)
        self._dest_rng = np.random.default_rng([seed, 1])
        self._vc_rng = np.random.default_rng([seed, 2])
        self._drain_rng = np.random.default_rng([seed, 3])
        self._events = np.zeros(n, dtype=np.int64)     # creation events so far per source
        self._fixed = self._fixed_destinations()
        self._cache: dict[int, Block] = {}
        self._next = 0

    @property
    def cycles(self) -> int:
        """Cycles generated so far."""
        return self._next * self.BLOCK

    def _fixed_destinations(self) -> np.ndarray | None:
        n, pattern = self.n, self.spec.pattern
        src = np.arange(n, dtype=np.int64)
        if pattern == "transpose":
            b = n.bit_length() - 1
            h = b // 2
            return ((src << h) | (src >> (b - h))) & (n - 1) if b else np.zeros_like(src)
        if pattern == "bit_complement":
            return ~src & (n - 1)
        return None

    def _block(self) -> Block:
        spec, n, B = self.spec, self.n, self.BLOCK
        create = self._create_rng.random((B, n)) < self._p_packet
        events = np.count_nonzero(create)
        pattern = spec.pattern
        # Destinations and VCs are drawn for the creation events only, in row order.
        dest = np.zeros((B, n), dtype=np.int32)
        if self._fixed is not None:
            dest[:] = self._fixed
        elif pattern == "uniform":
            dest[create] = self._dest_rng.integers(n, size=events)
        elif pattern == "hotspot":
            hot = self._dest_rng.random(events) < spec.hotspot_fraction
            dest[create] = np.where(hot, 0, self._dest_rng.integers(n, size=events))
        else:
            # all_to_all: packet k of source s goes to s + 1 + (k // burst) mod (n - 1).
            k = self._events + np.cumsum(create, axis=0) - 1
            self._events = k[-1] + 1
            src = np.arange(n)
            dest[:] = (src + 1 + (k // spec.burst) % (n - 1)) % n
        vc = np.zeros((B, n), dtype=np.int8)
        if self.vcs > 1:
            vc[create] = self._vc_rng.integers(self.vcs, size=events)
        if self._bp_kind == "none":
            drain = np.ones((B, n), dtype=np.bool_)
        elif self._bp_kind == "periodic":
            pattern_bits = np.array(self._bp_arg, dtype=np.bool_)
            t = np.arange(self.cycles, self.cycles + B)
            drain = np.repeat(pattern_bits[t % len(pattern_bits)][:, None], n, axis=1)
        else:
            drain = self._drain_rng.random((B, n)) < self._bp_arg
        return create, dest, vc, drain

    def block(self, b: int) -> Block:
        """``(create, dest, vc, drain)`` of block ``b`` (cycles ``b * BLOCK`` on). Blocks
        are generated in order and only the last few are kept, so ``b`` must not go back
        more than one block."""
        while self._next <= b:
            self._cache[self._next] = self._block()
            self._next += 1
            self._cache.pop(self._next - 3, None)
        return self._cache[b]

    def row(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(create, dest, vc, drain)`` rows of cycle ``t``."""
        b, k = divmod(t, self.BLOCK)
        create, dest, vc, drain = self.block(b)
        return create[k], dest[k], vc[k], drain[k]

    def window(self, b: int, blocks: int) -> tuple[np.ndarray, ...]:
        """Blocks ``b .. b + blocks - 1`` joined: four arrays of ``blocks * BLOCK`` rows."""
        parts = [self.block(k) for k in range(b, b + blocks)]
        return tuple(np.ascontiguousarray(np.concatenate(p)) for p in zip(*parts))


def _forward(part: str, name: str) -> property:
    """A read-write attribute of the endpoints that is ``name`` of component ``part``."""
    return property(lambda self: getattr(getattr(self, part), name),
                    lambda self, value: setattr(getattr(self, part), name, value),
                    doc=f"``{part}.{name}``")


def _per_source(name: str) -> property:
    """A read-write list of the sources' attribute ``name``, one entry per endpoint."""
    def set_all(self: Endpoints, values: Iterable[Any]) -> None:
        for source, value in zip(self.sources, values):
            setattr(source, name, value)
    return property(lambda self: [getattr(s, name) for s in self.sources], set_all,
                    doc=f"``source.{name}`` of every source")


class Endpoints:
    """All endpoints of a network under one traffic spec: a :class:`Source` and a
    :class:`Sink` per endpoint, one :class:`Scoreboard`, a :class:`Resequencer` per
    endpoint when the network may reorder (``spec.ordered`` false), one
    :class:`RunStatistics`, and the run's phases and watchdog.

    Call :meth:`step` once per cycle with what the network shows at its endpoint links
    this cycle; it returns what the endpoints drive this cycle.
    :class:`~supernode.fabric.network.lockstep.LockStep` does that against the RTL (cocotb or
    Amaranth's simulator) and the Python model alike, so all see identical traffic.

    Parameters
    ----------
    endpoints : int
        Number of endpoints.
    vcs : int
        Virtual channels per link.
    buffer_depth : int
        Flits per VC buffer of the routers (the sources' initial credits).
    flit_width : int
        Payload bits per flit.
    spec : TrafficSpec
    zero_load : callable (src, dest, length) -> int, optional
        Zero-load latency, for the report.
    packet_id_width : int
        Width of the flits' packet id; a source's packet ids wrap around at
        ``2**packet_id_width``, as the field does.

    Members
    -------
    sources, sinks : list of Source, list of Sink
    scoreboard : Scoreboard
    resequencers : list of Resequencer, or None when the network keeps flows in order
    stats : RunStatistics
    schedule : TrafficSchedule
    cycle : int
        The next cycle to step.
    creating : bool
        Sources still create packets and begin them.
    done : bool
        The run is over: nothing in flight, nothing more to send.
    """

    def __init__(self, *, endpoints: int, vcs: int, buffer_depth: int, flit_width: int,
                 spec: TrafficSpec, zero_load: ZeroLoad | None = None,
                 packet_id_width: int = RouterParams.packet_id_width) -> None:
        self.n = n = endpoints
        self.vcs = vcs
        self.depth = buffer_depth
        self.flit_width = flit_width
        self.packet_id_mask = (1 << packet_id_width) - 1
        self.spec = spec
        self.zero_load = zero_load
        self.schedule = TrafficSchedule(spec, endpoints=n, vcs=vcs)
        self.sources = [Source(s, vcs=vcs, buffer_depth=buffer_depth, flit_width=flit_width,
                               packet_id_mask=self.packet_id_mask) for s in range(n)]
        self.sinks = [Sink(e) for e in range(n)]
        self.scoreboard = Scoreboard(flit_width=flit_width, ordered=spec.ordered)
        self.resequencers: list[Resequencer] | None = (
            None if spec.ordered else [Resequencer() for _ in range(n)])
        self.stats = RunStatistics(endpoints=n, spec=spec, zero_load=zero_load)
        self.cycle = 0
        self.idle_cycles = 0
        self.creating = True
        self.done = False

    # The compiled engine (supernode.fabric.network.engine) reads a run's statistics back into these
    # names; they are the components' own attributes.
    latencies = _forward("stats", "latencies")
    network_latencies = _forward("stats", "network_latencies")
    hops_latency = _forward("stats", "hops_latency")
    min_excess = _forward("stats", "min_excess")
    measured_created = _forward("stats", "measured_created")
    measured_outstanding = _forward("stats", "measured_outstanding")
    ejected_in_window = _forward("stats", "ejected_in_window")
    ejected_per_port = _forward("stats", "ejected_per_port")
    created_flits_in_window = _forward("stats", "created_flits_in_window")
    flits_moved = _forward("stats", "flits_moved")
    packets_delivered = _forward("stats", "packets_delivered")
    last_delivery = _forward("stats", "last_delivery")
    held_packets = _forward("stats", "held_packets")
    held_max = _forward("stats", "held_max")
    saturated = _forward("stats", "saturated")
    created_count = _per_source("created")
    next_pkt = _per_source("next_pkt")

    # -- one cycle -----------------------------------------------------------------------
    def step(self, ejected: Sequence[Flit | None], credits_in: Sequence[int]
             ) -> tuple[list[Flit | None], list[int]]:
        """Observe this cycle's ejected flits and returned credits; return
        ``(flit to inject per endpoint or None, credit pulses per endpoint)``."""
        t = self.cycle
        spec, stats, sources, sinks = self.spec, self.stats, self.sources, self.sinks
        create, dest, vc, ready = self.schedule.row(t)
        moved = False
        credits_out = [sink.take_credit() for sink in sinks]
        finite = spec.packets_per_source > 0
        window = finite or spec.warmup <= t < spec.warmup + spec.measure
        for e, flit in enumerate(ejected):
            if flit is None:
                continue
            moved = True
            self._deliver(e, flit, t)
            if window:
                stats.ejected(e)
            sinks[e].accept(t, flit)
        for e, sink in enumerate(sinks):
            sink.drain(t, ready[e])

        # Phase control.
        end_window = spec.warmup + spec.measure
        if finite:
            if self.creating and stats.measured_outstanding == 0 \
                    and min(s.created for s in sources) >= spec.packets_per_source:
                self.creating = False
        elif self.creating and t >= end_window and (
                stats.measured_outstanding == 0 or t >= end_window + spec.drain):
            self.creating = False
            stats.saturated = stats.measured_outstanding > 0
        if self.creating:
            self._create(t, window, create, dest, vc)

        inject: list[Flit | None] = [None] * self.n
        for s, source in enumerate(sources):
            pkt, flit = source.send(t, start=self.creating)
            if flit is None:
                continue
            assert pkt is not None                  # sent with its flit
            if flit.first:
                self.scoreboard.expect(pkt)
                if self.resequencers is not None:
                    self.resequencers[pkt.dest].expect(pkt)
            inject[s] = flit
            moved = True
        for source, pulses in zip(sources, credits_in):
            if pulses:
                source.credit(pulses)

        # Watchdog and end of run.
        in_flight = self.scoreboard.in_flight
        busy = bool(in_flight) or any(sink.buffer for sink in sinks)
        if moved or not busy:
            self.idle_cycles = 0
        else:
            self.idle_cycles += 1
            if self.idle_cycles >= spec.watchdog:
                raise DeadlockError(
                    f"watchdog: no flit moved for {spec.watchdog} cycles (cycle {t}) with "
                    f"{len(in_flight)} packets in flight; the network is deadlocked "
                    f"or an ejector is stuck")
        if not self.creating and not busy and not any(s.current for s in sources) \
                and not any(sink.credit for sink in sinks):
            self.done = True
        self.cycle = t + 1
        return inject, credits_out

    def _create(self, t: int, window: bool, create: np.ndarray, dest: np.ndarray,
                vc: np.ndarray) -> None:
        spec = self.spec
        quota = spec.packets_per_source
        for s in np.flatnonzero(create).tolist():
            source = self.sources[s]
            if quota and source.created >= quota:
                continue
            self.stats.created(source.create(int(dest[s]), int(vc[s]), spec.packet_length,
                                             t, window))

    def _deliver(self, port: int, flit: Flit, t: int) -> None:
        """Score the flit delivered at ``port``; release its packet when complete (after
        the port's resequencer, if any)."""
        pkt = self.scoreboard.check(port, flit, t)
        self.stats.flits_moved += 1
        if pkt is None:
            return
        if self.resequencers is None:
            self.stats.release(pkt, t)
            return
        resequencer = self.resequencers[port]
        released = resequencer.arrive(pkt)
        if not released:
            self.stats.held(len(resequencer.held))
        for p in released:
            self.stats.release(p, t)

    def finish(self) -> None:
        """Final scoreboard check: nothing left unmatched. Raises on a lost packet."""
        self.scoreboard.finish()

    def result(self) -> dict[str, Any]:
        """Statistics of the measurement window."""
        return self.stats.result(self.cycle)


#: How a network model is run: the compiled engine, or the Python reference stepped here.
MODELS = ("compiled", "python")


def run_endpoints(network: NetworkModel, eps: Endpoints, *, max_cycles: int = 10_000_000,
                  cfg_writes: Sequence[tuple[int, int, int]] = (),
                  model: str = "compiled") -> dict[str, Any]:
    """Run ``network`` (a fresh :class:`~supernode.fabric.network.model.NetworkModel`) under the
    endpoints ``eps`` until the run ends; returns the :meth:`Endpoints.result` dict.

    ``cfg_writes`` are ``(cycle, dest, port)`` routing-table writes into router 0;
    ``model`` is ``"compiled"`` (:mod:`supernode.fabric.network.engine`) or ``"python"`` (the
    reference stepped cycle by cycle). Both give the same dict and raise the same
    :class:`ScoreboardError` or :class:`DeadlockError` on a failure. Routers built with
    ``stats=True`` add their performance counters (``router_stats``, as the RTL bench).
    """
    if model not in MODELS:
        raise UserError(f"model must be one of {', '.join(MODELS)}, not {model!r}")
    if model == "compiled":
        # Deferred: the engine imports numba; the RTL bench and the Python model run without it.
        from .engine import simulate
        return simulate(network, eps, max_cycles=max_cycles, cfg_writes=cfg_writes)
    router = network.routers[0]
    check_cfg_writes(cfg_writes, destinations=len(router.table), ports=router.P)
    LockStep(eps, max_cycles=max_cycles, cfg_writes=cfg_writes).run_now(ModelBackend(network))
    result = eps.result()
    stats = network.router_stats()
    if stats:
        result["router_stats"] = stats
    return result


def run_model(network: NetworkModel, spec: TrafficSpec, *, flit_width: int, vcs: int,
              buffer_depth: int, zero_load: ZeroLoad | None = None,
              max_cycles: int = 10_000_000, model: str = "compiled") -> dict[str, Any]:
    """Run ``network`` under ``spec`` with fresh endpoints (:func:`run_endpoints`)."""
    eps = Endpoints(endpoints=len(network.endpoints), vcs=vcs, buffer_depth=buffer_depth,
                    flit_width=flit_width, spec=spec, zero_load=zero_load,
                    packet_id_width=network.routers[0].params.packet_id_width)
    return run_endpoints(network, eps, max_cycles=max_cycles, model=model)
