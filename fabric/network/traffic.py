"""Traffic patterns, endpoint injectors and ejectors, scoreboard and watchdog, shared by the RTL bench and the model."""

from collections import deque
from dataclasses import dataclass, asdict

import numpy as np

from rtl.errors import UserError
from rtl.router_params import RouterParams
from .checks import DeadlockError, ScoreboardError, check_cfg_writes
from .flit import Flit, flit_data

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

    def __post_init__(self):
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


def _parse_backpressure(text: str):
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


def _check_power_of_two(pattern, n):
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

    def __init__(self, spec, *, endpoints: int, vcs: int):
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
        self._cache = {}
        self._next = 0

    @property
    def cycles(self) -> int:
        """Cycles generated so far."""
        return self._next * self.BLOCK

    def _fixed_destinations(self):
        n, pattern = self.n, self.spec.pattern
        src = np.arange(n, dtype=np.int64)
        if pattern == "transpose":
            b = n.bit_length() - 1
            h = b // 2
            return ((src << h) | (src >> (b - h))) & (n - 1) if b else np.zeros_like(src)
        if pattern == "bit_complement":
            return ~src & (n - 1)
        return None

    def _block(self):
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

    def block(self, b: int):
        """``(create, dest, vc, drain)`` of block ``b`` (cycles ``b * BLOCK`` on). Blocks
        are generated in order and only the last few are kept, so ``b`` must not go back
        more than one block."""
        while self._next <= b:
            self._cache[self._next] = self._block()
            self._next += 1
            self._cache.pop(self._next - 3, None)
        return self._cache[b]

    def row(self, t: int):
        """``(create, dest, vc, drain)`` rows of cycle ``t``."""
        b, k = divmod(t, self.BLOCK)
        create, dest, vc, drain = self.block(b)
        return create[k], dest[k], vc[k], drain[k]

    def window(self, b: int, blocks: int):
        """Blocks ``b .. b + blocks - 1`` joined: four arrays of ``blocks * BLOCK`` rows."""
        parts = [self.block(k) for k in range(b, b + blocks)]
        return tuple(np.ascontiguousarray(np.concatenate(p)) for p in zip(*parts))


class _Packet:
    __slots__ = ("src", "dest", "pkt", "vc", "length", "created", "injected", "next",
                 "measured", "sent")

    def __init__(self, src, dest, pkt, vc, length, created, measured):
        self.src, self.dest, self.pkt, self.vc = src, dest, pkt, vc
        self.length, self.created, self.measured = length, created, measured
        self.injected = None
        self.next = 0     # next flit index expected at the ejector
        self.sent = 0     # flits injected so far


class Endpoints:
    """All endpoints of a network: injectors, ejectors, scoreboard, watchdog and statistics.

    Call :meth:`step` once per cycle with what the network shows at its endpoint links
    this cycle; it returns what the endpoints drive this cycle. The same object drives
    the RTL (through the cocotb bench) and the model, so both see identical traffic.

    Parameters
    ----------
    endpoints : int
        Number of endpoints.
    vcs : int
        Virtual channels per link.
    buffer_depth : int
        Flits per VC buffer of the routers (the injectors' initial credits, and the
        depth of each ejector's per-VC buffer).
    flit_width : int
        Payload bits per flit.
    spec : TrafficSpec
    zero_load : callable (src, dest, length) -> int, optional
        Zero-load latency, for the report.
    packet_id_width : int
        Width of the flits' packet id; a source's packet ids wrap around at
        ``2**packet_id_width``, as the field does.
    """

    def __init__(self, *, endpoints: int, vcs: int, buffer_depth: int, flit_width: int,
                 spec: TrafficSpec, zero_load=None,
                 packet_id_width: int = RouterParams.packet_id_width):
        self.n = n = endpoints
        self.vcs = vcs
        self.depth = buffer_depth
        self.flit_width = flit_width
        self.packet_id_mask = (1 << packet_id_width) - 1
        self.spec = spec
        self.zero_load = zero_load
        self.schedule = TrafficSchedule(spec, endpoints=n, vcs=vcs)
        self.source_queue = [deque() for _ in range(n)]
        self.current = [None] * n          # packet being injected, per source
        self.credits = [[buffer_depth] * vcs for _ in range(n)]
        self.eject_queue = [deque() for _ in range(n)]
        self.credit_pending = [0] * n
        self.next_pkt = [0] * n
        self.created_count = [0] * n
        self.in_flight = {}                 # (src, pkt id) -> _Packet (head injected)
        self.flows = {}                     # (src, dest, vc) -> deque of pkt ids in order
        self.held = [dict() for _ in range(n)]  # per ejector: (src, pkt id) -> arrived packet
        self.held_packets = 0               # packets that arrived ahead of their flow
        self.held_max = 0                   # most packets held at once at one ejector
        self.delivered = set()
        self.cycle = 0
        self.idle_cycles = 0
        self.latencies = []                 # measured packets: tail out - creation
        self.network_latencies = []         # measured packets: tail out - head injected
        self.hops_latency = []              # measured packets: latency - zero-load latency
        self.min_excess = {}                # zero-load latency -> least (latency - it) seen
        self.measured_created = 0
        self.measured_outstanding = 0
        self.ejected_in_window = 0
        self.ejected_per_port = [0] * n
        self.created_flits_in_window = 0
        self.flits_moved = 0
        self.packets_delivered = 0
        self.last_delivery = None
        self.creating = True
        self.done = False
        self.saturated = False

    # -- one cycle -----------------------------------------------------------------------
    def step(self, ejected, credits_in):
        """Observe this cycle's ejected flits and returned credits; return
        ``(flit to inject per endpoint or None, credit pulses per endpoint)``."""
        t = self.cycle
        spec = self.spec
        row = self.schedule.row(t)      # (create, dest, vc, drain) of this cycle
        moved = False
        credits_out = self.credit_pending
        self.credit_pending = [0] * self.n
        finite = spec.packets_per_source > 0
        window = finite or spec.warmup <= t < spec.warmup + spec.measure
        for e, flit in enumerate(ejected):
            if flit is None:
                continue
            moved = True
            self._check(e, flit, t)
            if window:
                self.ejected_in_window += 1
                self.ejected_per_port[e] += 1
            self.eject_queue[e].append((t + 1, flit.vc))
        for e in range(self.n):
            q = self.eject_queue[e]
            if q and q[0][0] <= t and row[3][e]:
                self.credit_pending[e] = 1 << q.popleft()[1]

        # Phase control.
        end_window = spec.warmup + spec.measure
        if finite:
            if self.creating and self.measured_outstanding == 0 \
                    and min(self.created_count) >= spec.packets_per_source:
                self.creating = False
        elif self.creating and t >= end_window and (
                self.measured_outstanding == 0 or t >= end_window + spec.drain):
            self.creating = False
            self.saturated = self.measured_outstanding > 0
        if self.creating:
            self._create(t, window, *row[:3])

        inject = [None] * self.n
        for s in range(self.n):
            pkt = self.current[s]
            if pkt is None:
                if not self.creating or not self.source_queue[s]:
                    continue
                pkt = self.source_queue[s][0]
                if self.credits[s][pkt.vc] == 0:
                    continue
                self.source_queue[s].popleft()
                self.current[s] = pkt
                pkt.injected = t
                self.in_flight[(s, pkt.pkt)] = pkt
                self.flows.setdefault((s, pkt.dest, pkt.vc), deque()).append(pkt.pkt)
            elif self.credits[s][pkt.vc] == 0:
                continue
            idx = pkt.sent
            inject[s] = Flit(int(idx == 0), int(idx == pkt.length - 1), pkt.vc, pkt.dest, s,
                             pkt.pkt, flit_data(s, pkt.pkt, idx, self.flit_width))
            self.credits[s][pkt.vc] -= 1
            pkt.sent += 1
            moved = True
            if pkt.sent == pkt.length:
                self.current[s] = None
        for s, pulses in enumerate(credits_in):
            if pulses:
                for v in range(self.vcs):
                    if pulses >> v & 1:
                        self.credits[s][v] += 1

        # Watchdog and end of run.
        busy = bool(self.in_flight) or any(q for q in self.eject_queue)
        if moved or not busy:
            self.idle_cycles = 0
        else:
            self.idle_cycles += 1
            if self.idle_cycles >= spec.watchdog:
                raise DeadlockError(
                    f"watchdog: no flit moved for {spec.watchdog} cycles (cycle {t}) with "
                    f"{len(self.in_flight)} packets in flight; the network is deadlocked "
                    f"or an ejector is stuck")
        if not self.creating and not busy and not any(self.current) \
                and not any(self.credit_pending):
            self.done = True
        self.cycle = t + 1
        return inject, credits_out

    def _create(self, t, window, create, dest, vc):
        spec = self.spec
        quota = spec.packets_per_source
        for s in np.flatnonzero(create).tolist():
            if quota and self.created_count[s] >= quota:
                continue
            self.created_count[s] += 1
            pid = self.next_pkt[s]
            self.next_pkt[s] = (pid + 1) & self.packet_id_mask
            pkt = _Packet(s, int(dest[s]), pid, int(vc[s]), spec.packet_length, t, window)
            self.source_queue[s].append(pkt)
            if window:
                self.measured_created += 1
                self.measured_outstanding += 1
                self.created_flits_in_window += spec.packet_length

    # -- scoreboard ----------------------------------------------------------------------
    def _check(self, port, flit, t):
        key = (flit.src, flit.pkt)
        pkt = self.in_flight.get(key)
        where = f"at cycle {t}, output port {port}"
        if pkt is None:
            if key in self.delivered:
                raise ScoreboardError(f"duplicate: packet {flit.pkt} of source {flit.src} "
                                      f"arrived again {where}")
            raise ScoreboardError(f"unknown flit from source {flit.src} packet {flit.pkt} "
                                  f"{where} (corrupted header)")
        if flit.dest != port or pkt.dest != port:
            raise ScoreboardError(f"misroute: packet {pkt.pkt} from {pkt.src} to {pkt.dest} "
                                  f"left the network {where}")
        idx = pkt.next
        if flit.first != (idx == 0) or flit.last != (idx == pkt.length - 1) \
                or flit.vc != pkt.vc \
                or flit.data != flit_data(pkt.src, pkt.pkt, idx, self.flit_width):
            raise ScoreboardError(f"corrupt or reordered flit {idx} of packet {pkt.pkt} from "
                                  f"{pkt.src} to {pkt.dest} {where}: got {flit}")
        if idx == 0 and self.spec.ordered:
            flow = self.flows[(pkt.src, pkt.dest, pkt.vc)]
            if flow[0] != pkt.pkt:
                raise ScoreboardError(
                    f"reorder: packet {pkt.pkt} of flow {pkt.src}->{pkt.dest} VC {pkt.vc} "
                    f"arrived before packet {flow[0]} {where}")
            flow.popleft()
        pkt.next = idx + 1
        self.flits_moved += 1
        if pkt.next < pkt.length:
            return
        del self.in_flight[key]
        self.delivered.add(key)
        if self.spec.ordered:
            self._release(pkt, t)
            return
        # Resequencing: release the flow's packets in order, as far as they are in.
        flow = self.flows[(pkt.src, pkt.dest, pkt.vc)]
        held = self.held[port]
        if flow[0] != pkt.pkt:
            held[key] = pkt
            self.held_packets += 1
            self.held_max = max(self.held_max, len(held))
            return
        flow.popleft()
        self._release(pkt, t)
        while flow and (pkt.src, flow[0]) in held:
            self._release(held.pop((pkt.src, flow.popleft())), t)

    def _release(self, pkt, t):
        """Packet ``pkt`` reaches its endpoint, complete and in flow order, at cycle ``t``."""
        self.packets_delivered += 1
        self.last_delivery = t
        if pkt.measured:
            self.measured_outstanding -= 1
            self.latencies.append(t - pkt.created)
            self.network_latencies.append(t - pkt.injected)
            if self.zero_load is not None:
                zero = self.zero_load(pkt.src, pkt.dest, pkt.length)
                excess = t - pkt.created - zero
                self.hops_latency.append(excess)
                self.min_excess[zero] = min(excess, self.min_excess.get(zero, excess))

    def finish(self):
        """Final scoreboard check: nothing left unmatched. Raises on a lost packet."""
        if self.in_flight:
            key, pkt = next(iter(self.in_flight.items()))
            raise ScoreboardError(
                f"loss: {len(self.in_flight)} packets never arrived, e.g. packet {pkt.pkt} "
                f"from {pkt.src} to {pkt.dest} ({pkt.next} of {pkt.length} flits seen)")

    # -- results -------------------------------------------------------------------------
    def result(self) -> dict:
        """Statistics of the measurement window."""
        spec = self.spec
        lat = np.array(self.latencies, dtype=float)
        finite = spec.packets_per_source > 0
        if finite:
            cycles = (self.last_delivery or 0) + 1
            window = cycles
            accepted = self.flits_moved / (cycles * self.n)
            offered = self.created_flits_in_window / (cycles * self.n)
        else:
            window = spec.measure
            accepted = self.ejected_in_window / (spec.measure * self.n)
            offered = self.created_flits_in_window / (spec.measure * self.n)
        return {
            "offered_load": spec.load,
            "offered_load_measured": offered,
            "accepted_throughput": accepted,
            "accepted_per_port": [x / window for x in self.ejected_per_port],
            "completion_cycles": (self.last_delivery or 0) + 1 if finite else None,
            "latency_mean": float(lat.mean()) if lat.size else None,
            "latency_p99": float(np.percentile(lat, 99)) if lat.size else None,
            "latency_min": float(lat.min()) if lat.size else None,
            "network_latency_mean": float(np.mean(self.network_latencies))
            if self.network_latencies else None,
            "measured_packets": int(lat.size),
            "packets_delivered": self.packets_delivered,
            "flits_delivered": self.flits_moved,
            "saturated": self.saturated,
            "resequenced_packets": self.held_packets,
            "resequence_max_held": self.held_max,
            "cycles": self.cycle,
            "min_excess_by_zero_load": {str(k): v for k, v in sorted(self.min_excess.items())},
        }


#: How a network model is run: the compiled engine, or the Python reference stepped here.
MODELS = ("compiled", "python")


def run_endpoints(network, eps: Endpoints, *, max_cycles: int = 10_000_000, cfg_writes=(),
                  model: str = "compiled") -> dict:
    """Run ``network`` (a fresh :class:`~fabric.network.model.NetworkModel`) under the
    endpoints ``eps`` until the run ends; returns the :meth:`Endpoints.result` dict.

    ``cfg_writes`` are ``(cycle, dest, port)`` routing-table writes into router 0;
    ``model`` is ``"compiled"`` (:mod:`fabric.network.engine`) or ``"python"`` (the
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
    cfg = {c: (d, p) for c, d, p in cfg_writes}
    while not eps.done:
        if eps.cycle >= max_cycles:
            raise DeadlockError(f"the run did not end within {max_cycles} cycles")
        ejected, credits = network.outputs()
        inject, credits_out = eps.step(ejected, credits)
        network.step(inject, credits_out)
        if eps.cycle - 1 in cfg:
            network.routers[0].set_route(*cfg[eps.cycle - 1])
    eps.finish()
    result = eps.result()
    stats = network.router_stats()
    if stats:
        result["router_stats"] = stats
    return result


def run_model(network, spec: TrafficSpec, *, flit_width: int, vcs: int, buffer_depth: int,
              zero_load=None, max_cycles: int = 10_000_000, model: str = "compiled") -> dict:
    """Run ``network`` under ``spec`` with fresh endpoints (:func:`run_endpoints`)."""
    eps = Endpoints(endpoints=len(network.endpoints), vcs=vcs, buffer_depth=buffer_depth,
                    flit_width=flit_width, spec=spec, zero_load=zero_load,
                    packet_id_width=network.routers[0].params.packet_id_width)
    return run_endpoints(network, eps, max_cycles=max_cycles, model=model)
