"""``supernode router``: export the switch router, run traffic on its RTL beside the model, sweep load."""

import argparse
import json
import sys

from supernode.fabric.network.traffic import TrafficSpec
from supernode.rtl.clos_params import ClosParams
from supernode.rtl.errors import UserError
from supernode.rtl.interface import router_interface, write_interface
from supernode.rtl.router import Router
from supernode.rtl.router_params import RouterParams
from supernode.sim.outputs import atomic_output, check_output
from supernode.sim.router.common import Design
from supernode.sim.router.sweep import DEFAULT_LOADS, compare_point, plot_sweep, sweep
from supernode.sim.environment import SIMULATORS, default_simulator, random_seed
from supernode.sim.runner import SimulationError, export_verilog

from . import ROUTER_DEFAULTS, VERILOG_SUFFIXES, allocator_iterations


def _load_list(text):
    try:
        loads = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        loads = []
    if not loads or any(not 0 < x <= 1 for x in loads):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated offered loads in (0, 1], not {text!r}")
    return loads


def add_router_params(parser, *, ports=True):
    """Router micro-architecture options shared by ``router`` and ``fabric``."""
    if ports:
        parser.add_argument("--ports", type=int, default=ROUTER_DEFAULTS["ports"],
                            help="router ports, 2..16 (default 4)")
    parser.add_argument("--vcs", type=int, default=ROUTER_DEFAULTS["vcs"],
                        help="virtual channels per port, 1..8 (default 2)")
    parser.add_argument("--buffer-depth", type=int, default=ROUTER_DEFAULTS["buffer_depth"],
                        help="flits per VC buffer (default 4)")
    parser.add_argument("--flit-width", type=int, default=ROUTER_DEFAULTS["flit_width"],
                        help="payload bits per flit (default 16)")
    parser.add_argument("--allocator", default=ROUTER_DEFAULTS["allocator"],
                        help="separable (default) or islip")
    parser.add_argument("--separable-iterations", type=int, default=None,
                        help=f"separable allocator iterations, 1..ports (default "
                             f"{ROUTER_DEFAULTS['separable_iterations']}: an input that lost "
                             f"its pick asks again with another VC; 1 is the smaller "
                             f"allocator)")
    parser.add_argument("--islip-iterations", type=int, default=None,
                        help=f"iSLIP iterations, with --allocator islip (default "
                             f"{ROUTER_DEFAULTS['islip_iterations']})")
    parser.add_argument("--voq", action="store_true", help="virtual output queues")
    parser.add_argument("--packet-id-width", type=int,
                        default=ROUTER_DEFAULTS["packet_id_width"],
                        help=f"bits of a flit's packet id, 1..32 (default "
                             f"{ROUTER_DEFAULTS['packet_id_width']})")
    parser.add_argument("--stats", action="store_true",
                        help="build every router with performance counters (flits sent and "
                             "credit stalls per output, blocked cycles per input) and report "
                             "them")


def router_params(args, *, ports=True) -> dict:
    params = dict(vcs=args.vcs, buffer_depth=args.buffer_depth, flit_width=args.flit_width,
                  allocator=args.allocator,
                  islip_iterations=allocator_iterations(args, "islip"),
                  voq=args.voq)
    if ports:
        params["ports"] = args.ports
    if args.stats:
        params["stats"] = True
    # Given only when not the default, so that a default design keeps its build directory.
    separable = allocator_iterations(args, "separable")
    if separable != ROUTER_DEFAULTS["separable_iterations"]:
        params["separable_iterations"] = separable
    if args.packet_id_width != ROUTER_DEFAULTS["packet_id_width"]:
        params["packet_id_width"] = args.packet_id_width
    return params


def add_traffic_params(parser, *, pattern="uniform"):
    """Traffic and measurement options shared by ``router`` and ``fabric``."""
    parser.add_argument("--pattern", default=pattern,
                        help="uniform, transpose, bit_complement, hotspot or all_to_all "
                             f"(default {pattern})")
    parser.add_argument("--packet-length", type=int, default=1, help="flits per packet")
    parser.add_argument("--warmup", type=int, default=200, help="warm-up cycles")
    parser.add_argument("--measure", type=int, default=1000, help="measured cycles")
    parser.add_argument("--drain", type=int, default=4000,
                        help="cycles allowed after the window for measured packets")
    parser.add_argument("--seed", type=int,
                        help="seed of all random choices (default: $COCOTB_RANDOM_SEED, else 1)")
    parser.add_argument("--packets-per-source", type=int, default=0,
                        help="0: open-loop traffic measured in a window (default); N: every "
                             "source sends exactly N packets and the run ends when all arrive "
                             "(all_to_all with N = endpoints - 1 is one full exchange)")
    parser.add_argument("--backpressure", default="none",
                        help="ejector drain: none, periodic:1110 or random:0.8")
    parser.add_argument("--sim", help="verilator or icarus (default: $SIM, else verilator)")


def check_backpressure(text):
    """Refuse a ``--backpressure`` under which no ejector ever drains: the run could only
    end in the watchdog, after the whole build and simulation."""
    kind, _, arg = text.partition(":")
    if kind == "periodic" and arg and set(arg) == {"0"}:
        raise UserError(f"--backpressure {text!r} never lets an ejector drain, so no packet "
                        f"would arrive; give at least one 1 in the pattern (periodic:1110)")


def traffic_spec(args, *, load, ordered=True):
    check_backpressure(args.backpressure)
    return TrafficSpec(pattern=args.pattern, load=load, packet_length=args.packet_length,
                       warmup=args.warmup, measure=args.measure, drain=args.drain,
                       seed=random_seed(1) if args.seed is None else args.seed,
                       backpressure=args.backpressure, ordered=ordered,
                       packets_per_source=args.packets_per_source)


def check_sim(name):
    """The simulator to run: ``--sim``, else ``$SIM``, else Verilator."""
    name = name or default_simulator("verilator")
    if name not in SIMULATORS:
        raise UserError(f"--sim must be one of {', '.join(SIMULATORS)}, not {name!r}")
    return name


def register(subparsers):
    router = subparsers.add_parser("router", help="the switch router")
    sub = router.add_subparsers(dest="router_command", required=True)

    export = sub.add_parser("export", help="write the router as Verilog, and beside it a "
                            "JSON description of its ports, flit layout and timing")
    add_router_params(export)
    export.add_argument("--out", required=True, help="Verilog file to write (.v or .sv)")
    export.add_argument("--json", action="store_true", help="print one JSON object")
    export.set_defaults(func=export_command)

    sim = sub.add_parser("sim", help="run traffic on the RTL and the model, compare them")
    add_router_params(sim)
    add_traffic_params(sim)
    sim.add_argument("--load", type=float, default=0.5,
                     help="offered load, flits/cycle/port (default 0.5)")
    sim.add_argument("--waves", action="store_true", help="write a waveform (FST)")
    sim.add_argument("--json", action="store_true", help="print one JSON object")
    sim.set_defaults(func=sim_command, design="router")

    sweep = sub.add_parser("sweep", help="latency against offered load, RTL and model")
    add_router_params(sweep)
    add_traffic_params(sweep)
    sweep.add_argument("--loads", type=_load_list, default=None,
                       help="comma-separated offered loads (default 0.1,0.2,...,1.0)")
    sweep.add_argument("--model-only", action="store_true", help="skip the RTL runs")
    sweep.add_argument("--plot", help="write the latency-load plot to this PNG")
    sweep.add_argument("--json", action="store_true", help="print one JSON object")
    sweep.set_defaults(func=sweep_command, design="router")


def export_command(args):
    out = check_output(args.out, flag="--out", suffixes=VERILOG_SUFFIXES)
    params = router_params(args)
    router = Router(RouterParams(**params))
    export_verilog(router, out, name="router")
    described = write_interface(router_interface(router, name="router"), out)
    if args.json:
        print(json.dumps({"out": str(out), "interface": str(described), "module": "router",
                          "params": params}))
    else:
        print(f"wrote {out} and its interface description {described}")
    return 0


def design_from(args):
    if args.design == "router":
        params = router_params(args)
        RouterParams(**params)                  # validates, naming a bad value
        return Design("router", params)
    params = dict(endpoints_per_leaf=args.endpoints_per_leaf, leaves=args.leaves,
                  spines=args.spines, up_routing=args.up_routing,
                  **router_params(args, ports=False))
    ClosParams.from_options(**params)
    return Design("clos", params)


def sim_command(args):
    args.sim = check_sim(args.sim)
    design = design_from(args)
    ordered = design.params.get("up_routing", "deterministic") != "balanced"
    spec = traffic_spec(args, load=args.load, ordered=ordered)
    design.endpoints(spec)      # checks the pattern against the endpoint count
    try:
        result = compare_point(design, spec, sim=args.sim, waves=args.waves)
    except SimulationError as exc:
        if args.json:
            print(json.dumps({"passed": False, "sim": args.sim, "error": str(exc)}))
        else:
            print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result))
    else:
        verdict = "every packet delivered once, in order"
        if not ordered:
            verdict += (f" ({result['resequenced_packets']} overtook an earlier packet of "
                        f"their flow across spines and waited at the ejector)")
        print(f"{design.kind} {design.params}")
        print(f"  {args.pattern} traffic, {args.packet_length}-flit packets, offered "
              f"{args.load} flits/cycle/port, on {args.sim}: "
              f"{verdict if result['passed'] else 'FAILED'}")
        print(f"  {'':22} {'RTL':>10} {'model':>10}")
        keys = ["accepted_throughput", "latency_mean", "latency_p99", "latency_min",
                "measured_packets"]
        if result.get("completion_cycles") is not None:
            keys.insert(0, "completion_cycles")
        for key in keys:
            r, m = result[key], result[f"model_{key}"]
            fmt = (lambda v: f"{v:>10.3f}" if isinstance(v, float) else f"{v!s:>10}")
            print(f"  {key:22} {fmt(r)} {fmt(m)}")
        if result.get("router_stats"):
            print_router_stats(result["router_stats"], result["cycles"])
            same = result["model_router_stats"] == result["router_stats"]
            print(f"  the model's counters: {'identical' if same else 'DIFFERENT'}")
        if result["waves"]:
            print(f"  waves  {result['waves']}")
    return 0 if result["passed"] else 1


def print_router_stats(stats: dict, cycles: int):
    """The routers' counters as a table: one row per router port."""
    print(f"  router counters over {cycles} cycles (from reset):")
    print(f"  {'router':>8} {'port':>4} {'sent':>7} {'util':>6} {'credit stalls':>13} "
          f"{'blocked in':>10}")
    for name, counters in stats.items():
        for port, sent in enumerate(counters["sent"]):
            print(f"  {name:>8} {port:>4} {sent:>7} {sent / cycles:>6.3f} "
                  f"{counters['credit_stalls'][port]:>13} {counters['blocked'][port]:>10}")


def sweep_command(args):
    args.sim = check_sim(args.sim)
    out = check_output(args.plot, flag="--plot", suffixes=(".png",)) if args.plot else None
    design = design_from(args)
    ordered = design.params.get("up_routing", "deterministic") != "balanced"
    spec = traffic_spec(args, load=1.0, ordered=ordered)
    loads = args.loads or list(DEFAULT_LOADS)
    design.endpoints(spec)      # checks the pattern against the endpoint count
    result = sweep(design, spec, loads, sim=args.sim, rtl=not args.model_only,
                   model_loads=sorted(set(loads) | {x / 20 for x in range(1, 21)}),
                   progress=not args.json)
    if out:
        with atomic_output(out) as tmp:
            plot_sweep(result, tmp)
        result["plot"] = str(out)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{design.kind} {design.params}, {args.pattern}")
        print(f"  {'load':>6} {'RTL thr':>8} {'RTL lat':>9} {'model thr':>9} {'model lat':>9}")
        by_load = {p["offered_load"]: p for p in result["model"]}
        for p in result["rtl"] or [by_load[x] for x in sorted(loads)]:
            m = by_load[p["offered_load"]]
            rl = "" if p is m else f"{p['accepted_throughput']:>8.3f} {p['latency_mean']:>9.1f}"
            print(f"  {p['offered_load']:>6.2f} {rl:>18} {m['accepted_throughput']:>9.3f} "
                  f"{m['latency_mean']:>9.1f}")
        sat = result["saturation"]
        print("  saturation: " + ", ".join(f"{k} {v:.3f}" for k, v in sat.items()))
        if out:
            print(f"  wrote {out}")
    return 0
