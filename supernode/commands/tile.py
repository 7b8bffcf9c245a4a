"""``supernode tile``: export the systolic tile to Verilog, or run a GEMM on it."""

import argparse
import json
import sys

from supernode.fabric.tile_model import reference_gemm
from supernode.rtl.errors import UserError
from supernode.rtl.interface import tile_interface, write_interface
from supernode.rtl.tile import SystolicTile
from supernode.sim.environment import SIMULATORS, default_simulator, random_seed, waves_requested
from supernode.sim.outputs import check_output
from supernode.sim.runner import SimulationError, export_verilog
from supernode.sim.tile.run import Gaps, check_gemm_size, random_operands, run_gemm
from . import VERILOG_SUFFIXES, add_tile_arguments, positive_int, tile_arguments


def _probability(text):
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value < 1:
        raise argparse.ArgumentTypeError(
            f"a stall probability is a number from 0 up to (not including) 1, not {text!r}")
    return value


def register(subparsers):
    tile = subparsers.add_parser("tile", help="the systolic compute tile")
    sub = tile.add_subparsers(dest="tile_command", required=True)

    export = sub.add_parser("export", help="write the tile as Verilog, and beside it a JSON "
                            "description of its ports, payload layouts and timing")
    add_tile_arguments(export, dataflow_required=True)
    export.add_argument("--out", required=True, help="Verilog file to write (.v or .sv)")
    export.add_argument("--name", default="systolic_tile",
                        help="Verilog module name (default systolic_tile)")
    export.add_argument("--json", action="store_true", help="print one JSON object")
    export.set_defaults(func=export_command)

    sim = sub.add_parser("sim", help="run a random GEMM on the RTL and check it against numpy")
    add_tile_arguments(sim, dataflow_required=True)
    for dim in ("m", "k", "n"):
        sim.add_argument(f"--{dim}", type=positive_int, required=True, help=f"GEMM dimension {dim}")
    sim.add_argument("--sim", help="icarus or verilator (default: $SIM, else icarus)")
    sim.add_argument("--waves", action="store_true",
                     help="write a waveform (FST) and a GTKWave save file; WAVES=1 does too")
    sim.add_argument("--vcd", action="store_true", help="with --waves: VCD instead of FST "
                     "(Verilator only)")
    sim.add_argument("--seed", type=int,
                     help="seed of operands and stalls (default: $COCOTB_RANDOM_SEED, else 1)")
    sim.add_argument("--stall", type=_probability, default=0.0,
                     help="probability of an idle cycle on each stream (default 0)")
    sim.add_argument("--json", action="store_true", help="print one JSON object")
    sim.set_defaults(func=sim_command)


def export_command(args):
    params = tile_arguments(args)
    out = check_output(args.out, flag="--out", suffixes=VERILOG_SUFFIXES)
    if not args.name.isidentifier():
        raise UserError(f"--name must be a Verilog identifier, not {args.name!r}")
    tile = SystolicTile(params=params)
    export_verilog(tile, out, name=args.name)
    described = write_interface(tile_interface(tile, name=args.name), out)
    if args.json:
        print(json.dumps({"out": str(out), "interface": str(described), "module": args.name,
                          "params": params.as_dict()}))
    else:
        print(f"wrote {out} and its interface description {described}")
    return 0


def sim_command(args):
    params = tile_arguments(args)
    args.sim = args.sim or default_simulator("icarus")
    args.seed = random_seed(1) if args.seed is None else args.seed
    if args.sim not in SIMULATORS:
        raise UserError(f"--sim must be one of {', '.join(SIMULATORS)}, not {args.sim!r}")
    args.waves = waves_requested(args.waves)     # WAVES=1 as --waves
    if args.vcd and not args.waves:
        raise UserError("--vcd chooses the format of --waves; give --waves with it")
    if args.vcd and args.sim != "verilator":
        raise UserError("--vcd needs --sim verilator (Icarus writes FST)")
    check_gemm_size(args.m, args.k, args.n, params)
    A, B = random_operands(args.m, args.k, args.n, in_width=params.in_width,
                           signed=params.signed, seed=args.seed)
    gaps = Gaps(probability=args.stall)
    try:
        run = run_gemm(params, A, B, sim=args.sim, waves=args.waves,
                       wave_format="vcd" if args.vcd else "fst", seed=args.seed,
                       a_gaps=gaps, b_gaps=gaps, c_gaps=gaps)
    except SimulationError as exc:
        if args.json:
            print(json.dumps({"passed": False, "sim": args.sim, "error": str(exc)}))
        else:
            print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    exact = bool((run.C == reference_gemm(A, B, acc_width=params.acc_width,
                                          signed=params.signed)).all())
    result = run.to_json()
    result["passed"] = exact
    result["stall_probability"] = args.stall
    result["cycles_match_model"] = run.measured_cycles == run.model.total_cycles
    if args.json:
        print(json.dumps(result))
    else:
        print(f"tile {params.rows}x{params.cols} {params.dataflow}  "
              f"GEMM {args.m}x{args.k}x{args.n}  on {args.sim}")
        print(f"  result           {'bit-exact' if exact else 'MISMATCH'} against numpy")
        print(f"  {'':16} {'measured':>10} {'model':>10}")
        print(f"  {'total cycles':16} {run.measured_cycles:>10} {run.model.total_cycles:>10}")
        print(f"  {'first result':16} {run.measured_first_result:>10} "
              f"{run.model.first_result_cycles:>10}")
        print(f"  {'utilization':16} {run.utilization:>10.3f} {run.model.utilization:>10.3f}")
        if args.stall:
            print(f"  (stalls injected with probability {args.stall}; the model assumes none)")
        if run.waves:
            print(f"  waves            {run.waves}")
    stalled = args.stall > 0
    return 0 if exact and (stalled or result["cycles_match_model"]) else 1
