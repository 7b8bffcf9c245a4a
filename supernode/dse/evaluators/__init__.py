"""Evaluators: one small module per kind of point (tile, router, system) and the worker entry."""

import importlib
import os
import socket
import time

from supernode.fabric.sources import source_digest
from supernode.rtl.errors import UserError
from supernode.sim.implement import DoesNotFit, implement as place_and_route

__all__ = ["KINDS", "ModelMismatchError", "load_evaluator", "code_fingerprint", "evaluate_point",
           "implementation_metrics"]

#: Kind of point -> module that evaluates it. Each module offers:
#:   ``parameters()`` -> {name: check(value) -> value} of the parameters a space may sweep;
#:   ``OBJECTIVES`` -> {objective name: metric column};
#:   ``check_workload(table, swept)`` and ``check_rtl(table)`` -> normalised dict;
#:   ``default_plots(swept, objectives)`` -> list of plot dicts;
#:   ``SOURCES`` -> modules whose code decides a result (part of the cache key) and that
#:       the evaluator does not import, such as a cocotb bench loaded by name; the modules
#:       it imports, directly or not, are found by following the imports;
#:   ``RTL_CHECKS`` -> whether ``evaluate`` can spot-check a point on the RTL;
#:   ``evaluate(params, workload, *, rtl, area)`` -> {metric column: value};
#:   and, for kinds that can be placed and routed on an FPGA, ``IMPLEMENTATION_OBJECTIVES``
#:       (the objectives that need it) and an ``implement`` keyword of ``evaluate``
#:       (``{"device", "seed"}`` or None).
KINDS = {
    "tile": "supernode.dse.evaluators.tile",
    "router": "supernode.dse.evaluators.router",
    "system": "supernode.dse.evaluators.system",
}


class ModelMismatchError(RuntimeError):
    """The fast model and the RTL disagree on a point: the point fails, loudly."""


def load_evaluator(kind: str):
    """The evaluator module of ``kind``."""
    if kind not in KINDS:
        raise UserError(f"sweep kind must be one of {', '.join(KINDS)}, not {kind!r}")
    return importlib.import_module(KINDS[kind])


def code_fingerprint(kind: str) -> str:
    """Hash of the source of the evaluator of ``kind``, of the modules it names in
    ``SOURCES`` and of every project module these import, directly or not."""
    evaluator = load_evaluator(kind)
    return source_digest(evaluator.__name__, *evaluator.SOURCES)


def evaluate_point(task: dict) -> dict:
    """Evaluate one point (runs on a Dask worker, local or remote).

    Returns the metrics plus where and how long; raises on any failure, including
    :class:`ModelMismatchError` when the RTL disagrees with the model.
    """
    evaluator = load_evaluator(task["kind"])
    start = time.perf_counter()
    extra = {"implement": task["implement"]} if task.get("implement") else {}
    metrics = evaluator.evaluate(dict(task["params"]), task["workload"], rtl=task["rtl"],
                                 area=task["area"], **extra)
    return {"metrics": metrics, "seconds": time.perf_counter() - start,
            "worker": f"{socket.gethostname()}:{os.getpid()}"}


def implementation_metrics(factory, params: dict, implement: dict, *, kind: str) -> dict:
    """The FPGA figures of one point as metric columns (``impl_...``).

    A point that does not fit the device is kept: ``impl_fits`` is false, the sentence
    saying why is in ``impl_note`` and the figures are left out (so the point is on no
    front that needs them).
    """
    try:
        report = place_and_route(factory, params, kind=kind, device=implement["device"],
                                 seed=implement["seed"])
    except DoesNotFit as exc:
        return {"impl_fits": False, "impl_note": str(exc)}
    return {
        "impl_fits": True,
        "impl_luts": report.luts,
        "impl_flip_flops": report.flip_flops,
        "impl_dsp_blocks": report.dsp_blocks,
        "impl_block_ram": report.block_ram,
        "impl_lut_ram": report.lut_ram,
        "impl_max_clock_mhz": report.max_clock_mhz,
        "impl_critical_path": f"{report.critical_path_from} -> {report.critical_path_to}",
    }
