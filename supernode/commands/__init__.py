"""Sub-commands of the ``supernode`` command, and the argument types they share."""

import argparse
import dataclasses

from supernode.rtl.errors import UserError
from supernode.rtl.router_params import RouterParams
from supernode.rtl.tile_params import DATAFLOWS, TileParams


#: Endings accepted for an exported Verilog file.
VERILOG_SUFFIXES = (".v", ".sv")


#: The router's own defaults (read from its parameter object, not restated).
ROUTER_DEFAULTS = {f.name: f.default for f in dataclasses.fields(RouterParams)}


def whole_number(text):
    """argparse type: an integer (the parameter object says which are accepted), or one
    sentence naming the bad text."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None


def positive_int(text):
    """argparse type: a positive integer, or one sentence naming the bad value."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}")
    return value


def add_tile_arguments(parser, *, integer=int, dataflow_required=False):
    """Options for the systolic tile's parameters; a default shown in the help is the one
    :class:`~supernode.rtl.tile_params.TileParams` fills in when the option is left out."""
    defaults = TileParams.defaults()
    parser.add_argument("--rows", type=integer, required=True, help="array rows")
    parser.add_argument("--cols", type=integer, required=True, help="array columns")
    parser.add_argument("--dataflow", required=dataflow_required,
                        help=f"{' or '.join(DATAFLOWS)} (output- or weight-stationary)"
                        + ("" if dataflow_required else f"; default {defaults['dataflow']}"))
    parser.add_argument("--in-width", type=integer,
                        help=f"operand bits (default {defaults['in_width']})")
    parser.add_argument("--acc-width", type=integer,
                        help=f"accumulator bits, results wrap at this width "
                             f"(default {defaults['acc_width']})")
    parser.add_argument("--unsigned", dest="signed", action="store_const", const=False,
                        help="unsigned operands"
                             + (" (default)" if not defaults["signed"] else ""))
    parser.add_argument("--acc-depth", type=integer,
                        help=f"ws: rows of partial sums kept between folds "
                             f"(default {defaults['acc_depth']})")
    parser.add_argument("--mac-stages", type=integer,
                        help=f"register stages between each cell's multiplier and adder "
                             f"(default {defaults['mac_stages']})")


def tile_arguments(args) -> TileParams:
    """The :class:`~supernode.rtl.tile_params.TileParams` of the options :func:`add_tile_arguments`
    added; an option left out takes the parameter's default."""
    given = {name: getattr(args, name, None) for name in TileParams.names()}
    return TileParams(**{name: value for name, value in given.items() if value is not None})


def add_router_arguments(parser, *, integer=int):
    """Options for the router's parameters (the defaults of the area and implementation
    commands: a 4-port router with two virtual channels)."""
    parser.add_argument("--ports", type=integer, default=4)
    parser.add_argument("--vcs", type=integer, default=2)
    parser.add_argument("--buffer-depth", type=integer, default=4)
    parser.add_argument("--flit-width", type=integer, default=16)
    parser.add_argument("--allocator", default="separable")
    parser.add_argument("--separable-iterations", type=integer, default=None,
                        help=f"separable allocator iterations, with --allocator separable "
                             f"(default {ROUTER_DEFAULTS['separable_iterations']})")
    parser.add_argument("--islip-iterations", type=integer, default=None,
                        help=f"iSLIP iterations, with --allocator islip (default "
                             f"{ROUTER_DEFAULTS['islip_iterations']})")
    parser.add_argument("--voq", action="store_true")


def allocator_iterations(args, allocator: str) -> int:
    """``--separable-iterations`` or ``--islip-iterations``: the default when left out, and
    refused with another allocator, where it would do nothing."""
    value = getattr(args, f"{allocator}_iterations", None)
    if value is None:
        return ROUTER_DEFAULTS[f"{allocator}_iterations"]
    if args.allocator != allocator:
        raise UserError(f"--{allocator}-iterations {value} applies to --allocator "
                        f"{allocator} only, not to {args.allocator!r}")
    return value


def router_arguments(args) -> dict:
    """The router's keyword parameters of the options :func:`add_router_arguments` added."""
    params = {"ports": args.ports, "vcs": args.vcs, "buffer_depth": args.buffer_depth,
              "flit_width": args.flit_width, "allocator": args.allocator,
              "islip_iterations": allocator_iterations(args, "islip"), "voq": args.voq}
    separable = allocator_iterations(args, "separable")
    # Given only when not the default, so that a default design keeps its build directory.
    if separable != ROUTER_DEFAULTS["separable_iterations"]:
        params["separable_iterations"] = separable
    return params


def add_block_parsers(sub, *, common, run, tile, router):
    """The ``tile`` and ``router`` sub-commands of a command that takes a block (``area``,
    ``implement``): each block's own arguments (whole numbers, so that a value such as
    ``0`` reaches the parameter object's sentence), then ``common(parser)``, the command's
    own options. ``args.factory(args)`` gives ``(kind, component class, parameters)``;
    ``tile`` and ``router`` are the component classes, which the caller imports."""
    t = sub.add_parser("tile", help="a SystolicTile (rtl/tile.py)")
    add_tile_arguments(t, integer=whole_number)
    common(t)
    t.set_defaults(func=run, factory=lambda args: ("tile", tile, tile_arguments(args).as_dict()))
    r = sub.add_parser("router", help="a VC Router (rtl/router.py)")
    add_router_arguments(r, integer=whole_number)
    common(r)
    r.set_defaults(func=run, factory=lambda args: ("router", router, router_arguments(args)))
