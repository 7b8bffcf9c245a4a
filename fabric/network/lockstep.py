"""One lock-step loop that drives a network's endpoints against any backend: the model, Amaranth's simulator or cocotb."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

from .checks import DeadlockError
from .flit import Flit

if TYPE_CHECKING:
    from .model import NetworkModel

__all__ = ["LockStep", "ModelBackend", "Backend"]


class Endpoints(Protocol):
    """What :class:`LockStep` runs:
    :class:`~supernode.fabric.network.traffic.Endpoints` has it."""

    cycle: int
    done: bool

    def step(self, ejected: Sequence[Flit | None], credits_in: Sequence[int]
             ) -> tuple[list[Flit | None], list[int]]: ...

    def finish(self) -> None: ...


class Backend(Protocol):
    """What :class:`LockStep` drives: a network seen from its endpoint links."""

    def observe(self) -> tuple[Sequence[Flit | None], Sequence[int]]:
        """``(flit at each ejection link, credit pulses at each injection link)``."""
        ...

    def drive(self, inject: Sequence[Flit | None], credits: Sequence[int],
              cfg: tuple[int, int] | None = None) -> None:
        """This cycle's injected flits, returned credits and routing-table write."""
        ...

    async def tick(self) -> None:
        """Wait for the next cycle."""
        ...


class LockStep:
    """Drives :class:`~supernode.fabric.network.traffic.Endpoints` against a network, one cycle at
    a time, until the run ends; the loop is the same for every backend.

    Each cycle it reads what the network shows at its endpoint links
    (``backend.observe()``: the flit at each ejection link, the credit pulses at each
    injection link), lets the endpoints decide, hands their flits and credits (and any
    routing-table write due this cycle) to ``backend.drive(...)``, and waits for the next
    cycle (``await backend.tick()``). When the endpoints are done it checks that the
    scoreboard has nothing left unmatched.

    A backend has these three methods; :class:`ModelBackend` is the Python model's, and
    :mod:`supernode.sim.router.backends` has the RTL's (cocotb, Amaranth's simulator).

    Parameters
    ----------
    endpoints : Endpoints
        Fresh endpoints for the run.
    max_cycles : int
        The run fails with :class:`DeadlockError` if it has not ended by then.
    cfg_writes : sequence of (cycle, dest, port)
        Routing-table writes into router 0, driven in the given cycles.
    monitors : sequence of callable (cycle, ejected)
        Called every cycle with the flits seen at the ejection links.
    """

    def __init__(self, endpoints: Endpoints, *, max_cycles: int,
                 cfg_writes: Iterable[tuple[int, int, int]] = (),
                 monitors: Iterable[Callable[[int, Sequence[Flit | None]], object]] = ()
                 ) -> None:
        self.endpoints = endpoints
        self.max_cycles = max_cycles
        self.cfg = {c: (d, p) for c, d, p in cfg_writes}
        self.monitors = list(monitors)

    async def run(self, backend: Backend) -> None:
        """The loop; raises :class:`ScoreboardError` or :class:`DeadlockError` on a failure."""
        eps, cfg, monitors = self.endpoints, self.cfg, self.monitors
        while not eps.done:
            t = eps.cycle
            if t >= self.max_cycles:
                raise DeadlockError(f"the run did not end within {self.max_cycles} cycles")
            ejected, credits = backend.observe()
            for monitor in monitors:
                monitor(t, ejected)
            inject, credits_out = eps.step(ejected, credits)
            backend.drive(inject, credits_out, cfg.get(t))
            await backend.tick()
        eps.finish()

    def run_now(self, backend: Backend) -> None:
        """:meth:`run` for a backend whose ``tick`` never waits (the model): the loop
        runs to its end in this call."""
        loop = self.run(backend)
        try:
            loop.send(None)
        except StopIteration:
            return
        loop.close()
        raise RuntimeError(f"{type(backend).__name__}.tick waited; run it under its "
                           f"simulator with 'await LockStep.run(backend)'")


class ModelBackend:
    """The Python network model as a lock-step backend: ``drive`` advances it one cycle.

    Parameters
    ----------
    network : NetworkModel
        A fresh network.
    """

    def __init__(self, network: NetworkModel) -> None:
        self.network = network

    def observe(self) -> tuple[list[Flit | None], list[int]]:
        """``(flit at each ejection link, credit pulses at each injection link)``."""
        return self.network.outputs()

    def drive(self, inject: Sequence[Flit | None], credits: Sequence[int],
              cfg: tuple[int, int] | None = None) -> None:
        """Step the network on the endpoints' drives, then apply a routing-table write
        ``(dest, port)`` to router 0 (the RTL samples it at the same edge)."""
        self.network.step(inject, credits)
        if cfg is not None:
            self.network.routers[0].set_route(*cfg)

    async def tick(self) -> None:
        """The model has advanced in :meth:`drive`; nothing to wait for."""
