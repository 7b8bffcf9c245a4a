"""The router's and the Clos's parameter objects: errors, derived values, and everyone following a change."""

import dataclasses

import pytest
from amaranth.back import rtlil

from supernode.fabric.network.model import ModelClosParams, RouterModel
from supernode.fabric.network.traffic import TrafficSpec
from supernode.rtl.clos_params import ClosParams
from supernode.rtl.errors import UserError
from supernode.rtl.router import Router
from supernode.rtl.router_params import RouterParams
from supernode.sim.formal.router import RouterHarness
from supernode.sim.router.common import Design, run_amaranth, run_model_for
from supernode.cli import main


@pytest.mark.parametrize("kwargs, message", [
    (dict(packet_id_width=0), "packet_id_width must be an integer from 1 to 32, not 0"),
    (dict(stats="no"), "stats must be True or False, not 'no'"),
    (dict(ports=3, spread=(0, 3)),
     "spread must be empty or at least two distinct output ports from 0 to 2, not (0, 3)"),
])
def test_errors_are_user_errors_naming_the_value(kwargs, message):
    with pytest.raises(UserError) as info:
        RouterParams(**kwargs)
    assert str(info.value) == message


def test_derived_values():
    p = RouterParams(ports=5, vcs=3, voq=True, destinations=9)
    assert (p.port_bits, p.vc_bits, p.dest_bits) == (3, 2, 4)
    assert p.routes == tuple(d % 5 for d in range(9))
    assert p.queue_count == 15 and p.queues[7] == (1, 2) and p.queue_of(1, 2) == 7
    assert RouterParams(vcs=3).queues == ((0, None), (1, None), (2, None))
    assert p.entry_layout.size == p.flit_layout.size + 3
    assert p.flit_layout["pkt"].width == p.packet_id_width == 16
    assert (p.latency, p.credit_round_trip) == (RouterParams.HOP_LATENCY,
                                                RouterParams.CREDIT_ROUND_TRIP)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.ports = 8


def test_clos_params_derive_every_router():
    c = ClosParams(endpoints_per_leaf=3, leaves=4, spines=2, up_routing="balanced", vcs=1)
    assert [lp.ports for lp in c.leaf_params] == [5] * 4
    assert c.leaf_params[0].spread == (3, 4) and c.leaf_params[0].vcs == 1
    assert c.spine_params[0].routes[7] == 2
    assert c.zero_load_latency(0, 11, 4) == 3 * c.leaf_params[0].latency + 3
    # The model's Clos takes its routers' radix from its router parameter class.
    assert ModelClosParams(endpoints_per_leaf=24, leaves=48, spines=24).leaf_params[0].ports \
        == 48
    with pytest.raises(UserError, match="leaves must be an integer from 2 to 16, not 48"):
        ClosParams(endpoints_per_leaf=8, leaves=48, spines=8)


class _NarrowIdHarness(RouterHarness):
    """The router proof harness on a router with 4-bit packet ids."""

    def _router_params(self):
        return dataclasses.replace(super()._router_params(), packet_id_width=4)


def test_a_narrower_packet_id_is_followed_everywhere(tmp_path):
    """Change one width in the parameter object: the RTL's flits, the bench's and the models'
    packet ids (which wrap around at 16 here, with 40 packets per source), the compiled
    engine, the formal harness and the CLI's Verilog all follow it."""
    narrow = dataclasses.replace(RouterParams(ports=4, vcs=1, buffer_depth=2),
                                 packet_id_width=4)
    router = Router(narrow)
    assert len(router.inp[0].payload.pkt) == 4
    rtlil.convert(router)
    assert RouterModel(narrow).params.packet_id_mask == 15

    design = Design("router", narrow.as_dict())
    spec = TrafficSpec(pattern="uniform", load=0.6, packet_length=2, packets_per_source=40,
                       seed=3)
    box = []
    rtl = run_amaranth(design, spec, endpoints=box)
    assert rtl["packets_delivered"] == 160 and box[0].next_pkt == [40 % 16] * 4
    assert run_model_for(design, spec, model="python") == rtl
    assert run_model_for(design, spec, model="compiled") == rtl

    harness = _NarrowIdHarness(ports=2, vcs=1, buffer_depth=1)
    assert harness.router_params.packet_id_width == 4
    il = rtlil.convert(harness.top(), name="top", platform="formal", ports=[])
    # The harness's own model of the input queues carries the narrower flits too.
    assert "wire width 4 \\queue_0_0_0.flit.pkt" in il and \
        "wire width 4 \\inp__0__payload.pkt" in il

    out = tmp_path / "router.v"
    assert main(["router", "export", "--ports", "4", "--packet-id-width", "4",
                 "--out", str(out)]) == 0
    wide = tmp_path / "wide.v"
    assert main(["router", "export", "--ports", "4", "--out", str(wide)]) == 0
    flit_bits = lambda path: int(                                       # noqa: E731
        next(line for line in path.read_text().splitlines()
             if "inp__0__payload" in line and "input" in line).split("[")[1].split(":")[0])
    assert flit_bits(wide) - flit_bits(out) == 12
