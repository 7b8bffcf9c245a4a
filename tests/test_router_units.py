"""The router's input and output units: their parameters, and the router built from them."""

import pytest
from amaranth.hdl import Fragment

from supernode.rtl.errors import UserError
from supernode.rtl.router import Router, RouterParams
from supernode.rtl.router_units import InputUnit, OutputUnit
from supernode.sim.formal.router import NoClaimsOutputUnit, NoClaimsRouter
from supernode.sim.formal.routing import SpreadSkippingInputUnit, SpreadSkippingRouter


@pytest.mark.parametrize("unit", [InputUnit, OutputUnit])
@pytest.mark.parametrize("index", [-1, 4, True, 1.0])
def test_a_unit_refuses_an_index_that_is_not_a_port(unit, index):
    with pytest.raises(UserError, match=rf"^index must be an integer from 0 to 3, not {index!r}$"):
        unit(RouterParams(ports=4), index=index)


@pytest.mark.parametrize("unit", [InputUnit, OutputUnit])
def test_a_unit_needs_router_params(unit):
    with pytest.raises(TypeError, match=r"^params must be a RouterParams, not \{'ports': 4\}$"):
        unit({"ports": 4}, index=0)


def test_the_router_publishes_its_units_state_and_claim_arbiters():
    """What the proofs read through ``Router.state`` and ``Router.arbiters`` is the units'
    own signals and arbiters, not copies."""
    router = Router(ports=3, vcs=2, voq=True)
    ins, outs = router.input_units, router.output_units
    assert [unit.index for unit in ins] == [unit.index for unit in outs] == [0, 1, 2]
    assert router.buffers == [unit.buffer for unit in ins]
    assert router.state.count[2][5] is ins[2].state.count[5]
    assert router.state.credit[1][1] is outs[1].state.credit[1]
    assert router.state.match[0][2].value is ins[0].state.match
    assert router.arbiters["claim_2_1"] is outs[2].claim_arbiters[1]
    assert len(router.claim_arbiters) == 3 * 2
    one_vc = Router(ports=3, vcs=1)
    assert one_vc.claim_arbiters == {} and one_vc.output_units[0].claim_arbiters == []
    for built in (router, one_vc):
        Fragment.get(built, None)   # built, so that it raises no unused-design warning


def test_proof_variants_are_unit_classes_chosen_by_the_router():
    """The mutants of the proofs change one unit class of the router, through a subclass."""
    params = RouterParams(ports=3, vcs=2, spread=(1, 2))
    spread = SpreadSkippingRouter(params)
    assert all(type(unit) is SpreadSkippingInputUnit for unit in spread.input_units)
    assert all(type(unit) is OutputUnit for unit in spread.output_units)
    claims = NoClaimsRouter(params)
    assert all(type(unit) is NoClaimsOutputUnit for unit in claims.output_units)
    assert all(type(unit) is InputUnit for unit in claims.input_units)
    for router in (spread, claims):
        Fragment.get(router, None)
