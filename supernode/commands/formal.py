"""``supernode formal``: prove the tile and the router (or the runner's own skid buffer)."""

import argparse
import json

from supernode.rtl.errors import UserError
from supernode.sim.formal.router import RouterHarness
from supernode.sim.formal.routing import RoutingHarness
from supernode.sim.formal.runner import run_formal
from supernode.sim.formal.skid import SkidBufferHarness
from supernode.sim.formal.tile import TileHarness
from supernode.sim.formal.toolchain import FormalToolError
from . import ROUTER_DEFAULTS, allocator_iterations, positive_int


def _add_job_options(parser):
    parser.add_argument("--mode", choices=("prove", "bmc"), default="prove",
                        help="prove: k-induction, an unbounded proof (default); bmc: check the "
                             "first --depth cycles after reset only")
    parser.add_argument("--depth", type=positive_int, default=None,
                        help="induction length (prove) or cycles checked (bmc); default: the "
                             "length that closes the proof for the given parameters")
    parser.add_argument("--no-cover", action="store_true",
                        help="skip the cover run that shows the properties are not vacuous")
    parser.add_argument("--timeout", type=positive_int, default=900,
                        help="seconds one SymbiYosys job may run before the verdict is "
                             "unknown (default 900)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


#: The bounds of ``formal router --liveness``: option, default, what it bounds.
_LIVENESS_OPTIONS = (
    ("--credit-bound", 0, "a downstream holding flits returns a credit at least every N+1 "
                          "cycles (default 0: at once)"),
    ("--send-bound", 0, "an upstream with a credit sends the next flit of an open packet "
                        "within N cycles (default 0)"),
    ("--packet-length", 2, "flits per packet at most (default 2)"),
    ("--body-bound", 1, "cycles a body flit may wait at a queue head, or auto: the bound "
                        "of the progress measures (separable allocator, 2 VCs; default 1)"),
    ("--head-bound", None, "cycles a head flit may wait at a queue head, or auto (default: "
                           "not bounded)"),
)


def _bound(text):
    """argparse type of the liveness bounds: a number of cycles, or ``auto``."""
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < 0:
        raise argparse.ArgumentTypeError(
            f"expected a number of cycles (0 or more) or auto, not {text!r}")
    return value


def register(subparsers):
    formal = subparsers.add_parser(
        "formal", help="formal proofs (SymbiYosys, from pip alone) of the tile and router")
    sub = formal.add_subparsers(dest="formal_command", required=True)

    tile = sub.add_parser("tile", help="prove a systolic tile")
    tile.add_argument("--dataflow", default="os",
                      help="os (output-stationary, default) or ws (weight-stationary)")
    tile.add_argument("--acc-depth", type=int, default=2,
                      help="ws: rows of partial sums kept between folds (default 2)")
    tile.add_argument("--rows", type=int, default=2, help="array rows (default 2)")
    tile.add_argument("--cols", type=int, default=2, help="array columns (default 2)")
    tile.add_argument("--in-width", type=int, default=2, help="operand bits (default 2)")
    tile.add_argument("--acc-width", type=int, default=4, help="accumulator bits (default 4)")
    tile.add_argument("--unsigned", action="store_true", help="unsigned operands")
    tile.add_argument("--mac-stages", type=int, default=0,
                      help="register stages between each cell's multiplier and adder "
                           "(default 0)")
    tile.add_argument("--consumer", choices=("free", "always_ready", "both"), default="both",
                      help="free: c may stall at any time (contract, row order, double "
                           "buffer); always_ready: exact latencies; both (default)")
    tile.add_argument("--no-sums", action="store_true",
                      help="skip the proof that every result row holds its sums of "
                           "products (os: of its fold; ws: of its beat over the fold's "
                           "weights; the slowest part)")
    tile.add_argument("--fault", default=None,
                      help="prove a deliberately broken tile instead: short_fold_interval "
                           "(os), early_bank_release, long_fold (ws) or dropped_product_bit "
                           "(both)")
    _add_job_options(tile)
    tile.set_defaults(func=tile_command)

    router = sub.add_parser("router", help="prove the virtual-channel router")
    router.add_argument("--ports", type=int, default=4, help="ports (default 4)")
    router.add_argument("--vcs", type=int, default=2, help="virtual channels (default 2)")
    router.add_argument("--buffer-depth", type=int, default=2,
                        help="flits per VC buffer (default 2)")
    router.add_argument("--flit-width", type=int, default=1, help="payload bits (default 1)")
    router.add_argument("--allocator", default="separable",
                        help="switch allocator: separable (default) or islip")
    router.add_argument("--separable-iterations", type=int, default=None,
                        help=f"separable allocator iterations, 1..ports (default "
                             f"{ROUTER_DEFAULTS['separable_iterations']}; with --allocator "
                             f"separable)")
    router.add_argument("--islip-iterations", type=int, default=None,
                        help="iSLIP iterations, 1..ports (default 1; with --allocator islip)")
    router.add_argument("--voq", action="store_true",
                        help="virtual output queues at the inputs (one queue per VC and "
                             "output)")
    router.add_argument("--fault", default=None,
                        help="prove a deliberately broken router instead: "
                             "frozen_grant_pointer or accept_all (iSLIP), no_claims (2+ VCs: "
                             "output VCs are never claimed; either allocator), rematch "
                             "(separable, 2+ iterations)")
    router.add_argument("--liveness", action="store_true",
                        help="also prove bounded liveness: a flit at an input queue's head "
                             "leaves within --body-bound (body flit) or --head-bound (head "
                             "flit) cycles")
    for flag, default, text in _LIVENESS_OPTIONS:
        kind = _bound if flag in ("--body-bound", "--head-bound") else int
        router.add_argument(flag, type=kind, default=None, help=f"liveness: {text}")
    router.add_argument("--drop", default=None,
                        help="drop an environment assumption (the proof must then fail): "
                             "input_credit, packet_framing or credit_return (with --liveness)")
    _add_job_options(router)
    router.set_defaults(func=router_command)

    routing = sub.add_parser(
        "routing", help="prove the router's routing stage: spread ports and routing-table "
                        "writes at any time")
    routing.add_argument("--ports", type=int, default=4, help="ports (default 4)")
    routing.add_argument("--vcs", type=int, default=2, help="virtual channels (default 2)")
    routing.add_argument("--buffer-depth", type=int, default=2,
                         help="flits per VC buffer (default 2)")
    routing.add_argument("--spread", type=_port_list("spread"), default=(2, 3),
                         help="comma-separated output ports over which packets are spread "
                              "round-robin per input (default 2,3)")
    routing.add_argument("--destinations", type=int, default=None,
                         help="routing-table size (default: as many as --routes, or 6: not "
                              "a power of two, so that writes beyond the table are possible)")
    routing.add_argument("--routes", type=_port_list("routes"), default=None,
                         help="comma-separated initial table, one output port per "
                              "destination (default: destination modulo ports)")
    routing.add_argument("--allocator", default="separable",
                         help="switch allocator: separable (default) or islip")
    routing.add_argument("--islip-iterations", type=int, default=None,
                         help="iSLIP iterations, 1..ports (default 1; with --allocator islip)")
    routing.add_argument("--voq", action="store_true",
                         help="virtual output queues at the inputs")
    routing.add_argument("--mutant", default=None,
                         help="prove a deliberately broken variant instead (must FAIL): "
                              "late_table_write, spread_skips_port or write_through_lookup")
    _add_job_options(routing)
    routing.set_defaults(func=routing_command)

    skid = sub.add_parser("skid", help="prove the runner's own two-entry skid buffer")
    skid.add_argument("--width", type=int, default=4, help="payload bits (default 4)")
    skid.add_argument("--fault", default=None,
                      help="a broken variant: overwrite_when_stalled, valid_from_ready or "
                           "drop_when_full")
    _add_job_options(skid)
    skid.set_defaults(func=skid_command)


def _run(harnesses, args):
    results = []
    for harness in harnesses:
        try:
            results.append(run_formal(harness, mode=args.mode, depth=args.depth,
                                      cover=not args.no_cover, timeout_s=args.timeout))
        except FormalToolError as exc:
            raise UserError(str(exc)) from exc
    order = ["error", "fail", "unknown", "pass"]
    status = min((r.status for r in results), key=order.index)
    if args.json:
        print(json.dumps({"status": status, "jobs": [r.to_dict() for r in results]}))
    else:
        for r in results:
            _print_result(r)
    return 0 if status == "pass" else 1


def _print_result(r):
    settings = ", ".join(f"{k}={v}" for k, v in r.params.items() if v is not None)
    how = "k-induction" if r.mode == "prove" else "bounded check"
    print(f"{r.kind} ({settings}): {r.status.upper()} by {how}, depth {r.depth}, "
          f"{len(r.asserts)} assertions, {r.elapsed_s:.1f} s")
    for name, verdict in r.structural.items():
        print(f"  netlist: {name}: {verdict}")
    for name in r.failed:
        print(f"  FAILED: {name}")
    if r.trace:
        kind = "counterexample" if r.status == "fail" else "induction trace (may be unreachable)"
        print(f"  {kind}: {r.trace}")
        if r.gtkw:
            print(f"  open it with: gtkwave {r.gtkw}")
    reached = [k for k, v in r.covers.items() if v]
    missed = [k for k, v in r.covers.items() if not v]
    if r.covers:
        print(f"  covers reached: {len(reached)} of {len(r.covers)}")
        for name in missed:
            print(f"  NOT REACHED: {name}")
    if r.detail:
        print(f"  {r.detail}")
    print(f"  job directory: {r.job_dir}")


def tile_command(args):
    consumers = ("free", "always_ready") if args.consumer == "both" else (args.consumer,)
    harnesses = [TileHarness(rows=args.rows, cols=args.cols, in_width=args.in_width,
                             acc_width=args.acc_width, signed=not args.unsigned,
                             dataflow=args.dataflow, acc_depth=args.acc_depth,
                             mac_stages=args.mac_stages, consumer=c, fault=args.fault,
                             sums=not args.no_sums)
                  for c in consumers]
    return _run(harnesses, args)


def router_command(args):
    return _run([RouterHarness(ports=args.ports, vcs=args.vcs, buffer_depth=args.buffer_depth,
                               flit_width=args.flit_width, allocator=args.allocator,
                               islip_iterations=allocator_iterations(args, "islip"),
                               separable_iterations=allocator_iterations(args, "separable"),
                               voq=args.voq, drop=args.drop, fault=args.fault,
                               liveness=_liveness(args))], args)


def _liveness(args):
    """The bounds of the liveness proof; a bound given without ``--liveness`` is refused,
    as it would bound nothing and the proof would pass with no liveness proved."""
    given = {flag: getattr(args, flag[2:].replace("-", "_")) for flag, _, _ in _LIVENESS_OPTIONS}
    if not args.liveness:
        for flag, value in given.items():
            if value is not None:
                raise UserError(f"{flag} {value} bounds the liveness proof; give --liveness "
                                f"with it")
        return None
    return {flag[2:].replace("-", "_"): default if given[flag] is None else given[flag]
            for flag, default, _ in _LIVENESS_OPTIONS}


def _port_list(what):
    """argparse type: comma-separated port numbers, or one sentence naming the bad text."""
    def parse(text):
        try:
            return tuple(int(p) for p in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{what} must be comma-separated port numbers such as 2,3, not {text!r}") \
                from None
    return parse


def routing_command(args):
    return _run([RoutingHarness(ports=args.ports, vcs=args.vcs, buffer_depth=args.buffer_depth,
                                allocator=args.allocator,
                                islip_iterations=allocator_iterations(args, "islip"), voq=args.voq,
                                destinations=args.destinations, routes=args.routes,
                                spread=args.spread, mutant=args.mutant)],
                args)


def skid_command(args):
    return _run([SkidBufferHarness(width=args.width, fault=args.fault)], args)
