"""The ``estimate`` and ``compare`` commands: a workload on a 384-NPU supernode, and two systems side by side."""

from __future__ import annotations

import json
import os
from pathlib import Path

from supernode.errors import UserError

from . import positive_int


def parse_workload(text: str):
    """A workload name or file, ``gemm:MxKxN[:precision]`` or ``<collective>:<size>:<group>``.

    >>> parse_workload("gemm:4096x7168x2048:int8").m
    4096
    """
    from fabric.system.config import parse_quantity
    from fabric.system.workload import (COLLECTIVES, collective_workload, gemm_workload,
                                        load_workload)
    head, _, rest = text.partition(":")
    if head == "gemm" and rest:
        shape, _, precision = rest.partition(":")
        dims = shape.lower().split("x")
        if len(dims) != 3 or not all(d.isdigit() for d in dims):
            raise UserError(f"GEMM workload {text!r} is not gemm:MxKxN[:precision] with "
                            f"whole numbers M, K and N")
        return gemm_workload(*(int(d) for d in dims), precision=precision or "bf16")
    if head in COLLECTIVES and rest:
        size, _, group = rest.partition(":")
        if not group.isdigit():
            raise UserError(f"collective workload {text!r} is not <op>:<size>:<group>, "
                            f"e.g. all_to_all:16MB:384")
        return collective_workload(head, parse_quantity(size, "size_bytes", "workload"),
                                   int(group))
    return load_workload(text)


def _add_run_options(parser):
    parser.add_argument("--phase", choices=("prefill", "decode"), default=None,
                        help="LLM phase (estimate: default decode; compare: both)")
    parser.add_argument("--batch", type=positive_int, default=None,
                        help="sequences per step, over the whole system (default: the "
                             "workload's per-package default x packages)")
    parser.add_argument("--seq-len", type=positive_int, default=None,
                        help="prompt length (prefill) or context length (decode)")
    parser.add_argument("--precision", choices=("bf16", "fp8", "int8", "8bit"), default=None,
                        help="matrix precision; 8bit = FP8 where the chip has it, else INT8")


def register(subparsers):
    est = subparsers.add_parser(
        "estimate", help="time one step of a workload on a system",
        description="Estimate one step of a workload (an LLM in prefill or decode, a GEMM, "
                    "or a collective) on a system, from the tile and network models.")
    est.add_argument("--system", default="cloudmatrix384",
                     help="system name (cloudmatrix384, gb200-nvl72) or a .toml file")
    est.add_argument("--workload", default="deepseek-r1",
                     help="deepseek-r1, llama3-70b, a .toml file, gemm:MxKxN[:precision] or "
                          "<collective>:<size>:<group> (e.g. all_reduce:64MB:8)")
    _add_run_options(est)
    est.add_argument("--mapping", default=None,
                     help="mapping name or .toml file (default: the system's for this workload)")
    for group in ("tp", "ep", "dp", "pp"):
        est.add_argument(f"--{group}", type=positive_int, default=None,
                         help=f"override the mapping's {group} degree")
    est.add_argument("--layers", type=positive_int, default=None,
                     help="only the first N transformer layers (a layer-level estimate)")
    est.add_argument("--json", action="store_true", help="print one JSON object")
    est.set_defaults(func=run_estimate)

    cmp_ = subparsers.add_parser(
        "compare", help="two systems side by side: hardware and workload tables",
        description="Compare systems on their published hardware totals and on LLM "
                    "workloads, with the ratio of the first to the second.")
    cmp_.add_argument("systems", nargs="+", metavar="SYSTEM",
                      help="two (or more) system names or .toml files")
    cmp_.add_argument("--workload", action="append", default=None,
                      help="workload to compare on (repeatable; default deepseek-r1 and "
                           "llama3-70b)")
    _add_run_options(cmp_)
    out = cmp_.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print one JSON object")
    out.add_argument("--csv", action="store_true", help="print both tables as CSV")
    cmp_.add_argument("--plot", default=None, metavar="FILE.png",
                      help="write a roofline plot of the systems with the workloads on it")
    cmp_.set_defaults(func=run_compare)


def run_estimate(args) -> int:
    from fabric.system import default_mapping, estimate, load_mapping, load_system
    from fabric.system.report import format_estimate

    system = load_system(args.system)
    workload = parse_workload(args.workload)
    phase = args.phase or "decode"
    mapping = (load_mapping(args.mapping) if args.mapping
               else default_mapping(system, workload, phase))
    mapping = mapping.with_degrees(tp=args.tp, ep=args.ep, dp=args.dp, pp=args.pp)
    if getattr(workload, "kind", "llm") != "llm":
        for flag in ("batch", "seq_len", "layers"):
            if getattr(args, flag) is not None:
                raise UserError(f"--{flag.replace('_', '-')} applies to LLM workloads only, "
                                f"not to {workload.name!r}")
    e = estimate(system, workload, phase=phase, batch=args.batch, seq_len=args.seq_len,
                 precision=args.precision, mapping=mapping, layers=args.layers)
    if args.json:
        print(json.dumps(e.to_dict(), indent=1, default=str))
    else:
        print(format_estimate(e))
    return 0


def run_compare(args) -> int:
    from fabric.system.comparison import compare, roofline_plot
    from fabric.system.report import format_comparison

    if len(args.systems) < 2:
        raise UserError(f"compare needs at least two systems, got {len(args.systems)} "
                        f"({', '.join(args.systems)})")
    plot = None
    if args.plot:
        plot = Path(args.plot)
        if plot.suffix.lower() != ".png":
            raise UserError(f"--plot {args.plot!r} must name a .png file")
        if not plot.parent.exists():
            raise UserError(f"--plot {args.plot!r}: directory {str(plot.parent)!r} does not "
                            f"exist")
    workloads = [parse_workload(w) for w in args.workload] if args.workload else None
    c = compare(args.systems, workloads, phases=[args.phase] if args.phase else None,
                batch=args.batch, seq_len=args.seq_len, precision=args.precision)
    if plot is not None:
        tmp = plot.with_name(plot.name + ".tmp.png")
        roofline_plot(c, tmp)
        os.replace(tmp, plot)           # a failed plot leaves any older file untouched
    if args.json:
        data = c.to_dict()
        data["plot"] = str(plot) if plot else None
        print(json.dumps(data, indent=1, default=str))
    elif args.csv:
        print(c.to_csv(), end="")
    else:
        print(format_comparison(c))
        if plot is not None:
            print(f"\nroofline plot written to {plot}")
    return 0
