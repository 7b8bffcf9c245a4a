"""HDL-side driver, monitor and counters around the tile, so Python stays out of the cycle loop."""

from typing import Any

from amaranth.hdl import ClockSignal, Instance, Module, Mux, Shape, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from supernode.rtl.errors import UserError
from supernode.rtl.tile import SystolicTile
from supernode.sim.runner import HDL_CLOCK_VERILOG, hdl_clock

__all__ = ["TileHarness", "GapSource", "BENCH_MEMORY_VERILOG"]

#: The harness's stimulus and capture memory, in Verilog. Amaranth writes every word of a
#: memory's initial contents into the Verilog it emits (a minute of elaboration and a 5 MB
#: file for the 16x16 harness's 16k-beat memories); this module clears its words with a
#: loop instead. Its array is public to Verilator's VPI, so the bench writes and reads
#: words as ``<instance>.mem[i]``. The plusarg named by ``PLUSARG`` (``+a_mem=FILE``)
#: loads the words from a ``$readmemh`` file at time zero, for runs without a bench.
BENCH_MEMORY_VERILOG = """
module bench_memory #(parameter WIDTH = 1, parameter DEPTH = 1, parameter ABITS = 1,
                      parameter PLUSARG = "mem") (
    input clk,
    input [ABITS-1:0] raddr, output [WIDTH-1:0] rdata,
    input we, input [ABITS-1:0] waddr, input [WIDTH-1:0] wdata);
  reg [WIDTH-1:0] mem [0:DEPTH-1] /*verilator public_flat_rw*/;
  reg [8*1024-1:0] path;
  integer i;
  initial begin
    for (i = 0; i < DEPTH; i = i + 1) mem[i] = 0;
    if ($value$plusargs({PLUSARG, "=%s"}, path)) $readmemh(path, mem);
  end
  assign rdata = mem[raddr];
  always @(posedge clk) if (we) mem[waddr] <= wdata;
endmodule
"""


class _BenchMemory:
    """Ports of one :data:`BENCH_MEMORY_VERILOG` instance: a combinational read port and
    a synchronous write port, as Amaranth's ``Memory`` with a ``comb`` read port."""

    def __init__(self, name, width, depth):
        abits = max(1, (depth - 1).bit_length())
        self.raddr, self.rdata = Signal(abits, name=f"{name}_raddr"), Signal(width, name=f"{name}_rdata")
        self.we = Signal(name=f"{name}_we")
        self.waddr, self.wdata = Signal(abits, name=f"{name}_waddr"), Signal(width, name=f"{name}_wdata")
        self.instance = Instance(
            "bench_memory", p_WIDTH=width, p_DEPTH=depth, p_ABITS=abits, p_PLUSARG=name,
            i_clk=ClockSignal(), i_raddr=self.raddr, o_rdata=self.rdata,
            i_we=self.we, i_waddr=self.waddr, i_wdata=self.wdata)

#: Ports of every counter the harness keeps; the bench reads them all by these names.
COUNTERS = ("cycles", "first_operand", "first_result", "last_result", "a_beats", "b_beats",
            "c_rows", "a_stalls", "b_stalls", "c_backpressure")


class GapSource(wiring.Component):
    """Decides, each cycle, whether a stream endpoint idles: a periodic pattern or-ed with
    a random draw (a 32-bit Galois LFSR compared with a threshold).

    Members
    -------
    pattern : In(32)
        Bit ``i`` set: idle on cycle ``i`` of each period.
    period : In(6)
        Pattern length, 1..32 (0 disables the pattern).
    threshold : In(8)
        Idle with probability ``threshold / 256`` on top of the pattern.
    seed : In(32)
        LFSR seed, loaded while ``load`` is high (zero is replaced by one).
    load : In(1)
        Restart the pattern and reload the seed.
    gap : Out(1)
        Idle this cycle.
    """
    pattern: In(32)
    period: In(6)
    threshold: In(8)
    seed: In(32)
    load: In(1)
    gap: Out(1)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        lfsr = Signal(32, init=1)
        phase = Signal(5)
        with m.If(self.load):
            m.d.sync += [lfsr.eq(Mux(self.seed == 0, 1, self.seed)), phase.eq(0)]
        with m.Else():
            # x^32 + x^22 + x^2 + x + 1, Galois form.
            m.d.sync += lfsr.eq(Mux(lfsr[0], (lfsr >> 1) ^ 0x80200003, lfsr >> 1))
            m.d.sync += phase.eq(Mux(phase + 1 >= self.period, 0, phase + 1))
        m.d.comb += self.gap.eq(
            ((self.period != 0) & self.pattern.bit_select(phase, 1))
            | (lfsr[8:16] < self.threshold))
        return m


class TileHarness(wiring.Component):
    """A :class:`~supernode.rtl.tile.SystolicTile` with its stimulus, its result capture and counters.

    The bench writes the operand beats into ``a_mem.mem``/``b_mem.mem`` (simulator memory
    access, no clock cycles), sets the counts and gap controls, pulses ``start`` and waits for
    ``done``; then it reads the captured rows from ``c_mem.mem`` and the counters. The
    operand drivers keep ``valid`` and the payload steady until a beat is taken, as the
    stream contract requires, and only idle between beats.

    Parameters
    ----------
    depth : int
        Capacity of each memory, in beats or rows.
    fault : str or None
        ``"flip_result_bit"`` flips bit 0 of the first result row on its way to the
        monitor, to show that the bench's scoreboard catches a wrong answer.
    hdl_clock : bool
        Generate the clock inside the harness (:func:`supernode.sim.runner.hdl_clock`) instead of
        taking it from a ``clk`` input: ``clk`` becomes an output that shows it and
        ``rst`` an input, and the simulator runs the whole GEMM without the bench's help.
        For benches that only wait for ``done``; run with ``run_cocotb(hdl_clock=True)``.
    **tile_params
        Passed to :class:`~supernode.rtl.tile.SystolicTile`.
    """

    def __init__(self, *, depth: int, fault: str | None = None, hdl_clock: bool = False,
                 **tile_params: Any) -> None:
        if not isinstance(depth, int) or depth < 1:
            raise UserError(f"depth must be a positive integer, not {depth!r}")
        if fault not in (None, "flip_result_bit"):
            raise UserError(f"fault must be None or 'flip_result_bit', not {fault!r}")
        if not isinstance(hdl_clock, bool):
            raise UserError(f"hdl_clock must be True or False, not {hdl_clock!r}")
        self._depth, self._fault, self._hdl_clock = depth, fault, hdl_clock
        self.tile = SystolicTile(**tile_params)
        count = range(depth + 1)
        members = {
            "start": In(1),
            "a_count": In(count), "b_count": In(count), "c_count": In(count),
            "done": Out(1),
        }
        if hdl_clock:
            members.update({"clk": Out(1), "rst": In(1)})
        for name in ("a", "b", "c"):
            members.update({f"{name}_pattern": In(32), f"{name}_period": In(6),
                            f"{name}_threshold": In(8), f"{name}_seed": In(32)})
        members.update({name: Out(32) for name in COUNTERS})
        super().__init__(members)
        self.gaps = {name: GapSource() for name in ("a", "b", "c")}

    depth = property(lambda self: self._depth)
    hdl_clock = property(lambda self: self._hdl_clock)

    @property
    def extra_verilog(self) -> str:
        """Verilog of the modules the harness instantiates; written beside its own."""
        return BENCH_MEMORY_VERILOG + (HDL_CLOCK_VERILOG if self._hdl_clock else "")

    def elaborate(self, platform: object) -> Module:
        m = Module()
        if self._hdl_clock:
            hdl_clock(m, clk=self.clk, rst=self.rst)
        m.submodules.tile = tile = self.tile
        a_width = Shape.cast(tile.a.payload.shape()).width
        b_width = Shape.cast(tile.b.payload.shape()).width
        c_width = Shape.cast(tile.c.payload.shape()).width
        a_mem = _BenchMemory("a_mem", a_width, self._depth)
        b_mem = _BenchMemory("b_mem", b_width, self._depth)
        c_mem = _BenchMemory("c_mem", c_width, self._depth)
        for name, mem in (("a_mem", a_mem), ("b_mem", b_mem), ("c_mem", c_mem)):
            m.submodules[name] = mem.instance
        m.d.comb += [a_mem.we.eq(0), b_mem.we.eq(0)]
        for name, gap in self.gaps.items():
            m.submodules[f"{name}_gap"] = gap
            m.d.comb += [
                gap.load.eq(self.start),
                gap.pattern.eq(getattr(self, f"{name}_pattern")),
                gap.period.eq(getattr(self, f"{name}_period")),
                gap.threshold.eq(getattr(self, f"{name}_threshold")),
                gap.seed.eq(getattr(self, f"{name}_seed")),
            ]

        running = Signal()
        cycle = Signal(32)
        with m.If(self.start):
            m.d.sync += running.eq(1)
        with m.Elif(self.done):
            m.d.sync += running.eq(0)

        # Operand drivers: valid waits on nothing but data and the gap source.
        def drive(stream, mem, count_port, gap, beats, stalls):
            index = Signal(range(self._depth + 1))
            held = Signal()                      # a beat was offered and not yet taken
            m.d.comb += [
                mem.raddr.eq(index),
                stream.payload.eq(mem.rdata),
                stream.valid.eq(running & (index < count_port) & (held | ~gap.gap)),
            ]
            fire = stream.valid & stream.ready
            m.d.sync += held.eq(stream.valid & ~stream.ready)
            with m.If(self.start):
                m.d.sync += index.eq(0)
            with m.Elif(fire):
                m.d.sync += [index.eq(index + 1), beats.eq(beats + 1)]
            with m.If(stream.valid & ~stream.ready):
                m.d.sync += stalls.eq(stalls + 1)
            return fire

        a_fire = drive(tile.a, a_mem, self.a_count, self.gaps["a"], self.a_beats, self.a_stalls)
        b_fire = drive(tile.b, b_mem, self.b_count, self.gaps["b"], self.b_beats, self.b_stalls)

        # Result monitor: capture every row in order.
        c_index = Signal(range(self._depth + 1))
        m.d.comb += [
            tile.c.ready.eq(running & ~self.gaps["c"].gap),
            c_mem.waddr.eq(c_index),
            c_mem.wdata.eq(tile.c.payload.as_value()
                           ^ (c_index == 0 if self._fault == "flip_result_bit" else 0)),
            c_mem.we.eq(tile.c.valid & tile.c.ready),
            self.done.eq(running & (c_index == self.c_count) & (self.c_count != 0)),
        ]
        c_fire = tile.c.valid & tile.c.ready
        seen_operand = Signal()
        seen_result = Signal()
        with m.If(self.start):
            m.d.sync += [c_index.eq(0), cycle.eq(0), seen_operand.eq(0), seen_result.eq(0)]
            m.d.sync += [getattr(self, name).eq(0) for name in COUNTERS]
        with m.Elif(running):
            m.d.sync += [cycle.eq(cycle + 1), self.cycles.eq(cycle + 1)]
            with m.If((a_fire | b_fire) & ~seen_operand):
                m.d.sync += [seen_operand.eq(1), self.first_operand.eq(cycle)]
            with m.If(c_fire):
                m.d.sync += [c_index.eq(c_index + 1), self.c_rows.eq(self.c_rows + 1),
                             self.last_result.eq(cycle)]
                with m.If(~seen_result):
                    m.d.sync += [seen_result.eq(1), self.first_result.eq(cycle)]
            with m.If(tile.c.valid & ~tile.c.ready):
                m.d.sync += self.c_backpressure.eq(self.c_backpressure + 1)
        return m
