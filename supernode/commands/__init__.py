"""Sub-commands of the ``supernode`` command, and the argument types they share."""

import argparse

from rtl.tile_params import DATAFLOWS, TileParams


#: Endings accepted for an exported Verilog file.
VERILOG_SUFFIXES = (".v", ".sv")


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
    :class:`~rtl.tile_params.TileParams` fills in when the option is left out."""
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


def tile_arguments(args) -> TileParams:
    """The :class:`~rtl.tile_params.TileParams` of the options :func:`add_tile_arguments`
    added; an option left out takes the parameter's default."""
    given = {name: getattr(args, name, None) for name in TileParams.names()}
    return TileParams(**{name: value for name, value in given.items() if value is not None})
