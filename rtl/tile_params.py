"""Parameters of the systolic tile: the one place its defaults, limits and timing are written."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any, ClassVar, TypeAlias

from .errors import UserError, check_int

__all__ = ["DATAFLOWS", "TileParams", "as_tile_params"]

#: ``"os"``: output-stationary (each PE owns one C element; A and B stream through).
#: ``"ws"``: weight-stationary (each PE holds one B element; A streams, partial sums flow down).
DATAFLOWS = ("os", "ws")


@dataclass(frozen=True, kw_only=True)
class TileParams:
    """A validated parameter set of :class:`supernode.rtl.tile.SystolicTile`, with the facts it implies.

    The component, the cycle model (:mod:`supernode.fabric.tile_model`), the benches, the formal
    harness, the CLI, the design-space evaluator and the area flow all read the tile's
    defaults, derived widths and timing from here; this module imports no Amaranth, so the
    models can use it without elaborating anything.

    Parameters
    ----------
    rows, cols : int
        Array shape (1..64 each).
    in_width : int
        Operand width in bits (2..32).
    acc_width : int
        Accumulator and result width in bits, from ``2 * in_width`` to 96.
    signed : bool
        Two's-complement operands and results if true, unsigned otherwise.
    dataflow : str
        One of :data:`DATAFLOWS`: ``"os"`` (output-stationary, double-buffered
        accumulators) or ``"ws"`` (weight-stationary, double-buffered weights).
    acc_depth : int
        Weight-stationary only: rows of partial sums kept between folds (the most ``a``
        beats one fold may carry), 1..4096.
    mac_stages : int
        Register stages inside each multiply-accumulate cell, between the multiplier and
        the adder (0..4). Each stage delays every result by one cycle and shortens the
        cell's longest combinational path (multiplier then adder) to the longer of the
        two; stages beyond the first only help a flow that retimes registers.

    Members
    -------
    min_acc_width : int
        ``2 * in_width``: the narrowest accumulator that holds one exact product.
    result_queue_depth : int
        Entries of the result queue: enough that an always-ready consumer never stalls
        the array.
    stages : int
        Advancing cycles from accepting an operand beat to writing the last result row it
        completes into the result queue (operand skew, array, ``mac_stages`` and de-skew).
    peak_macs_per_cycle : int
        Multiply-accumulates the array completes per cycle when every cell is busy.
    fill_latency : int
        Cycles from accepting an operand beat to offering the first result it completes.
        Output-stationary: from a fold's ``last`` beat to the fold's first result row.
        Weight-stationary: from an emitting ``a`` beat to its result row.
    drain_latency : int
        Cycles from accepting a fold's final beat to offering the fold's final result row.
    fold_interval : int
        Output-stationary: fewest cycles between the ``last`` beats of consecutive folds.
        A fold's result rows leave one per cycle and each cell's result register is reused
        by the next fold, so folds shorter than this are spaced out to it.
    weight_release_latency : int
        Weight-stationary: cycles from a fold's last ``a`` beat to its weight bank being free.
    """
    rows: int
    cols: int
    in_width: int = 8
    acc_width: int = 32
    signed: bool = True
    dataflow: str = "os"
    acc_depth: int = 64
    mac_stages: int = 0

    MAX_SIDE: ClassVar[int] = 64
    IN_WIDTHS: ClassVar[tuple] = (2, 32)
    MAX_ACC_WIDTH: ClassVar[int] = 96
    MAX_ACC_DEPTH: ClassVar[int] = 4096
    MAX_MAC_STAGES: ClassVar[int] = 4

    def __post_init__(self) -> None:
        check_int("rows", self.rows, 1, self.MAX_SIDE)
        check_int("cols", self.cols, 1, self.MAX_SIDE)
        check_int("in_width", self.in_width, *self.IN_WIDTHS)
        check_int("acc_width", self.acc_width, self.min_acc_width, self.MAX_ACC_WIDTH,
                  lo_text=f"2*in_width ({self.min_acc_width})")
        if not isinstance(self.signed, bool):
            raise UserError(f"signed must be True or False, not {self.signed!r}")
        if self.dataflow not in DATAFLOWS:
            raise UserError(f"dataflow must be one of {', '.join(map(repr, DATAFLOWS))}, "
                            f"not {self.dataflow!r}")
        check_int("acc_depth", self.acc_depth, 1, self.MAX_ACC_DEPTH)
        check_int("mac_stages", self.mac_stages, 0, self.MAX_MAC_STAGES)

    @classmethod
    def names(cls) -> tuple:
        """Names of the parameters, in order."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def defaults(cls) -> dict:
        """``{name: default}`` of every parameter that has one."""
        return {f.name: f.default for f in fields(cls) if f.default is not MISSING}

    def as_dict(self) -> dict:
        """The parameters as plain keyword arguments (JSON-ready)."""
        return asdict(self)

    # -- derived widths and values -----------------------------------------------------------

    @property
    def min_acc_width(self) -> int:
        return 2 * self.in_width

    @property
    def product_width(self) -> int:
        """Bits of one exact product, the width of each ``mac_stages`` register."""
        return 2 * self.in_width

    result_queue_depth: ClassVar[int] = 2

    # -- published timing ----------------------------------------------------------------------

    @property
    def stages(self) -> int:
        return self.rows + self.cols + self.mac_stages

    @property
    def peak_macs_per_cycle(self) -> int:
        return self.rows * self.cols

    @property
    def drain_latency(self) -> int:
        return self.stages + 1              # and one cycle through the result queue

    @property
    def fill_latency(self) -> int:
        # Output-stationary rows complete one per cycle, row 0 first; weight-stationary
        # beats each complete a row of their own.
        if self.dataflow == "os":
            return self.drain_latency - (self.rows - 1)
        return self.drain_latency

    @property
    def fold_interval(self) -> int:
        return max(self.rows, self.cols)

    @property
    def weight_release_latency(self) -> int:
        return self.rows + self.cols


#: What the functions taking a tile accept: its parameters, a mapping of them, or None
#: (the keyword options and the defaults then give them).
TileParamsLike: TypeAlias = "TileParams | Mapping[str, Any] | None"


def as_tile_params(params: TileParamsLike = None,
                   **options: Any) -> TileParams:
    """``params`` when it is a :class:`TileParams`, else one made of the mapping ``params``
    and the keyword ``options`` (the defaults fill in the rest); an unknown or missing
    parameter is one :class:`UserError` sentence, not a ``TypeError``."""
    if isinstance(params, TileParams):
        if options:
            raise UserError(f"give the tile either as parameters or as {sorted(options)}, "
                            f"not both")
        return params
    if params is not None and not isinstance(params, Mapping):
        raise UserError(f"tile parameters must be a TileParams or a mapping, not {params!r}")
    given = {**(params or {}), **options}
    names = [f.name for f in fields(TileParams)]
    for key in given:
        if key not in names:
            raise UserError(f"tile parameter must be one of {', '.join(names)}, not {key!r}")
    for name in names:
        if name not in given and name not in TileParams.defaults():
            raise UserError(f"the tile needs {name}, which has no default")
    return TileParams(**given)
