"""The environment variables a cocotb user sets (SIM, WAVES, GUI, COCOTB_RANDOM_SEED, TESTCASE).

cocotb's Makefiles and its ``cocotb_tools.runner`` read these; the project reads them in
the same way, once, here, so that ``SIM=verilator pytest``, ``WAVES=1 supernode tile sim``
or ``COCOTB_RANDOM_SEED=7 pytest`` do what a cocotb user expects.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from supernode.rtl.errors import UserError

__all__ = [
    "SIMULATORS", "selected_simulators", "default_simulator", "waves_requested",
    "gui_requested", "random_seed", "testcases", "waveform_viewer", "hidden_from_runner",
]

SIMULATORS = ("icarus", "verilator")

#: Variables that cocotb's runner reads itself; :func:`hidden_from_runner` keeps them from
#: it once the project has turned them into explicit arguments.
RUNNER_VARIABLES = ("WAVES", "GUI", "TESTCASE", "COCOTB_TESTCASE", "COCOTB_TEST_FILTER")

#: Older, project-specific seed variables still honoured after COCOTB_RANDOM_SEED.
SEED_ALIASES = ("SUPERNODE_SEED",)

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def _flag(name: str) -> bool:
    """A boolean variable as cocotb reads it (1/0, true/false, yes/no, on/off)."""
    text = os.environ.get(name, "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise UserError(f"{name}={os.environ[name]!r} is not a yes/no value; use {name}=1 or {name}=0")


def selected_simulators() -> tuple:
    """The simulators to run: ``(SIM,)`` when ``SIM`` is set, otherwise every one."""
    sim = os.environ.get("SIM", "").strip()
    if not sim:
        return SIMULATORS
    if sim not in SIMULATORS:
        raise UserError(f"SIM={sim!r} is not a simulator this project runs; "
                        f"use SIM={' or SIM='.join(SIMULATORS)}")
    return (sim,)


def default_simulator(fallback: str = "icarus") -> str:
    """The simulator a command uses when none is given: ``SIM``, or ``fallback``."""
    chosen = selected_simulators()
    return chosen[0] if len(chosen) == 1 else fallback


def waves_requested(explicit: bool = False) -> bool:
    """Whether to trace: asked for by the caller, or by ``WAVES=1`` or ``GUI=1``."""
    return bool(explicit) or _flag("WAVES") or _flag("GUI")


def gui_requested() -> bool:
    """``GUI=1``: open the waveform of each run in a viewer when the run ends."""
    return _flag("GUI")


def random_seed(default: int, *aliases: str) -> int:
    """The seed of a run: ``COCOTB_RANDOM_SEED``, else the first alias set, else ``default``.

    ``aliases`` are older project-specific names (``ROUTER_SEED``) that still work; the
    generic :data:`SEED_ALIASES` are tried after them.
    """
    for name in ("COCOTB_RANDOM_SEED",) + tuple(aliases) + SEED_ALIASES:
        text = os.environ.get(name, "").strip()
        if text:
            try:
                return int(text, 0)
            except ValueError:
                raise UserError(f"{name}={text!r} is not an integer seed") from None
    return default


def testcases() -> "list | None":
    """Test names chosen with ``TESTCASE`` or ``COCOTB_TESTCASE`` (comma-separated), or None."""
    for name in ("COCOTB_TESTCASE", "TESTCASE"):
        text = os.environ.get(name, "").strip()
        if text:
            return [part.strip() for part in text.split(",") if part.strip()]
    return None


def waveform_viewer() -> "str | None":
    """The viewer ``GUI=1`` opens: ``COCOTB_WAVEFORM_VIEWER``, else surfer, else gtkwave."""
    import shutil

    chosen = os.environ.get("COCOTB_WAVEFORM_VIEWER", "").strip()
    if chosen:
        path = shutil.which(chosen)
        if path is None:
            raise UserError(f"COCOTB_WAVEFORM_VIEWER={chosen!r} is not a program on the PATH; "
                            "install surfer or gtkwave, or name one that is")
        return path
    return shutil.which("surfer") or shutil.which("gtkwave")


@contextmanager
def hidden_from_runner() -> Iterator[None]:
    """Keep :data:`RUNNER_VARIABLES` away from cocotb's runner for a ``with`` block.

    The runner reads ``WAVES`` and ``GUI`` itself and copies the whole environment into
    the simulator: with ``WAVES=1`` it would trace into a build made without tracing, and
    a ``TESTCASE`` meant for pytest would deselect the bench's own test. The project
    resolves them first (:func:`waves_requested`, :func:`testcases`) and passes them on
    as arguments.
    """
    saved = {name: os.environ.pop(name) for name in RUNNER_VARIABLES if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)
