"""The ``estimate`` and ``compare`` commands: a workload on a 384-NPU supernode, and two systems side by side."""

from __future__ import annotations

import json
from pathlib import Path

from supernode.fabric.system import default_mapping, estimate, load_mapping, load_system
from supernode.fabric.system.comparison import compare, roofline_plot
from supernode.fabric.system.config import parse_quantity
from supernode.fabric.system.hardware import EIGHT_BIT, PRECISIONS
from supernode.fabric.system.report import format_comparison, format_estimate, format_slo, slo_plot
from supernode.fabric.system.slo import slo_search
from supernode.fabric.system.validation import (TOLERANCE, format_table, load_points, to_csv,
                                      to_markdown, validate)
from supernode.fabric.system.workload import (COLLECTIVES, collective_workload, gemm_workload,
                                    load_workload)
from supernode.rtl.errors import UserError
from supernode.sim.outputs import atomic_output, check_output

from . import positive_int


def parse_workload(text: str):
    """A workload name or file, ``gemm:MxKxN[:precision]`` or ``<collective>:<size>:<group>``.

    >>> parse_workload("gemm:4096x7168x2048:int8").m
    4096
    """
    head, _, rest = text.partition(":")
    if head == "gemm" and rest:
        shape, _, precision = rest.partition(":")
        dims = shape.lower().split("x")
        if len(dims) != 3 or not all(d.isdecimal() for d in dims):
            raise UserError(f"GEMM workload {text!r} is not gemm:MxKxN[:precision] with "
                            f"whole numbers M, K and N")
        return gemm_workload(*(int(d) for d in dims), precision=precision or "bf16")
    if head in COLLECTIVES and rest:
        size, _, group = rest.partition(":")
        if not group.isdecimal():
            raise UserError(f"collective workload {text!r} is not <op>:<size>:<group>, "
                            f"e.g. all_to_all:16MB:384")
        return collective_workload(head, parse_quantity(size, "size_bytes", "workload"),
                                   int(group))
    return load_workload(text)


def _add_run_options(parser):
    precisions = PRECISIONS + (EIGHT_BIT,)
    parser.add_argument("--phase", choices=("prefill", "decode"), default=None,
                        help="LLM phase (estimate: default decode; compare: both)")
    parser.add_argument("--batch", type=positive_int, default=None,
                        help="sequences per step, over the whole instance (default: the "
                             "workload's per-rank default x ranks)")
    parser.add_argument("--seq-len", type=positive_int, default=None,
                        help="prompt length (prefill) or context length (decode)")
    parser.add_argument("--precision", choices=precisions, default=None,
                        help="matrix precision of the dense layers; 8bit = FP8 where the chip "
                             "has it, else INT8")
    parser.add_argument("--expert-precision", choices=precisions, default=None,
                        help="matrix precision of the experts (default: --precision)")
    parser.add_argument("--attention-precision", choices=precisions, default=None,
                        help="precision of the attention kernel (default: the workload's, "
                             "bf16 for the shipped ones)")
    parser.add_argument("--kv-precision", choices=precisions, default=None,
                        help="precision the KV cache is stored in")


def _run_settings(args) -> dict:
    return {"expert_precision": args.expert_precision,
            "attention_precision": args.attention_precision,
            "kv_precision": args.kv_precision}


def parse_time(text: str, flag: str) -> float:
    """``"50ms"``, ``"50 ms"``, ``"1.5s"`` or ``"800us"`` in seconds, or one sentence."""
    units = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6}
    raw = text.strip().replace(" ", "")
    for unit in sorted(units, key=len, reverse=True):
        if raw.endswith(unit):
            number = raw[: -len(unit)]
            try:
                value = float(number) * units[unit]
            except ValueError:
                break
            if value > 0 and value != float("inf"):
                return value
            break
    raise UserError(f"{flag} {text!r} is not a positive time; accepted: a number with s, ms "
                    f"or us, such as 50ms")


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
    est.add_argument("--two-batch-overlap", choices=("on", "off"), default=None,
                     help="run each step as two micro-batches, one's expert all-to-all under "
                          "the other's compute, or with off every op in series; either "
                          "replaces a spatial pipeline (default: the mapping's)")
    est.add_argument("--mtp", type=int, default=None, metavar="N",
                     help="multi-token prediction: N draft tokens per decode step (0: off)")
    est.add_argument("--mtp-acceptance", type=float, default=None, metavar="A",
                     help="share of draft tokens accepted, 0 to 1")
    est.add_argument("--redundant-experts", type=int, default=None, metavar="N",
                     help="extra copies of the most loaded experts")
    est.add_argument("--expert-placement", choices=("index", "load", "perfect"), default=None,
                     help="where expert copies go: in index order, by load (a balancer), or "
                          "perfect: every copy equally loaded, as published 'simulated "
                          "perfect EPLB' runs (default: the mapping's)")
    est.add_argument("--layers", type=positive_int, default=None,
                     help="only the first N transformer layers (a layer-level estimate)")
    slo = est.add_mutually_exclusive_group()
    slo.add_argument("--tpot-slo", default=None, metavar="TIME",
                     help="decode: find the batch with the most throughput whose time per "
                          "output token is at most TIME (e.g. 50ms)")
    slo.add_argument("--ttft-slo", default=None, metavar="TIME",
                     help="prefill: find the batch with the most throughput whose time to "
                          "first token is at most TIME (e.g. 2s)")
    est.add_argument("--plot", default=None, metavar="FILE.png",
                     help="with an SLO: write the throughput-latency curve searched")
    est.add_argument("--json", action="store_true", help="print one JSON object")
    est.set_defaults(func=run_estimate)

    val = subparsers.add_parser(
        "validate", help="every published measurement held beside the estimate",
        description="Estimate every published serving, dispatch/combine and kernel "
                    "measurement the project holds and print measured, estimate and ratio, "
                    "with the source and whether the point set a parameter, was only "
                    "checked, or is a blind check.")
    fmt = val.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print one JSON object")
    fmt.add_argument("--csv", action="store_true", help="print the table as CSV")
    fmt.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    val.add_argument("--role", choices=("set", "check", "blind"), default=None,
                     help="only the points of this role")
    val.set_defaults(func=run_validate)

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


def _check_plot(path_text):
    """The ``--plot`` destination, checked before any estimate runs (or None)."""
    if path_text is None:
        return None
    return check_output(path_text, flag="--plot", suffixes=(".png",))


def _write_plot(draw, plot: Path) -> None:
    """Draw into a temporary file beside ``plot``; a failed plot leaves any older file."""
    with atomic_output(plot) as tmp:
        draw(tmp)


def run_estimate(args) -> int:
    system = load_system(args.system)
    workload = parse_workload(args.workload)
    phase = args.phase or ("prefill" if args.ttft_slo else "decode")
    if args.tpot_slo and phase != "decode":
        raise UserError("--tpot-slo bounds the time per output token of decode; use "
                        "--ttft-slo with --phase prefill")
    if args.ttft_slo and phase != "prefill":
        raise UserError("--ttft-slo bounds the time to first token of prefill; use "
                        "--tpot-slo with --phase decode")
    plot = _check_plot(args.plot)
    if plot is not None and not (args.tpot_slo or args.ttft_slo):
        raise UserError("--plot draws the curve an SLO search makes; give --tpot-slo or "
                        "--ttft-slo with it")
    mapping = (load_mapping(args.mapping) if args.mapping
               else default_mapping(system, workload, phase))
    overlap = None if args.two_batch_overlap is None else args.two_batch_overlap == "on"
    mapping = mapping.with_degrees(tp=args.tp, ep=args.ep, dp=args.dp, pp=args.pp,
                                   two_batch_overlap=overlap, mtp_tokens=args.mtp,
                                   mtp_acceptance=args.mtp_acceptance,
                                   redundant_experts=args.redundant_experts,
                                   **_placement(args.expert_placement))
    run = _run_settings(args)
    if getattr(workload, "kind", "llm") != "llm":
        for flag in ("batch", "seq_len", "layers", "tpot_slo", "ttft_slo", "expert_precision",
                     "attention_precision", "kv_precision"):
            if getattr(args, flag) is not None:
                raise UserError(f"--{flag.replace('_', '-')} applies to LLM workloads only, "
                                f"not to {workload.name!r}")
        run = {}
    if args.tpot_slo or args.ttft_slo:
        if args.batch is not None:
            raise UserError("--batch and an SLO both set the batch; give one of them")
        limit = parse_time(args.tpot_slo or args.ttft_slo,
                           "--tpot-slo" if args.tpot_slo else "--ttft-slo")
        result = slo_search(system, workload, phase=phase, limit_s=limit, mapping=mapping,
                            seq_len=args.seq_len, precision=args.precision, **run)
        if plot is not None:
            _write_plot(lambda path: slo_plot(result, path), plot)
        if args.json:
            data = result.to_dict()
            data["plot"] = str(plot) if plot else None
            print(json.dumps(data, indent=1, default=str))
        else:
            print(format_slo(result))
            if plot is not None:
                print(f"\nthroughput-latency curve written to {plot}")
        return 0
    e = estimate(system, workload, phase=phase, batch=args.batch, seq_len=args.seq_len,
                 precision=args.precision, mapping=mapping, layers=args.layers, **run)
    if args.json:
        print(json.dumps(e.to_dict(), indent=1, default=str))
    else:
        print(format_estimate(e))
    return 0


def run_validate(args) -> int:
    points = load_points()
    if args.role:
        points = tuple(p for p in points if p.role == args.role)
    rows = validate(points)
    if args.json:
        print(json.dumps({"tolerance": TOLERANCE, "rows": [r.to_dict() for r in rows]}, indent=1))
    elif args.csv:
        print(to_csv(rows), end="")
    elif args.markdown:
        print(to_markdown(rows), end="")
    else:
        print(format_table(rows))
    return 0


def run_compare(args) -> int:
    if len(args.systems) < 2:
        raise UserError(f"compare needs at least two systems, got {len(args.systems)} "
                        f"({', '.join(args.systems)})")
    plot = _check_plot(args.plot)
    workloads = [parse_workload(w) for w in args.workload] if args.workload else None
    c = compare(args.systems, workloads, phases=[args.phase] if args.phase else None,
                batch=args.batch, seq_len=args.seq_len, precision=args.precision,
                **_run_settings(args))
    if plot is not None:
        _write_plot(lambda path: roofline_plot(c, path), plot)
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


def _placement(choice: str | None) -> dict:
    """Mapping fields for ``--expert-placement``."""
    if choice is None:
        return {}
    return {"expert_balancer": choice != "index", "perfect_balance": choice == "perfect"}

