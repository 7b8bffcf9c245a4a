"""Two-tier folded Clos (leaf-spine) fabric built from the switch router."""

from __future__ import annotations

from typing import Any

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .clos_params import ClosParams, UP_ROUTINGS
from .router import Router, link_signature

__all__ = ["Clos", "ClosParams", "UP_ROUTINGS"]


class Clos(wiring.Component):
    """Two-tier folded Clos of :class:`~supernode.rtl.router.Router`: the shape, the routing tables
    and the wiring are :class:`~supernode.rtl.clos_params.ClosParams`; this builds and joins them.

    Parameters
    ----------
    params : ClosParams
        The fabric's parameters; or, instead, its fields as keywords.

    Members
    -------
    inp : In(link_signature).array(endpoints)
        Injection links of the endpoints.
    outp : Out(link_signature).array(endpoints)
        Ejection links of the endpoints.

    The routers are submodules ``leaf<k>`` and ``spine<k>`` (their counters, with
    ``stats``, are read from them).
    """

    def __init__(self, params: ClosParams | None = None, /, **options: Any) -> None:
        if params is None:
            params = ClosParams.from_options(**options)
        elif options:
            raise TypeError("give the Clos a ClosParams or its fields as keywords, not both")
        elif not isinstance(params, ClosParams):
            raise TypeError(f"params must be a ClosParams, not {params!r}")
        self._params = params
        link = link_signature(params.flit_layout, params.vcs)
        super().__init__({
            "inp": In(link).array(params.endpoints),
            "outp": Out(link).array(params.endpoints),
        })

    params = property(lambda self: self._params, doc="The fabric's ClosParams.")
    endpoints = property(lambda self: self._params.endpoints, doc="Endpoints of the fabric.")
    vcs = property(lambda self: self._params.vcs, doc="Virtual channels per link.")
    flit_layout = property(lambda self: self._params.flit_layout, doc="Layout of a flit.")

    def elaborate(self, platform: object) -> Module:
        m = Module()
        p = self._params
        leaves = [Router(lp) for lp in p.leaf_params]
        spines = [Router(sp) for sp in p.spine_params]
        for k, r in enumerate(leaves):
            m.submodules[f"leaf{k}"] = r
        for k, r in enumerate(spines):
            m.submodules[f"spine{k}"] = r
        for leaf, spine, lp, sp in p.wires:
            wiring.connect(m, up=leaves[leaf].outp[lp], down_in=spines[spine].inp[sp])
            wiring.connect(m, down=spines[spine].outp[sp], up_in=leaves[leaf].inp[lp])
        for e in range(p.endpoints):
            leaf, port = p.endpoint_port(e)
            wiring.connect(m, inject=wiring.flipped(self.inp[e]), leaf_in=leaves[leaf].inp[port])
            wiring.connect(m, leaf_out=leaves[leaf].outp[port], eject=wiring.flipped(self.outp[e]))
        return m
