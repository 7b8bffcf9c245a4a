"""Tile points: a systolic array shape/dataflow/widths scored on a GEMM mix, RTL spot-checked."""

from supernode.fabric.tile_model import predict
from supernode.rtl.errors import UserError
from supernode.rtl.tile import SystolicTile
from supernode.rtl.tile_params import DATAFLOWS, TileParams
from supernode.sim.area import synthesize
from supernode.sim.tile.run import random_operands, run_gemm

from . import ModelMismatchError, implementation_metrics

#: Parameters of the tile a sweep may vary; :class:`~supernode.rtl.tile_params.TileParams` checks values.
HARDWARE = TileParams.names()

OBJECTIVES = {
    "throughput": "throughput_macs_per_cycle",
    "latency": "latency_cycles",
    "utilisation": "utilization",
    "area": "area_gate_equivalents",
    "energy": "energy_proxy_ge_cycles",
    "time": "mix_time_us",
    "clock": "impl_max_clock_mhz",
    "luts": "impl_luts",
    "flip_flops": "impl_flip_flops",
    "dsp_blocks": "impl_dsp_blocks",
}

#: Objectives whose figures come from placing and routing each point on an FPGA.
IMPLEMENTATION_OBJECTIVES = ("time", "clock", "luts", "flip_flops", "dsp_blocks")

#: The cocotb bench, which the runner loads by name; the rest is found from the imports.
SOURCES = ("supernode.sim.tile.bench",)

SIMULATORS = ("verilator", "icarus")

#: Points of this kind can be spot-checked on the RTL.
RTL_CHECKS = True

#: Largest GEMM dimension the RTL check runs by default (simulation time grows as m*k*n).
DEFAULT_RTL_MAX_DIM = 24


def _int(value):
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError("an integer")
    return value


def _dataflow(value):
    if value not in DATAFLOWS:
        raise UserError(" or ".join(f'"{d}"' for d in DATAFLOWS))
    return value


def _bool(value):
    if not isinstance(value, bool):
        raise UserError("true or false")
    return value


def parameters() -> dict:
    return {"rows": _int, "cols": _int, "dataflow": _dataflow, "in_width": _int,
            "acc_width": _int, "signed": _bool, "acc_depth": _int, "mac_stages": _int}


def check_point(params: dict):
    """Raise :class:`~supernode.rtl.errors.UserError` naming the value when the tile cannot be built with ``params``."""
    _hardware(params)


def _hardware(params: dict) -> TileParams:
    return TileParams(**{k: v for k, v in params.items() if k in HARDWARE})


def check_workload(table: dict, swept: set) -> dict:
    """A GEMM mix: ``gemms = [{name, m, k, n, count = 1}, ...]`` (plus an optional ``name``)."""
    unknown = set(table) - {"name", "gemms"}
    if unknown:
        raise UserError(f"key {sorted(unknown)[0]!r} is unknown; a tile workload has name and gemms")
    gemms = table.get("gemms")
    if not isinstance(gemms, list) or not gemms:
        raise UserError(f"gemms = {gemms!r}; expected a non-empty array of {{name, m, k, n}} tables")
    out = []
    for i, g in enumerate(gemms):
        if not isinstance(g, dict) or not {"m", "k", "n"} <= set(g) \
                or not set(g) <= {"name", "m", "k", "n", "count"}:
            raise UserError(f"gemms[{i}] = {g!r}; expected a table with m, k, n and optionally "
                            f"name and count")
        for key in ("m", "k", "n", "count"):
            v = g.get(key, 1)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise UserError(f"gemms[{i}].{key} = {v!r}; expected a positive integer")
        out.append({"name": str(g.get("name", f"gemm{i}")), "m": g["m"], "k": g["k"],
                    "n": g["n"], "count": g.get("count", 1)})
    return {"name": str(table.get("name", "gemm-mix")), "gemms": out}


def check_rtl(table: dict) -> dict:
    """``simulator`` (verilator or icarus), ``max_dim`` (GEMM dimensions are clipped to it
    for the RTL run) and ``tolerance_cycles`` (allowed model/RTL difference per GEMM)."""
    unknown = set(table) - {"simulator", "max_dim", "tolerance_cycles"}
    if unknown:
        raise UserError(f"key {sorted(unknown)[0]!r} is unknown; expected spot_checks, seed, "
                        f"simulator, max_dim or tolerance_cycles")
    sim = table.get("simulator", "verilator")
    if sim not in SIMULATORS:
        raise UserError(f"simulator = {sim!r}; expected one of {', '.join(SIMULATORS)}")
    max_dim = table.get("max_dim", DEFAULT_RTL_MAX_DIM)
    if isinstance(max_dim, bool) or not isinstance(max_dim, int) or not 1 <= max_dim <= 256:
        raise UserError(f"max_dim = {max_dim!r}; expected an integer from 1 to 256")
    tol = table.get("tolerance_cycles", 0)
    if isinstance(tol, bool) or not isinstance(tol, int) or tol < 0:
        raise UserError(f"tolerance_cycles = {tol!r}; expected a non-negative integer")
    return {"simulator": sim, "max_dim": max_dim, "tolerance_cycles": tol}


def default_plots(swept: set, objectives: set) -> list:
    plots = []
    if {"throughput", "area"} <= objectives:
        plots.append({"type": "pareto", "x": "area", "y": "throughput"})
    if {"rows", "cols"} <= swept:
        plot = {"type": "heatmap", "x": "cols", "y": "rows", "value": "utilisation"}
        if "dataflow" in swept:
            plot["facet"] = "dataflow"
        plots.append(plot)
    return plots


def evaluate(params: dict, workload: dict, *, rtl=None, area=False, implement=None) -> dict:
    """Score one tile on the GEMM mix; spot-check the model on the RTL when ``rtl`` is given.

    With ``implement`` (``{"device", "seed"}``) the tile is also placed and routed on an
    FPGA, and the mix's cycles become time at the clock it reaches there.
    """
    hardware = _hardware(params)
    cycles = macs = 0
    latency = 0
    for g in workload["gemms"]:
        est = predict(hardware, m=g["m"], k=g["k"], n=g["n"])
        cycles += g["count"] * est.total_cycles
        macs += g["count"] * est.macs
        latency = max(latency, est.first_result_cycles)
    peak = hardware.peak_macs_per_cycle
    metrics = {
        "mix_cycles": cycles,
        "macs": macs,
        "peak_macs_per_cycle": peak,
        "throughput_macs_per_cycle": macs / cycles,
        "utilization": macs / cycles / peak,
        "latency_cycles": latency,
    }
    if area:
        metrics.update(_area(hardware))
        metrics["energy_proxy_ge_cycles"] = metrics["area_gate_equivalents"] * cycles
    if implement is not None:
        metrics.update(implementation_metrics(SystolicTile, hardware.as_dict(), implement,
                                              kind="tile"))
        if metrics["impl_fits"]:
            clock_mhz = metrics["impl_max_clock_mhz"]
            metrics["mix_time_us"] = cycles / clock_mhz
            metrics["latency_ns"] = latency * 1000 / clock_mhz
    if rtl is not None:
        metrics.update(spot_check(params, workload, rtl))
    return metrics


def _area(hardware: TileParams) -> dict:
    report = synthesize(SystolicTile, hardware.as_dict())
    return {"area_cells": report.cells, "area_flip_flops": report.flip_flops,
            "area_gate_equivalents": report.gate_equivalents}



def spot_check(params: dict, workload: dict, rtl: dict) -> dict:
    """Run each GEMM of the mix on the RTL (cocotb) and compare its cycles with the model.

    GEMM dimensions are clipped to ``rtl["max_dim"]`` so that a simulation takes seconds;
    the model is asked about the very same clipped GEMM, so the comparison is exact. The
    bench itself checks every result row against numpy. Raises
    :class:`~supernode.dse.evaluators.ModelMismatchError` when the cycle counts differ by
    more than ``tolerance_cycles``.
    """
    hardware = _hardware(params)
    measured = predicted = worst = 0
    for index, g in enumerate(workload["gemms"]):
        m, k, n = (min(g[d], rtl["max_dim"]) for d in ("m", "k", "n"))
        A, B = random_operands(m, k, n, in_width=hardware.in_width, signed=hardware.signed,
                               seed=index + 1)
        run = run_gemm(hardware, A, B, sim=rtl["simulator"])
        for what, got, want in (("cycles", run.measured_cycles, run.model.total_cycles),
                                ("first-result cycles", run.measured_first_result,
                                 run.model.first_result_cycles)):
            if abs(got - want) > rtl["tolerance_cycles"]:
                raise ModelMismatchError(
                    f"tile {hardware.as_dict()} on GEMM {g['name']} clipped to {m}x{k}x{n}: "
                    f"the RTL ({rtl['simulator']}) took {got} {what} but the model predicts {want} "
                    f"(tolerance {rtl['tolerance_cycles']}); see {run.run_dir}")
        measured += run.measured_cycles
        predicted += run.model.total_cycles
        worst = max(worst, abs(run.measured_cycles - run.model.total_cycles))
    return {"rtl_gemms": len(workload["gemms"]), "rtl_cycles": measured,
            "rtl_model_cycles": predicted, "rtl_max_cycle_error": worst}
