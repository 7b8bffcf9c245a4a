"""Figures of the network model that the system layer consumes: hop latency, credit loop, saturation."""

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supernode.fabric.sources import source_digest
from supernode.rtl.errors import UserError

from .model import ModelRouterParams, clos_network
from .traffic import PATTERNS, TrafficSpec, run_model

__all__ = ["NetworkFigures", "clos_figures", "default_clos_shape", "SATURATION_SPEC"]

#: How the saturation figure is measured: offered load 1.0 (every endpoint always has a
#: packet waiting), single-flit packets, accepted throughput in the measurement window.
SATURATION_SPEC: dict[str, Any] = dict(load=1.0, packet_length=1, warmup=300, measure=1200,
                                       drain=0, seed=1)

ROUTER_KEYS = ("ports", "vcs", "buffer_depth", "flit_width", "allocator",
               "separable_iterations", "islip_iterations", "voq")
DEFAULT_ROUTER = dict(ports=8, vcs=2, buffer_depth=8, flit_width=16, allocator="islip",
                      islip_iterations=2, voq=True)


@dataclass(frozen=True)
class NetworkFigures:
    """What the system layer needs to know about the switch fabric.

    Members
    -------
    hop_latency_cycles : int
        Zero-load cycles per router hop including its output link (RTL property
        ``RouterParams.latency``, checked against RTL measurements by the tests).
    credit_round_trip_cycles : int
        Cycles from spending a credit to spending it again
        (``RouterParams.credit_round_trip``).
    saturation_throughput : float
        Accepted flits/cycle/endpoint port at saturation, in (0, 1], from the model.
    pattern : str
        Traffic pattern the saturation figure is for.
    router : dict
        Router parameters (ports, vcs, buffer_depth, allocator, voq, ...).
    source : str
        One line: how the figures were obtained.
    clos : dict
        Shape of the Clos the saturation was measured on.
    """
    hop_latency_cycles: int
    credit_round_trip_cycles: int
    saturation_throughput: float
    pattern: str
    router: dict
    source: str
    clos: dict = field(default_factory=dict)


def default_clos_shape(ports: int) -> dict:
    """The largest two-tier folded Clos of ``ports``-port routers without
    oversubscription: ``ports`` leaves, each with ``ports // 2`` endpoints and
    ``ports // 2`` up-links, and ``ports // 2`` spines."""
    half = ports // 2
    return dict(endpoints_per_leaf=half, leaves=ports, spines=ports - half)


_MEMO: dict[str, float] = {}


def _cache_file() -> Path:
    root = Path(os.environ.get("SUPERNODE_BUILD", "build")).resolve()
    return root / "network" / "figures_cache.json"


def _model_digest() -> str:
    """Hash of this module's source and of every project module it imports (the models,
    the compiled engine, the RTL whose properties they read): a change to any of them
    measures the figures again."""
    return source_digest(__name__)


def clos_figures(*, pattern: str = "uniform", **router_params: Any) -> NetworkFigures:
    """Network figures of a two-tier folded Clos of routers with ``router_params``.

    The Clos is :func:`default_clos_shape` of the router radix (``ports``) unless
    ``endpoints_per_leaf``, ``leaves`` and ``spines`` are given. The saturation
    throughput is measured on the cycle-level model (which the tests check against the
    RTL; run by the compiled engine) and cached, in memory and on disk, so repeated calls
    are instant.
    """
    if pattern not in PATTERNS:
        raise UserError(f"pattern must be one of {', '.join(PATTERNS)}, not {pattern!r}")
    shape_keys = ("endpoints_per_leaf", "leaves", "spines", "up_routing")
    shape = {k: router_params.pop(k) for k in shape_keys if k in router_params}
    for key in router_params:
        if key not in ROUTER_KEYS:
            raise UserError(f"router parameter must be one of {', '.join(ROUTER_KEYS)} "
                            f"(or {', '.join(shape_keys)}), not {key!r}")
    params = dict(DEFAULT_ROUTER, **router_params)
    router = ModelRouterParams(**params)       # validates, names any bad value
    ports = params.pop("ports")
    if not shape.keys() >= {"endpoints_per_leaf", "leaves", "spines"}:
        shape = dict(default_clos_shape(ports), **shape)
    shape.setdefault("up_routing", "deterministic")

    key = json.dumps({"pattern": pattern, "router": params, "shape": shape,
                      "spec": SATURATION_SPEC}, sort_keys=True)
    if key not in _MEMO:
        digest = _model_digest()
        cache = _cache_file()
        stored = {}
        if cache.exists():
            try:
                stored = json.loads(cache.read_text())
            except (OSError, ValueError):
                stored = {}
        entry = stored.get(key)
        if entry is None or entry.get("digest") != digest:
            net = clos_network(**shape, **params)
            spec = TrafficSpec(pattern=pattern, ordered=shape["up_routing"] != "balanced",
                               **SATURATION_SPEC)
            res = run_model(net, spec, flit_width=params["flit_width"], vcs=params["vcs"],
                            buffer_depth=params["buffer_depth"])
            entry = {"digest": digest, "saturation": res["accepted_throughput"]}
            stored[key] = entry
            try:
                cache.parent.mkdir(parents=True, exist_ok=True)
                # One temporary file per process: parallel test workers share the cache.
                tmp = cache.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(json.dumps(stored, indent=1))
                os.replace(tmp, cache)
            except OSError:
                pass
        _MEMO[key] = entry["saturation"]
    sat = _MEMO[key]
    endpoints = shape["endpoints_per_leaf"] * shape["leaves"]
    return NetworkFigures(
        hop_latency_cycles=router.latency,
        credit_round_trip_cycles=router.credit_round_trip,
        saturation_throughput=sat,
        pattern=pattern,
        router=dict(params, ports=ports),
        source=(f"cycle-level router model (checked against the RTL by "
                f"tests/test_network_calibration.py) of a {endpoints}-endpoint folded Clos "
                f"({shape['leaves']} leaves x {shape['endpoints_per_leaf']} endpoints, "
                f"{shape['spines']} spines, {shape['up_routing']} up-routing), {pattern} "
                f"traffic at offered load 1.0 for {SATURATION_SPEC['measure']} cycles"),
        clos=shape,
    )
