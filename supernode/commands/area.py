"""`supernode area`: cells, flip-flops and gate equivalents of a block from Yosys synthesis."""

import argparse
import ast
import importlib
import inspect
import json

from amaranth.lib import wiring

from supernode.rtl.errors import UserError
from supernode.rtl.router import Router
from supernode.rtl.tile import SystolicTile
from supernode.sim.area import synthesize

from . import add_block_parsers

__all__ = ["register"]


def _param(text):
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"parameter {text!r} must look like name=value")
    name, value = text.split("=", 1)
    try:
        value = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        pass  # a bare word such as os or separable stays a string
    return name.strip(), value


def _common(p):
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-cache", action="store_true",
                   help="synthesise again even if build/area/ holds this configuration")


def register(subparsers):
    p = subparsers.add_parser(
        "area", help="area of a block from Yosys synthesis (cells, flip-flops, gate equivalents)",
        description="Export a block to Verilog, synthesise it with Yosys' generic 'synth' "
                    "(technology-independent gates, no timing) and count its cells, its "
                    "flip-flop bits and its area in NAND2 gate equivalents. The weights per "
                    "cell are an assumption stated in sim/area.py (GE_WEIGHTS). Results "
                    "are cached under build/area/.")
    sub = p.add_subparsers(dest="block", required=True, parser_class=type(p))

    add_block_parsers(sub, common=_common, run=run, tile=SystolicTile, router=Router)

    c = sub.add_parser("component", help="any Amaranth component, as MODULE:CLASS")
    c.add_argument("target", metavar="MODULE:CLASS", help="for example supernode.rtl.tile:SystolicTile")
    c.add_argument("-p", "--param", type=_param, action="append", default=[], metavar="NAME=VALUE",
                   help="constructor parameter (value read as a Python literal); repeatable")
    _common(c)
    c.set_defaults(func=run, factory=_component)


def _component(args):
    module_name, _, cls_name = args.target.partition(":")
    if not module_name or not cls_name:
        raise UserError(f"component {args.target!r} must be given as MODULE:CLASS, "
                        "such as supernode.rtl.tile:SystolicTile")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise UserError(f"cannot import module {module_name!r} named in {args.target!r}") from None
    cls = getattr(module, cls_name, None)
    if not (isinstance(cls, type) and issubclass(cls, wiring.Component)):
        raise UserError(f"{args.target!r} is not an Amaranth wiring.Component class")
    params = dict(args.param)
    _check_params(args.target, cls, params)
    return "component", cls, params


def _check_params(target, cls, params):
    """Build ``cls(**params)`` once, before any synthesis, so that a refusal is one sentence.

    The user chose both the class and its parameters, so a ``TypeError`` (an unknown or
    missing parameter) or ``ValueError`` (a value the class refuses) raised by its
    constructor is bad input here, not a crash.
    """
    signature = inspect.signature(cls)
    try:
        signature.bind(**params)
    except TypeError as exc:
        raise UserError(f"{target} cannot be built from the given -p parameters ({exc}); "
                        f"its constructor takes {signature}") from None
    try:
        component = cls(**params)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{target} refuses the given -p parameters: {exc}") from None
    component._MustUse__silence = True      # built only to check the parameters


def run(args) -> int:
    _, factory, params = args.factory(args)
    report = synthesize(factory, params, use_cache=not args.no_cache)
    if args.json:
        print(json.dumps(report.as_dict()))
        return 0
    print(_table(report))
    return 0


def _table(r) -> str:
    params = ", ".join(f"{k}={v}" for k, v in r.params.items())
    lines = [f"{r.kind}({params})",
             f"{r.yosys_version}, generic synth"
             + (" (from cache)" if r.cached else f" ({r.synthesis_seconds:.1f} s)"),
             f"{'cell type':<18} {'count':>8} {'GE':>11}"]
    for cell, n in sorted(r.cells_by_type.items(), key=lambda kv: -r.ge_by_type.get(kv[0], 0)):
        ge = r.ge_by_type.get(cell)
        lines.append(f"{cell:<18} {n:>8} {('%.1f' % ge) if ge is not None else 'unpriced':>11}")
    lines.append(f"{'total':<18} {r.cells:>8} {r.gate_equivalents:>11.1f}")
    lines.append(f"flip-flop bits: {r.flip_flops}; gate equivalents are NAND2 units under "
                 "the assumed weights of supernode.sim.area.GE_WEIGHTS")
    if r.unpriced:
        lines.append(f"warning: no weight for {', '.join(sorted(r.unpriced))}; "
                     "left out of the GE total")
    return "\n".join(lines)
