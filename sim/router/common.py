"""One description of a router or Clos under test, and runners for RTL, Amaranth sim and model."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from amaranth.sim import Simulator

from supernode.fabric.network.lockstep import LockStep
from supernode.fabric.network.traffic import MODELS, Endpoints, TrafficSpec, run_endpoints
from supernode.fabric.network.model import NetworkModel, router_network, clos_network
from supernode.rtl.clos_params import ClosParams
from supernode.rtl.router_harness import PackedCodec, PackedHarness, design_params, make_top
from supernode.rtl.router_params import RouterParams
from supernode.sim.runner import RunResult, run_cocotb
from .backends import AmaranthBackend

__all__ = ["Design", "MODELS", "run_rtl", "run_rtl_points", "run_amaranth", "run_model_for"]


@dataclass(frozen=True)
class Design:
    """A design under test: ``kind`` is ``"router"`` or ``"clos"``, ``params`` its keywords.

    Members
    -------
    kind : str
    params : dict
    """
    kind: str
    params: dict

    def top(self) -> PackedHarness:
        """The packed bench harness around the design."""
        return make_top(design=self.kind, **self.params)

    @property
    def design_params(self) -> RouterParams | ClosParams:
        """The :class:`~supernode.rtl.router_params.RouterParams` or
        :class:`~supernode.rtl.clos_params.ClosParams` of the design (validates ``params``)."""
        return design_params(self.kind, **self.params)

    @property
    def codec(self) -> PackedCodec:
        """The packer of the bench harness around the design."""
        return PackedCodec.of(self.design_params)

    def endpoints(self, spec: TrafficSpec) -> Endpoints:
        """Fresh endpoints (traffic, scoreboard, statistics) for one run."""
        p = self.design_params
        if self.kind == "router":
            lat = p.latency
            zero_load = lambda s, d, length: lat + length - 1  # noqa: E731
            n = p.ports
        else:
            zero_load = p.zero_load_latency
            n = p.endpoints
        return Endpoints(endpoints=n, vcs=p.vcs, buffer_depth=p.buffer_depth,
                         flit_width=p.flit_width, spec=spec, zero_load=zero_load,
                         packet_id_width=p.packet_id_width)

    def model(self) -> NetworkModel:
        """The cycle-level model of the design."""
        if self.kind == "router":
            return router_network(self.design_params)
        return clos_network(self.design_params)


#: Router parameters as the CLI spells them by default (every key given, so that a test, a
#: benchmark and a CLI run of the same design share one build directory).
ROUTER_DEFAULTS = dict(flit_width=16, allocator="separable", islip_iterations=1, voq=False)

#: The designs the tests and benchmarks share: the smallest useful router, and the
#: 16-endpoint Clos (4 leaves x 4 endpoints, 2 spines: 2:1 over-subscribed up-links).
REFERENCE_DESIGNS = {
    "router4": Design("router", dict(ports=4, vcs=2, buffer_depth=2, **ROUTER_DEFAULTS)),
    "clos16": Design("clos", dict(endpoints_per_leaf=4, leaves=4, spines=2,
                                  up_routing="deterministic", vcs=2, buffer_depth=4,
                                  **ROUTER_DEFAULTS)),
}


def run_model_for(design: Design, spec: TrafficSpec, *,
                  cfg_writes: Sequence[tuple[int, int, int]] = (),
                  max_cycles: int = 10_000_000, endpoints: list[Endpoints] | None = None,
                  model: str = "compiled") -> dict[str, Any]:
    """Run the model of ``design`` under ``spec``; the endpoints are the bench's own.

    ``cfg_writes`` are ``(cycle, dest, port)`` routing-table writes (router only);
    ``endpoints``, when given, receives the :class:`Endpoints` object (for inspection;
    after a compiled run it holds the run's statistics, not its per-packet state).
    ``model`` is ``"compiled"`` (:mod:`supernode.fabric.network.engine`) or ``"python"`` (the
    readable reference, :class:`~supernode.fabric.network.model.NetworkModel` stepped from Python);
    both give the same result dict and raise the same errors.
    """
    eps = design.endpoints(spec)
    if endpoints is not None:
        endpoints.append(eps)
    return run_endpoints(design.model(), eps, max_cycles=max_cycles, cfg_writes=cfg_writes,
                         model=model)


def run_amaranth(design: Design, spec: TrafficSpec, *,
                 cfg_writes: Sequence[tuple[int, int, int]] = (), max_cycles: int = 100_000,
                 endpoints: list[Endpoints] | None = None) -> dict[str, Any]:
    """Run the RTL in Amaranth's simulator under ``spec`` (slow; for small unit tests).

    Arguments as for :func:`run_model_for`.
    """
    top = design.top()
    eps = design.endpoints(spec)
    if endpoints is not None:
        endpoints.append(eps)
    driver = LockStep(eps, max_cycles=max_cycles, cfg_writes=cfg_writes)

    async def bench(ctx):
        await driver.run(AmaranthBackend(ctx, design, top))

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return eps.result()


def run_rtl_points(design: Design, specs: Sequence[TrafficSpec], *, sim: str = "verilator",
                   waves: bool = False, cfg_writes: Sequence[tuple[int, int, int]] = ()
                   ) -> tuple[list[dict[str, Any]], RunResult]:
    """Run the cocotb bench on ``design`` once per spec, in one simulator process (reset
    between specs); returns ``(list of result dicts, RunResult)``."""
    inputs = {"specs": [s.as_dict() for s in specs], "cfg": [list(c) for c in cfg_writes]}
    run = run_cocotb(kind=f"router_{design.kind}", component_factory=make_top,
                     params={"design": design.kind, **design.params},
                     test_module="supernode.sim.router.bench", inputs=inputs, sim=sim, waves=waves,
                     public=[("*", "stats__*")])
    return run.result["points"], run


def run_rtl(design: Design, spec: TrafficSpec, *, sim: str = "verilator",
            waves: bool = False, cfg_writes: Sequence[tuple[int, int, int]] = ()) -> RunResult:
    """Run the cocotb bench on ``design`` under ``spec``; returns the runner's RunResult
    whose ``result`` is the one point's statistics."""
    points, run = run_rtl_points(design, [spec], sim=sim, waves=waves, cfg_writes=cfg_writes)
    return dataclasses.replace(run, result=points[0])
