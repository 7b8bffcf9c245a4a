"""Run RTL and model side by side: one point, or a latency-vs-offered-load sweep with its plot."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

from supernode.fabric.network.traffic import TrafficSpec
from .common import Design, run_rtl, run_rtl_points, run_model_for

__all__ = ["compare_point", "sweep", "plot_sweep", "DEFAULT_LOADS"]

DEFAULT_LOADS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
KEYS = ("offered_load", "offered_load_measured", "accepted_throughput", "latency_mean",
        "latency_p99", "latency_min", "network_latency_mean", "measured_packets",
        "saturated", "cycles", "completion_cycles", "resequenced_packets",
        "resequence_max_held")


def compare_point(design: Design, spec: TrafficSpec, *, sim: str = "verilator",
                  waves: bool = False) -> dict:
    """Run the RTL bench and the model on the same traffic; one JSON-ready dict.

    Raises :class:`supernode.sim.runner.SimulationError` when the RTL run fails (scoreboard,
    watchdog); the message says why.
    """
    run = run_rtl(design, spec, sim=sim, waves=waves)
    rtl = run.result
    model = run_model_for(design, spec)
    out = {"passed": bool(rtl["passed"]), "design": design.kind, "params": design.params,
           "pattern": spec.pattern, "packet_length": spec.packet_length, "seed": spec.seed}
    for key in KEYS:
        out[key] = rtl.get(key)
        out[f"model_{key}"] = model.get(key)
    out["sim"] = sim
    out["waves"] = str(run.waves) if run.waves else None
    out["rtl_wall_seconds"] = rtl["wall_seconds"]
    out["flits_delivered"] = rtl["flits_delivered"]
    out["model_matches_rtl_exactly"] = all(rtl.get(k) == model.get(k)
                                           for k in KEYS + ("router_stats",))
    if "router_stats" in rtl:
        out["router_stats"] = rtl["router_stats"]
        out["model_router_stats"] = model["router_stats"]
    return out


def sweep(design: Design, spec: TrafficSpec, loads: Sequence[float], *, sim: str = "verilator",
          rtl: bool = True, model_loads: Sequence[float] | None = None,
          progress: bool = True) -> dict:
    """Latency and throughput against offered load, RTL points and a model line.

    ``spec`` gives everything but the load. Returns ``{"rtl": [...], "model": [...],
    "saturation": {...}}``; the saturation throughput is the accepted throughput at
    offered load 1.0.
    """
    from tqdm import tqdm     # deferred: the [sim] extra, which the model-only CLI does without

    model_loads = sorted(set(model_loads or loads) | {1.0})
    model_points = [run_model_for(design, dataclasses.replace(spec, load=x))
                    for x in tqdm(model_loads, desc=f"model {design.kind}", unit="point",
                                  disable=not progress)]
    rtl_points: list[dict] = []
    if rtl:
        # One simulator process runs every load (reset between them): one elaboration
        # and one simulator start instead of one per point.
        with tqdm(total=len(loads), desc=f"RTL {design.kind} ({sim})", unit="point",
                  disable=not progress) as bar:
            rtl_points, _ = run_rtl_points(
                design, [dataclasses.replace(spec, load=x) for x in loads], sim=sim)
            bar.update(len(loads))
    sat = {"model": next(p["accepted_throughput"] for p in model_points
                         if p["offered_load"] == 1.0)}
    full = [p for p in rtl_points if p["offered_load"] == 1.0]
    if full:
        sat["rtl"] = full[0]["accepted_throughput"]
    return {"design": design.kind, "params": design.params, "pattern": spec.pattern,
            "packet_length": spec.packet_length, "sim": sim if rtl else None,
            "rtl": rtl_points, "model": model_points, "saturation": sat}


def plot_sweep(result: dict, path: str | os.PathLike[str], *, title: str | None = None
               ) -> str | os.PathLike[str]:
    """Latency against offered load: RTL points, model line, saturation marked."""
    # Deferred: matplotlib takes over half a second to import; only the plot needs it.
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    model = [p for p in result["model"] if p["latency_mean"] is not None
             and not p["saturated"]]
    ax.plot([p["offered_load"] for p in model], [p["latency_mean"] for p in model],
            "-", color="C0", label="model")
    rtl = [p for p in result["rtl"] if p["latency_mean"] is not None and not p["saturated"]]
    if rtl:
        ax.plot([p["offered_load"] for p in rtl], [p["latency_mean"] for p in rtl],
                "o", color="C1", label=f"RTL ({result['sim']})")
    sat = result["saturation"]
    ax.axvline(sat["model"], color="C0", ls="--", lw=1,
               label=f"model saturation {sat['model']:.3f}")
    if "rtl" in sat:
        ax.axvline(sat["rtl"], color="C1", ls=":", lw=1,
                   label=f"RTL saturation {sat['rtl']:.3f}")
    ax.set_xlabel("offered load (flits/cycle/port)")
    ax.set_ylabel("mean packet latency (cycles)")
    ax.set_yscale("log")
    ax.set_xlim(0, 1.02)
    ax.grid(True, alpha=0.3)
    p = result["params"]
    if result["design"] == "clos":
        what = (f"{p['endpoints_per_leaf'] * p['leaves']}-endpoint Clos ({p['leaves']} leaves "
                f"x {p['endpoints_per_leaf']}, {p['spines']} spines)")
    else:
        what = f"{p['ports']}-port router"
    ax.set_title(title or f"{what}, {result['pattern']}, {result['packet_length']}-flit "
                          f"packets", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
