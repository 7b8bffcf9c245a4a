"""A parameterised systolic compute tile: the matrix (Cube) unit of one NPU core."""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Cat, Module, Signal, Shape, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from .published import Published
from .tile_params import DATAFLOWS, TileParams, TileParamsLike, as_tile_params

__all__ = ["SystolicTile", "TileParams", "DATAFLOWS", "operand_layouts", "result_layout"]


def _element_shape(width: int, is_signed: bool) -> Shape:
    return signed(width) if is_signed else unsigned(width)


def operand_layouts(params: TileParams) -> tuple[data.StructLayout, data.StructLayout]:
    """Payload layouts of the ``a`` and ``b`` operand streams of a :class:`TileParams`.

    Output-stationary: an ``a`` beat is one column of an A block (``rows`` values, one per
    array row) and is paired with one ``b`` beat, a row of a B block (``cols`` values);
    ``last`` marks the final k-step of a fold.

    Weight-stationary: ``b`` beats are the ``rows`` rows of a B block (the weights of one fold);
    an ``a`` beat is one row of A restricted to the block's k range (``rows`` values).
    ``accumulate`` adds the row's partial sums to those kept from the previous fold, ``emit``
    sends the total to the result stream instead of keeping it, ``last`` ends the fold.
    """
    elem = _element_shape(params.in_width, params.signed)
    a_fields = {"data": data.ArrayLayout(elem, params.rows), "last": 1}
    if params.dataflow == "ws":
        a_fields.update({"accumulate": 1, "emit": 1})
    a = data.StructLayout(a_fields)
    b = data.StructLayout({"data": data.ArrayLayout(elem, params.cols)})
    return a, b


def result_layout(params: TileParams) -> data.StructLayout:
    """Payload layout of the ``c`` result stream: one row of C, ``last`` on a fold's final row."""
    acc = _element_shape(params.acc_width, params.signed)
    return data.StructLayout({"data": data.ArrayLayout(acc, params.cols), "last": 1})


class SystolicTile(wiring.Component):
    """A ``rows`` x ``cols`` systolic array of multiply-accumulate cells.

    The tile skews its inputs and de-skews its outputs itself: a user streams plain vectors
    and receives plain result rows. A GEMM ``C = A @ B`` of any shape is computed as a
    sequence of *folds* (see :mod:`supernode.fabric.tile_model` for the order in which
    :func:`supernode.fabric.tile_model.fold_schedule` cuts a GEMM into folds); folds stream
    back-to-back without idle cycles when they are long enough (``fold_interval``).

    Each cell may register its product ``mac_stages`` times before adding it (a pipelined
    multiply-accumulate): every result then comes that many cycles later, and the longest
    path through a cell is the multiplier or the adder instead of both.

    The whole array advances in lock-step; an empty operand stream inserts a bubble
    (nothing is lost, the array keeps draining), and a full result queue stalls the array
    (back-pressure is honoured, nothing is overwritten).

    Accumulators are ``acc_width`` bits and wrap around modulo ``2**acc_width`` (two's
    complement when ``signed``); products are exact before they are added.

    Parameters
    ----------
    params : TileParams
        The tile's parameters (see :class:`~supernode.rtl.tile_params.TileParams` for their ranges
        and defaults); or give them as keywords instead (``rows=4, cols=4, ...``).

    Members
    -------
    params : TileParams
        The parameters; the component publishes each of them, and each of their timing
        facts (``fill_latency``, ``drain_latency``, ``stages``, ``fold_interval``,
        ``weight_release_latency``, ``peak_macs_per_cycle``), as a read-only property.
    element_shape, accumulator_shape, product_shape : Shape
        Shape of one operand, of one accumulator or result value, and of one exact product.
    a : In(stream.Signature(...))
        Operand A stream; payload :func:`operand_layouts` ``[0]``.
    b : In(stream.Signature(...))
        Operand B stream; payload :func:`operand_layouts` ``[1]``.
    c : Out(stream.Signature(...))
        Result rows; payload :func:`result_layout`.
    state : Published
        The internal signals the proofs read, by name, filled when the tile is elaborated
        (read-only): ``advance``, the result queue's ``level``, ``w_en`` and ``w_rdy``, the
        ``result_row`` written to it, the operand registers ``a_r{i}_c{j}`` (and
        ``b_r{i}_c{j}``), every delay register ``{name}_skew{stage}`` (``a{i}``, ``b{j}``,
        ``psum{j}``, ``flags``, the cells' ``mac_r{i}_c{j}``); output-stationary:
        ``since_last``, ``acc_r{i}_c{j}``, ``result_r{i}_c{j}``, ``row_done``;
        weight-stationary: the banks ``w{k}_r{i}_c{j}``, ``ready``, ``busy``, ``load_bank``,
        ``load_row``, ``use_bank``, ``psum_r{i}_c{j}``, ``kept{n}`` and ``index``.
    """

    def __init__(self, *, params: TileParamsLike = None,
                 **kwargs: Any) -> None:
        try:
            self._params = params = as_tile_params(params, **kwargs)
        except (TypeError, ValueError):
            self._MustUse__silence = True   # refused, so never a design left unused
            raise
        a_layout, b_layout = operand_layouts(params)
        super().__init__({
            "a": In(stream.Signature(a_layout)),
            "b": In(stream.Signature(b_layout)),
            "c": Out(stream.Signature(result_layout(params))),
        })
        self.state = Published("tile")

    params = property(lambda self: self._params)

    # Parameters, read-only.
    rows = property(lambda self: self._params.rows)
    cols = property(lambda self: self._params.cols)
    in_width = property(lambda self: self._params.in_width)
    acc_width = property(lambda self: self._params.acc_width)
    signed = property(lambda self: self._params.signed)
    dataflow = property(lambda self: self._params.dataflow)
    acc_depth = property(lambda self: self._params.acc_depth)
    mac_stages = property(lambda self: self._params.mac_stages)

    # Published timing facts, as the parameters state them.
    peak_macs_per_cycle = property(lambda self: self._params.peak_macs_per_cycle)
    stages = property(lambda self: self._params.stages)
    fill_latency = property(lambda self: self._params.fill_latency)
    drain_latency = property(lambda self: self._params.drain_latency)
    fold_interval = property(lambda self: self._params.fold_interval)
    weight_release_latency = property(lambda self: self._params.weight_release_latency)

    @property
    def element_shape(self) -> Shape:
        return _element_shape(self.in_width, self.signed)

    @property
    def accumulator_shape(self) -> Shape:
        return _element_shape(self.acc_width, self.signed)

    @property
    def product_shape(self) -> Shape:
        return _element_shape(self._params.product_width, self.signed)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        self.state.clear()
        m.submodules.results = results = SyncFIFO(
            width=Shape.cast(self.c.payload.shape()).width,
            depth=self._params.result_queue_depth)

        # The array moves only when a completed row is sure to find room in the result queue.
        advance = Signal()
        m.d.comb += advance.eq(results.w_rdy)
        m.d.comb += [
            self.c.valid.eq(results.r_rdy),
            self.c.payload.eq(results.r_data),
            results.r_en.eq(self.c.ready),
        ]

        result_row = Signal(self.c.payload.shape())
        m.d.comb += results.w_data.eq(result_row.as_value())
        self.state.publish(advance=advance, result_row=result_row, level=results.level,
                           w_en=results.w_en, w_rdy=results.w_rdy)

        if self.dataflow == "os":
            self._elaborate_os(m, advance, results, result_row)
        else:
            self._elaborate_ws(m, advance, results, result_row)
        return m

    # -- helpers ----------------------------------------------------------------------------

    def _skewed(self, m, advance, value, delay, name):
        """``value`` delayed by ``delay`` advancing cycles (a chain of ``delay`` registers,
        published as ``{name}_skew{stage}``)."""
        for stage in range(delay):
            reg = Signal.like(value, name=f"{name}_skew{stage}")
            self.state.publish(reg)
            with m.If(advance):
                m.d.sync += reg.eq(value)
            value = reg
        return value

    def _multiply(self, m, advance, a_beat, weight, name):
        """The product of ``a_beat.data`` and ``weight`` with the beat's ``valid`` and
        ``last``, after the cell's ``mac_stages`` pipeline registers ``{name}_skew{k}``."""
        staged = data.StructLayout({"product": self.product_shape, "valid": 1, "last": 1})
        product = Signal(staged, name=f"{name}_in")
        m.d.comb += [product.product.eq(a_beat.data * weight), product.valid.eq(a_beat.valid),
                     product.last.eq(a_beat.last)]
        return self._skewed(m, advance, product, self.mac_stages, name)

    def _a_rows(self, m, advance, take, beat, **fields):
        """Registers ``a_r{i}_c{j}`` carrying each ``a`` beat right along row ``i``, the row
        skewed by ``i`` cycles; ``fields`` fill the beat's fields beyond data/valid/last."""
        R, C = self.rows, self.cols
        a_reg = [[Signal(beat, name=f"a_r{i}_c{j}") for j in range(C)] for i in range(R)]
        self.state.publish(*[reg for row in a_reg for reg in row])
        for i in range(R):
            entering = Signal(beat, name=f"a_in{i}")
            m.d.comb += [entering.data.eq(self.a.payload.data[i]), entering.valid.eq(take),
                         entering.last.eq(self.a.payload.last)]
            m.d.comb += [getattr(entering, name).eq(value) for name, value in fields.items()]
            entering = self._skewed(m, advance, entering, i, f"a{i}")
            with m.If(advance):
                m.d.sync += a_reg[i][0].eq(entering)
                for j in range(1, C):
                    m.d.sync += a_reg[i][j].eq(a_reg[i][j - 1])
        return a_reg

    # -- output-stationary --------------------------------------------------------------------

    def _elaborate_os(self, m, advance, results, result_row):
        R, C = self.rows, self.cols
        beat = data.StructLayout({"data": self.element_shape, "valid": 1, "last": 1})

        # Fold spacing: a `last` beat waits until `fold_interval` cycles after the previous one.
        interval = self.fold_interval
        since_last = Signal(range(interval + 1), init=interval)
        last_allowed = Signal()
        m.d.comb += last_allowed.eq((since_last == interval) | ~self.a.payload.last)
        self.state.publish(since_last=since_last)

        take = Signal()
        m.d.comb += [
            take.eq(advance & self.a.valid & self.b.valid & last_allowed),
            self.a.ready.eq(take),
            self.b.ready.eq(take),
        ]
        with m.If(advance):
            with m.If(take & self.a.payload.last):
                m.d.sync += since_last.eq(1)
            with m.Elif(since_last != interval):
                m.d.sync += since_last.eq(since_last + 1)

        # Skewed operand registers at each cell: a moves right along a row, b down a column.
        a_reg = self._a_rows(m, advance, take, beat)
        b_reg = [[Signal(self.element_shape, name=f"b_r{i}_c{j}") for j in range(C)]
                 for i in range(R)]
        self.state.publish(*[reg for row in b_reg for reg in row])
        for j in range(C):
            entering = self._skewed(m, advance, self.b.payload.data[j], j, f"b{j}")
            with m.If(advance):
                m.d.sync += b_reg[0][j].eq(entering)
                for i in range(1, R):
                    m.d.sync += b_reg[i][j].eq(b_reg[i - 1][j])

        # Cells: multiply (through the cell's pipeline registers), accumulate; on a fold's
        # last beat, move the total to the result register (the second accumulator buffer)
        # and restart from zero for the next fold.
        result = [[Signal(self.accumulator_shape, name=f"result_r{i}_c{j}") for j in range(C)]
                  for i in range(R)]
        self.state.publish(*[reg for row in result for reg in row])
        added = [[None] * C for _ in range(R)]
        for i in range(R):
            for j in range(C):
                acc = Signal(self.accumulator_shape, name=f"acc_r{i}_c{j}")
                self.state.publish(acc)
                added[i][j] = cell = self._multiply(m, advance, a_reg[i][j], b_reg[i][j],
                                                    f"mac_r{i}_c{j}")
                total = acc + cell.product
                with m.If(advance & cell.valid):
                    with m.If(cell.last):
                        m.d.sync += [result[i][j].eq(total), acc.eq(0)]
                    with m.Else():
                        m.d.sync += acc.eq(total)

        # De-skew: row i is complete one cycle after its last beat is added in the last
        # column; rows of a fold complete on consecutive cycles, so they leave in row order.
        row_done = Signal(R)
        self.state.publish(row_done=row_done)
        with m.If(advance):
            m.d.sync += row_done.eq(
                Cat(added[i][C - 1].valid & added[i][C - 1].last for i in range(R)))
        for i in range(R):
            with m.If(row_done[i]):
                m.d.comb += [result_row.data[j].eq(result[i][j]) for j in range(C)]
        m.d.comb += [
            result_row.last.eq(row_done[R - 1]),
            results.w_en.eq(advance & row_done.any()),
        ]

    # -- weight-stationary --------------------------------------------------------------------

    def _elaborate_ws(self, m, advance, results, result_row):
        R, C = self.rows, self.cols
        beat = data.StructLayout({"data": self.element_shape, "valid": 1, "last": 1, "bank": 1})

        # Two weight banks: one is loaded from `b` while the other is in use.
        weights = [[[Signal(self.element_shape, name=f"w{k}_r{i}_c{j}") for j in range(C)]
                    for i in range(R)] for k in range(2)]
        ready = Signal(2)               # bank holds a fold's weights whose beats have not all come
        busy = Signal(2)                # bank may not be loaded: ready, or still used in the array
        load_bank = Signal()
        load_row = Signal(range(R))
        use_bank = Signal()
        self.state.publish(*[reg for bank in weights for row in bank for reg in row])
        self.state.publish(ready=ready, busy=busy, load_bank=load_bank, load_row=load_row,
                           use_bank=use_bank)

        m.d.comb += self.b.ready.eq(advance & ~busy.bit_select(load_bank, 1))
        with m.If(self.b.valid & self.b.ready):
            for k in range(2):
                for i in range(R):
                    with m.If((load_bank == k) & (load_row == i)):
                        m.d.sync += [weights[k][i][j].eq(self.b.payload.data[j])
                                     for j in range(C)]
            with m.If(load_row == R - 1):
                m.d.sync += [load_row.eq(0), load_bank.eq(~load_bank)]
            with m.Else():
                m.d.sync += load_row.eq(load_row + 1)

        take = Signal()
        m.d.comb += [
            self.a.ready.eq(advance & ready.bit_select(use_bank, 1)),
            take.eq(self.a.valid & self.a.ready),
        ]
        fold_taken = Signal(2)
        m.d.comb += fold_taken.eq((take & self.a.payload.last) << use_bank)
        with m.If(take & self.a.payload.last):
            m.d.sync += use_bank.eq(~use_bank)

        # Activations move right along rows (row i skewed by i); partial sums move down.
        a_reg = self._a_rows(m, advance, take, beat, bank=use_bank)
        psum = [[Signal(self.accumulator_shape, name=f"psum_r{i}_c{j}") for j in range(C)]
                for i in range(R)]
        self.state.publish(*[reg for row in psum for reg in row])
        for i in range(R):
            for j in range(C):
                weight = Signal(self.element_shape, name=f"wsel_r{i}_c{j}")
                m.d.comb += weight.eq(weights[0][i][j])
                with m.If(a_reg[i][j].bank):
                    m.d.comb += weight.eq(weights[1][i][j])
                above = psum[i - 1][j] if i else 0
                cell = self._multiply(m, advance, a_reg[i][j], weight, f"mac_r{i}_c{j}")
                with m.If(advance):
                    m.d.sync += psum[i][j].eq(above + cell.product)

        # A bank is free again once the fold's last beat has passed the last cell.
        tail = a_reg[R - 1][C - 1]
        load_done = Signal(2)
        m.d.comb += load_done.eq(
            (self.b.valid & self.b.ready & (load_row == R - 1)) << load_bank)
        release = Signal(2)
        m.d.comb += release.eq((advance & tail.valid & tail.last) << tail.bank)
        m.d.sync += [
            ready.eq((ready | load_done) & ~fold_taken),
            busy.eq((busy | load_done) & ~release),
        ]

        # De-skew the column outputs (column j is C-1-j cycles early) and carry the beat's
        # flags alongside through a delay line of the array's depth.
        bottom = Signal(data.ArrayLayout(self.accumulator_shape, C))
        for j in range(C):
            m.d.comb += bottom[j].eq(self._skewed(m, advance, psum[R - 1][j], C - 1 - j,
                                                  f"psum{j}"))
        flags = data.StructLayout({"valid": 1, "last": 1, "accumulate": 1, "emit": 1})
        entering = Signal(flags)
        m.d.comb += [entering.valid.eq(take), entering.last.eq(self.a.payload.last),
                     entering.accumulate.eq(self.a.payload.accumulate),
                     entering.emit.eq(self.a.payload.emit)]
        arrived = self._skewed(m, advance, entering, self.stages, "flags")

        # Partial sums kept between folds: row `index` of the current fold.
        kept = [Signal(data.ArrayLayout(self.accumulator_shape, C), name=f"kept{n}")
                for n in range(self.acc_depth)]
        index = Signal(range(self.acc_depth))
        self.state.publish(*kept, index=index)
        previous = Signal(data.ArrayLayout(self.accumulator_shape, C))
        for n in range(self.acc_depth):
            with m.If(index == n):
                m.d.comb += previous.eq(kept[n])
        for j in range(C):
            with m.If(arrived.accumulate):
                m.d.comb += result_row.data[j].eq(previous[j] + bottom[j])
            with m.Else():
                m.d.comb += result_row.data[j].eq(bottom[j])
        m.d.comb += [
            result_row.last.eq(arrived.last),
            results.w_en.eq(advance & arrived.valid & arrived.emit),
        ]
        with m.If(advance & arrived.valid):
            with m.If(~arrived.emit):
                for n in range(self.acc_depth):
                    with m.If(index == n):
                        m.d.sync += kept[n].eq(result_row.data)
            with m.If(arrived.last):
                m.d.sync += index.eq(0)
            with m.Else():
                m.d.sync += index.eq(index + 1)
