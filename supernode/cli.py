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
    "supernode.commands.implement",
    "supernode.commands.router",
    "supernode.commands.fabric",
    "supernode.commands.estimate",
    "supernode.commands.formal",
]


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
    except KeyboardInterrupt:
        print("supernode: interrupted", file=sys.stderr)
        return 130
