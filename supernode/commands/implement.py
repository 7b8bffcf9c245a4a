"""`supernode implement`: resources and maximum clock of a block placed and routed on an ECP5."""

import json

from supernode.rtl.router import Router
from supernode.rtl.tile import SystolicTile
from supernode.sim.implement import DEFAULT_DEVICE, DEFAULT_SEED, DEVICES, implement

from . import add_block_parsers, whole_number

__all__ = ["register"]


def _common(p):
    p.add_argument("--device", default=DEFAULT_DEVICE,
                   help=f"ECP5 part: {', '.join(DEVICES)} (default {DEFAULT_DEVICE})")
    p.add_argument("--seed", type=whole_number, default=DEFAULT_SEED,
                   help=f"nextpnr's placement and routing seed (default {DEFAULT_SEED})")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-cache", action="store_true",
                   help="implement again even if build/implement/ holds this configuration")


def register(subparsers):
    p = subparsers.add_parser(
        "implement", help="place and route a block on an ECP5 FPGA (resources, maximum clock)",
        description="Export a block to Verilog, synthesise it with Yosys' synth_ecp5 and "
                    "place and route it out of context with nextpnr-ecp5, then report the "
                    "logic cells (LUTs), flip-flops, DSP blocks and block RAM it uses, its "
                    "maximum clock and where its critical path starts and ends. These are "
                    "FPGA figures, not ASIC ones. A design that does not fit the device "
                    "exits with status 2. Results are cached under build/implement/.")
    sub = p.add_subparsers(dest="block", required=True, parser_class=type(p))

    add_block_parsers(sub, common=_common, run=run, tile=SystolicTile, router=Router)


def run(args) -> int:
    kind, factory, params = args.factory(args)
    report = implement(factory, params, kind=kind, device=args.device, seed=args.seed,
                       use_cache=not args.no_cache)
    if args.json:
        print(json.dumps(report.as_dict()))
        return 0
    print(_table(report))
    return 0


def _table(r) -> str:
    """The report as a few aligned lines."""
    params = ", ".join(f"{k}={v}" for k, v in r.params.items())
    rows = [("LUTs (logic cells)", r.luts, "luts"), ("flip-flops", r.flip_flops, "flip_flops"),
            ("DSP blocks (18x18)", r.dsp_blocks, "dsp_blocks"),
            ("block RAM (16 kbit)", r.block_ram, "block_ram"),
            ("LUT RAM", r.lut_ram, "lut_ram")]
    lines = [f"{r.kind}({params})",
             f"{r.device} ({r.package}), {r.yosys_version} synth_ecp5, {r.nextpnr_version}, "
             f"seed {r.seed}" + (" (from cache)" if r.cached else f" ({r.seconds:.0f} s)")]
    for label, used, name in rows:
        lines.append(f"{label:<20} {used:>7} of {r.available[name]}")
    lines.append(f"{'maximum clock':<20} {r.max_clock_mhz:>7.1f} MHz")
    lines.append(f"{'critical path':<20} {r.critical_path_from} -> {r.critical_path_to} "
                 f"({r.critical_path_ns:.2f} ns)")
    lines.append("FPGA figures: an ECP5's clock and resources do not carry over to an ASIC")
    return "\n".join(lines)
