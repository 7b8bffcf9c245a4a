"""Round-robin arbiter: the one arbitration primitive of the router's allocators and claims."""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .errors import check_int

__all__ = ["RoundRobinArbiter"]


class RoundRobinArbiter(wiring.Component):
    """Round-robin arbiter over ``n`` requesters.

    The priority is kept as a mask of the requesters at or after the pointer; the lowest
    masked requester wins, or the lowest requester when none is masked. The pointer moves
    just past the grant when ``update`` is asserted with a grant. A ``follow`` arbiter has
    no pointer of its own: it picks with another arbiter's ``mask`` (iSLIP's later
    iterations use the first iteration's pointers) and never moves it.

    Variants for proofs (a frozen pointer, an arbiter that grants every request) are
    subclasses that override :meth:`granted` or :meth:`moves`.

    Parameters
    ----------
    n : int
        Requesters, 1..4096.
    follow : bool
        Pick with the ``mask`` given as an input instead of keeping one.

    Members
    -------
    req : In(n)
        Requests.
    grant : Out(n)
        One-hot grant (zero when nobody requests).
    update : In(1)
        Move the pointer past this cycle's grant (absent with ``follow``).
    mask : Out(n) or In(n)
        The priority mask: the arbiter's own pointer, reset to every requester; with
        ``follow``, the mask it is given.
    """

    def __init__(self, *, n: int, follow: bool = False) -> None:
        check_int("n", n, 1, 4096)
        self._n, self._follow = n, follow
        members = {"req": In(n), "grant": Out(n)}
        if follow:
            members["mask"] = In(n)
        else:
            members["update"] = In(1)
            members["mask"] = Out(n, init=(1 << n) - 1)
        super().__init__(members)

    n = property(lambda self: self._n, doc="Requesters.")
    follow = property(lambda self: self._follow, doc="Picks with another arbiter's mask.")

    def granted(self, choice: Value) -> Value:
        """What the arbiter grants, given its one-hot ``choice``: the choice itself."""
        return choice

    def moves(self, choice: Value) -> Value:
        """When the pointer moves past ``choice``: on ``update`` with a grant."""
        return self.update & choice.any()

    def elaborate(self, platform: object) -> Module:
        m = Module()
        n = self._n
        masked = self.req & self.mask
        pick = Mux(masked.any(), masked, self.req)
        choice = pick & (~pick + 1)
        m.d.comb += self.grant.eq(self.granted(choice))
        if not self._follow:
            with m.If(self.moves(choice)):
                # Bits strictly above the chosen one.
                m.d.sync += self.mask.eq(Cat(*[choice[:k].any() for k in range(n)]))
        return m
