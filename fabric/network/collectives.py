"""Cycles of an all-to-all (run on the Clos model) and of a ring all-reduce (from the model's figures)."""

import math
from typing import Any

from supernode.rtl.errors import UserError

from .figures import DEFAULT_ROUTER, clos_figures, default_clos_shape
from .model import clos_network
from .traffic import TrafficSpec, run_model

__all__ = ["all_to_all_cycles", "all_reduce_cycles"]


def _positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{name} must be a positive integer, not {value!r}")


def all_to_all_cycles(*, flits_per_pair: int, packet_length: int = 4, seed: int = 1,
                      **params: Any) -> dict:
    """Cycles for one all-to-all in which every endpoint sends ``flits_per_pair`` flits to
    every other endpoint, measured on the cycle-level Clos model (which the tests check
    against the RTL), run by the compiled engine.

    ``params`` are the router parameters and optionally the Clos shape
    (``endpoints_per_leaf``, ``leaves``, ``spines``, ``up_routing``), as for
    :func:`supernode.fabric.network.clos_figures`. Sources send to destinations in the shifted order
    ``src+1, src+2, ...`` (the usual schedule), back to back.
    """
    _positive("flits_per_pair", flits_per_pair)
    _positive("packet_length", packet_length)
    shape_keys = ("endpoints_per_leaf", "leaves", "spines", "up_routing")
    shape = {k: params.pop(k) for k in shape_keys if k in params}
    router = dict(DEFAULT_ROUTER, **params)
    ports = router.pop("ports")
    if not shape.keys() >= {"endpoints_per_leaf", "leaves", "spines"}:
        shape = dict(default_clos_shape(ports), **shape)
    n = shape["endpoints_per_leaf"] * shape["leaves"]
    packets_per_pair = math.ceil(flits_per_pair / packet_length)
    spec = TrafficSpec(pattern="all_to_all", load=1.0, packet_length=packet_length,
                       burst=packets_per_pair, packets_per_source=packets_per_pair * (n - 1),
                       warmup=0, seed=seed, ordered=shape.get("up_routing") != "balanced")
    net = clos_network(**shape, **router)
    res = run_model(net, spec, flit_width=router["flit_width"], vcs=router["vcs"],
                    buffer_depth=router["buffer_depth"])
    flits = packets_per_pair * packet_length * (n - 1)
    return {"cycles": res["completion_cycles"], "endpoints": n,
            "flits_per_endpoint": flits, "throughput": flits / res["completion_cycles"],
            "clos": shape, "router": dict(router, ports=ports)}


def all_reduce_cycles(*, flits_per_endpoint: int, pattern: str = "uniform",
                      **params: Any) -> dict:
    """Cycles of a ring all-reduce (reduce-scatter then all-gather) of ``flits_per_endpoint``
    flits on the Clos, from the model's figures.

    ``2 (N - 1)`` steps each move ``flits / N`` flits per endpoint across the Clos: a step
    takes the zero-load latency of the longest path (3 router hops) plus its flits at the
    saturation throughput measured on the model for ``pattern``. This is an analytic
    estimate on measured figures, not a simulation of the collective.
    """
    _positive("flits_per_endpoint", flits_per_endpoint)
    fig = clos_figures(pattern=pattern, **params)
    n = fig.clos["endpoints_per_leaf"] * fig.clos["leaves"]
    chunk = math.ceil(flits_per_endpoint / n)
    step = 3 * fig.hop_latency_cycles + chunk / fig.saturation_throughput
    return {"cycles": 2 * (n - 1) * step, "endpoints": n, "steps": 2 * (n - 1),
            "step_cycles": step, "saturation_throughput": fig.saturation_throughput,
            "source": fig.source}
