"""cocotb traffic bench for the router and the Clos: injectors, ejectors, scoreboard and watchdog."""

import os
import time

import cocotb
from cocotb.triggers import ClockCycles, FallingEdge

from supernode.fabric.network.lockstep import LockStep
from supernode.fabric.network.traffic import TrafficSpec, ScoreboardError, DeadlockError
from supernode.sim.router.backends import CocotbBackend
from supernode.sim.router.common import Design
from supernode.sim.runner import load_bench_inputs, start_clock, write_bench_result


class TrafficBench:
    """Owns reset, the endpoints and the performance-counter readout of one run.

    The shared :class:`~supernode.fabric.network.lockstep.LockStep` loop runs the
    :class:`~supernode.fabric.network.traffic.Endpoints` (sources, sinks, scoreboard, resequencers,
    statistics) on a :class:`~supernode.sim.router.backends.CocotbBackend`: every cycle, at the
    falling edge, it reads the one ``status`` vector (flits leaving the network, credits
    coming back to the sources) and writes the one ``drive`` vector, which the routers
    sample at the next rising edge.

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
        self.backend = CocotbBackend(dut, design)
        self.eps = design.endpoints(spec)
        self.cfg_writes = cfg_writes
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
        driver = LockStep(self.eps, max_cycles=max_cycles, cfg_writes=self.cfg_writes,
                          monitors=[self._record_ejected] if self.routers else [])
        await driver.run(self.backend)

    def _record_ejected(self, t, ejected):
        """Monitor: ``(port, src, dest)`` of every flit leaving the network."""
        self.ejected_flits += [(e, f.src, f.dest) for e, f in enumerate(ejected) if f]

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
    start_clock(dut.clk)
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
