"""Router points: VC router configurations under a traffic pattern and offered load, RTL spot-checked."""

from supernode.fabric.network import default_clos_shape
from supernode.fabric.network.traffic import PATTERNS, TrafficSpec
from supernode.rtl.errors import UserError
from supernode.rtl.router import Router
from supernode.rtl.router_params import RouterParams
from supernode.sim.area import synthesize
from supernode.sim.router.common import Design, run_model_for, run_rtl

from . import ModelMismatchError, implementation_metrics

#: Parameters of ``supernode.rtl.router.Router`` a sweep may vary; the component checks the values.
HARDWARE = ("ports", "vcs", "buffer_depth", "flit_width", "allocator", "separable_iterations",
            "islip_iterations", "voq")

OBJECTIVES = {
    "throughput": "throughput_flits_per_cycle_per_port",
    "latency": "latency_mean_cycles",
    "utilisation": "link_utilization",
    "area": "area_gate_equivalents",
    "energy": "energy_proxy_ge_cycles_per_flit",
    "time": "latency_mean_ns",
    "bandwidth": "bandwidth_gbit_per_s_per_port",
    "clock": "impl_max_clock_mhz",
    "luts": "impl_luts",
    "flip_flops": "impl_flip_flops",
}

#: Objectives whose figures come from placing and routing each point on an FPGA.
IMPLEMENTATION_OBJECTIVES = ("time", "bandwidth", "clock", "luts", "flip_flops")

#: The cocotb bench, which the runner loads by name; the rest is found from the imports.
SOURCES = ("supernode.sim.router.bench",)

RTL_CHECKS = True
SIMULATORS = ("verilator", "icarus")
TOPOLOGIES = ("router", "clos")

#: Result figures of a run that the model and the RTL must agree on exactly.
COMPARED = ("accepted_throughput", "offered_load_measured", "latency_mean", "latency_p99",
            "latency_min", "measured_packets", "packets_delivered", "flits_delivered")

_WORKLOAD_KEYS = {"name": str, "pattern": str, "topology": str, "packet_length": int,
                  "warmup": int, "measure": int, "drain": int, "seed": int, "burst": int,
                  "hotspot_fraction": float, "endpoints_per_leaf": int, "leaves": int,
                  "spines": int}


def _int(value):
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError("an integer")
    return value


def _bool(value):
    if not isinstance(value, bool):
        raise UserError("true or false")
    return value


def _str(value):
    if not isinstance(value, str):
        raise UserError("a string")
    return value


def _load(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise UserError("an offered load in (0, 1] flits per cycle per port")
    return round(float(value), 9)


def parameters() -> dict:
    return {"ports": _int, "vcs": _int, "buffer_depth": _int, "flit_width": _int,
            "allocator": _str, "separable_iterations": _int, "islip_iterations": _int,
            "voq": _bool, "load": _load,
            "packet_length": _int}


def _hardware(params: dict) -> dict:
    return {k: v for k, v in params.items() if k in HARDWARE}


def check_point(params: dict):
    """Raise :class:`~supernode.rtl.errors.UserError` naming the value when the router cannot be built with ``params``."""
    RouterParams(**_hardware(params))


def check_workload(table: dict, swept: set) -> dict:
    """Traffic and topology: ``pattern`` (default all_to_all), ``topology`` (``router``: one
    endpoint per port; ``clos``: a two-tier folded Clos of the router), run lengths, seed."""
    for key, value in table.items():
        if key not in _WORKLOAD_KEYS:
            raise UserError(f"key {key!r} is unknown; expected one of {', '.join(_WORKLOAD_KEYS)}")
        kind = _WORKLOAD_KEYS[key]
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float \
            else isinstance(value, kind) and not isinstance(value, bool)
        if not ok:
            raise UserError(f"{key} = {value!r}; expected {kind.__name__}")
    out = {"name": table.get("name", "traffic"), "pattern": table.get("pattern", "all_to_all"),
           "topology": table.get("topology", "router")}
    if out["pattern"] not in PATTERNS:
        raise UserError(f"pattern = {out['pattern']!r}; expected one of {', '.join(PATTERNS)}")
    if out["topology"] not in TOPOLOGIES:
        raise UserError(f"topology = {out['topology']!r}; expected one of {', '.join(TOPOLOGIES)}")
    traffic = {k: table[k] for k in ("packet_length", "warmup", "measure", "drain", "seed",
                                     "burst", "hotspot_fraction") if k in table}
    if "packet_length" in swept and "packet_length" in traffic:
        raise UserError("packet_length is both swept in [space] and fixed in [workload]; "
                        "keep one")
    traffic.setdefault("warmup", 200)
    traffic.setdefault("measure", 1000)
    traffic.setdefault("seed", 1)
    TrafficSpec(pattern=out["pattern"], load=0.5, **traffic)      # checks every value
    out["traffic"] = traffic
    clos = {k: table[k] for k in ("endpoints_per_leaf", "leaves", "spines") if k in table}
    if clos and out["topology"] != "clos":
        raise UserError(f"{', '.join(clos)} apply to topology = \"clos\" only")
    if clos and set(clos) != {"endpoints_per_leaf", "leaves", "spines"}:
        raise UserError("give all of endpoints_per_leaf, leaves and spines, or none (the "
                        "largest Clos of the router's radix)")
    out["clos"] = clos
    return out


def check_rtl(table: dict) -> dict:
    """``simulator`` (verilator or icarus) and ``measure`` (cycles of the RTL run's window,
    shorter than the model's to keep simulation time down; the model is re-run on the
    same traffic for the comparison)."""
    unknown = set(table) - {"simulator", "measure"}
    if unknown:
        raise UserError(f"key {sorted(unknown)[0]!r} is unknown; expected spot_checks, seed, "
                        f"simulator or measure")
    sim = table.get("simulator", "verilator")
    if sim not in SIMULATORS:
        raise UserError(f"simulator = {sim!r}; expected one of {', '.join(SIMULATORS)}")
    measure = table.get("measure", 300)
    if isinstance(measure, bool) or not isinstance(measure, int) or not 1 <= measure <= 100_000:
        raise UserError(f"measure = {measure!r}; expected an integer from 1 to 100000")
    return {"simulator": sim, "measure": measure}


def default_plots(swept: set, objectives: set) -> list:
    plots = []
    if "load" in swept:
        plots.append({"type": "curves", "x": "throughput", "y": "latency", "along": "load"})
    if {"throughput", "area"} <= objectives:
        plots.append({"type": "pareto", "x": "area", "y": "throughput"})
    return plots


def _design(params: dict, workload: dict):
    hardware = _hardware(params)
    if workload["topology"] == "router":
        return Design("router", hardware)
    ports = RouterParams(**hardware).ports
    shape = workload["clos"] or default_clos_shape(ports)
    return Design("clos", {**shape, **{k: v for k, v in hardware.items() if k != "ports"}})


def _traffic(params: dict, workload: dict, **override):
    traffic = dict(workload["traffic"])
    if "packet_length" in params:
        traffic["packet_length"] = params["packet_length"]
    traffic.update(override)
    return TrafficSpec(pattern=workload["pattern"], load=params.get("load", 0.5), **traffic)


def evaluate(params: dict, workload: dict, *, rtl=None, area=False, implement=None) -> dict:
    """Run the cycle-level model of the router (or its Clos) under the point's traffic.

    With ``implement`` (``{"device", "seed"}``) one router is also placed and routed on an
    FPGA, and its latency and throughput become time and bandwidth at the clock it reaches.
    """
    check_point(params)
    design = _design(params, workload)
    spec = _traffic(params, workload)
    result = run_model_for(design, spec)
    router = RouterParams(**_hardware(params))
    throughput = result["accepted_throughput"]
    metrics = {
        "throughput_flits_per_cycle_per_port": throughput,
        "link_utilization": throughput,          # a port's link carries at most 1 flit/cycle
        "offered_load_measured": result["offered_load_measured"],
        "latency_mean_cycles": result["latency_mean"],
        "latency_p99_cycles": result["latency_p99"],
        "latency_min_cycles": result["latency_min"],
        "measured_packets": result["measured_packets"],
        "saturated": bool(result["saturated"]),
        "hop_latency_cycles": router.latency,
        "credit_round_trip_cycles": router.credit_round_trip,
    }
    if area:
        report = synthesize(Router, _hardware(params))
        metrics.update({"area_cells": report.cells, "area_flip_flops": report.flip_flops,
                        "area_gate_equivalents": report.gate_equivalents})
        if throughput > 0:
            metrics["energy_proxy_ge_cycles_per_flit"] = (
                report.gate_equivalents / (throughput * router.ports))
    if implement is not None:
        metrics.update(implementation_metrics(Router, _hardware(params), implement,
                                              kind="router"))
        if metrics["impl_fits"]:
            clock_mhz = metrics["impl_max_clock_mhz"]
            metrics["latency_mean_ns"] = result["latency_mean"] * 1000 / clock_mhz
            metrics["bandwidth_gbit_per_s_per_port"] = (
                throughput * router.flit_width * clock_mhz / 1000)
    if rtl is not None:
        metrics.update(spot_check(params, workload, rtl))
    return metrics


def spot_check(params: dict, workload: dict, rtl: dict) -> dict:
    """Run the point's traffic (with the RTL's shorter window) on the RTL under cocotb and
    on the model; every figure in :data:`COMPARED` must be identical.

    Raises :class:`~supernode.dse.evaluators.ModelMismatchError` naming the first figure that
    differs.
    """
    design = _design(params, workload)
    spec = _traffic(params, workload, measure=rtl["measure"])
    measured = run_rtl(design, spec, sim=rtl["simulator"])
    model = run_model_for(design, spec)
    for key in COMPARED:
        if measured.result.get(key) != model.get(key):
            raise ModelMismatchError(
                f"{design.kind} {design.params} under {spec.pattern} at load {spec.load}: the "
                f"RTL ({rtl['simulator']}) measured {key} = {measured.result.get(key)!r} but "
                f"the model gives {model.get(key)!r}; see {measured.run_dir}")
    return {"rtl_throughput_flits_per_cycle_per_port": measured.result["accepted_throughput"],
            "rtl_latency_mean_cycles": measured.result["latency_mean"],
            "rtl_measure_cycles": rtl["measure"]}
