"""cocotb traffic bench for the router and the Clos: injectors, ejectors, scoreboard and watchdog."""

import os
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge

from fabric.network.flit import FlitCodec
from fabric.network.traffic import TrafficSpec, ScoreboardError, DeadlockError
from sim.router.common import Design
from sim.runner import load_bench_inputs, write_bench_result


class TrafficBench:
    """Owns clock, reset and the per-cycle exchange with the packed harness.

    Every cycle, at the falling edge, it reads the one ``status`` vector (flits leaving
    the network, credits coming back to the injectors), lets the shared
    :class:`~fabric.network.traffic.Endpoints` (drivers, ejectors, scoreboard, watchdog)
    decide, and writes the one ``drive`` vector, which the routers sample at the next
    rising edge.

    Parameters
    ----------
    dut : cocotb handle
        The harness top level.
    design : Design
        What is under test.
    spec : TrafficSpec
        The traffic and measurement windows.
    cfg_writes : list of (cycle, dest, port)
        Routing-table writes through the router's ``cfg`` port.
    """

    def __init__(self, dut, design, spec, cfg_writes=()):
        self.dut = dut
        self.design = design
        self.spec = spec
        params = design.design_params
        self.codec = design.codec
        self.flits = FlitCodec(params.flit_layout)
        self.eps = design.endpoints(spec)
        self.cfg = {c: (d, p) for c, d, p in cfg_writes}
        self.routers = []       # (name, ports) of routers with performance counters
        if params.stats:
            if design.kind == "router":
                self.routers = [("router", params.ports)]
            else:
                ports = [p.ports for p in params.leaf_params + params.spine_params]
                self.routers = list(zip(params.router_names, ports))
        self.ejected_flits = []  # (port, src, dest) of every flit that left the network

    async def reset(self):
        """Hold reset for two cycles with nothing driven; returns at a falling edge."""
        self.dut.rst.value = 1
        self.dut.drive.value = 0
        await ClockCycles(self.dut.clk, 2)
        await FallingEdge(self.dut.clk)
        self.dut.rst.value = 0

    async def run(self, max_cycles):
        eps, codec, flits, dut = self.eps, self.codec, self.flits, self.dut
        unpack, pack = flits.unpack, flits.pack
        falling = FallingEdge(dut.clk)
        while not eps.done:
            if eps.cycle >= max_cycles:
                raise DeadlockError(f"the run did not end within {max_cycles} cycles")
            raw, credits = codec.unpack_status(dut.status.value.to_unsigned())
            ejected = [None if f is None else unpack(f) for f in raw]
            if self.routers:
                self.ejected_flits += [(e, f.src, f.dest) for e, f in enumerate(ejected) if f]
            inject, credits_out = eps.step(ejected, credits)
            dut.drive.value = codec.pack_drive(
                [None if f is None else pack(f) for f in inject], credits_out,
                self.cfg.get(eps.cycle - 1))
            await falling
        eps.finish()

    def read_stats(self) -> dict:
        """The routers' performance counters: ``{router: {counter: [per port]}}``."""
        out = {}
        for name, ports in self.routers:
            handle = self.dut.dut if name == "router" else getattr(self.dut.dut, name)
            out[name] = {counter: [int(getattr(handle, f"stats__{counter}__{k}").value)
                                   for k in range(ports)]
                         for counter in ("sent", "blocked", "credit_stalls")}
        return out


@cocotb.test()
async def traffic(dut):
    """Run the traffic scenarios in order (reset between them); the results, or the
    failure, go back to the runner."""
    params, inputs = load_bench_inputs()
    params = dict(params)
    design = Design(params.pop("design"), params)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    points, error = [], None
    for spec_dict in inputs["specs"]:
        spec = TrafficSpec(**spec_dict)
        dut._log.info("design %s %s, traffic %s at load %s (seed %d)", design.kind, params,
                      spec.pattern, spec.load, spec.seed)
        bench = TrafficBench(dut, design, spec, inputs.get("cfg", ()))
        await bench.reset()
        start = time.perf_counter()
        try:
            await bench.run(int(inputs.get("max_cycles", 1_000_000)))
        except (ScoreboardError, DeadlockError) as exc:
            error = str(exc)
        result = bench.eps.result()
        result.update(passed=error is None, error=error,
                      wall_seconds=time.perf_counter() - start)
        if bench.routers:
            result.update(router_stats=bench.read_stats(), ejected_flits=bench.ejected_flits)
        points.append(result)
        if error:
            break
    write_bench_result({"points": points, "passed": error is None, "error": error,
                        "pid": os.getpid()})
    assert error is None, error
