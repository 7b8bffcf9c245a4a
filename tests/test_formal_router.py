"""Formal proofs of the VC router: they pass by k-induction, and dropping an assumption fails."""

import pytest

from supernode.sim.formal import progress
from supernode.sim.formal.router import DROPPABLE, FAULTS, RouterHarness
from supernode.sim.formal.runner import run_formal


def test_four_port_two_vc_router_is_proved():
    """The router's default allocator: separable, of two iterations."""
    harness = RouterHarness(ports=4, vcs=2, buffer_depth=2)
    assert harness.router_params.separable_iterations == 2
    result = run_formal(harness)
    assert result.status == "pass", result.to_dict()
    assert result.mode == "prove"
    for prop in ("out 0 vc 0: credit count within 0..depth",
                 "out 3 vc 1: credits conserved (credit + downstream + link)",
                 "in 2 vc 1: input buffer never overflows",
                 "in 1 to out 2: no flit is created",
                 "out 2 vc 0: packets never interleave",
                 "allocator: at most one input per output 3",
                 "allocator: at most one output per input 0",
                 "output arbiter 1: requester 3 is served within 3 moves of the priority",
                 "input arbiter 2: requester 1 is served within 1 moves of the priority",
                 "out 1 vc 1: the claimant's queue head is a head flit for it",
                 "out 3 vc 0: only the claimant's head flit takes a claimed VC",
                 "out 2 vc 0: input 3 waits exactly while its head flit finds the VC held or "
                 "out of credits",
                 "claim arbiter 3 vc 1: requester 2 is served within 3 moves of the priority",
                 "input arbiter 3 (iteration 2): picks only a queue whose input and output "
                 "are unmatched",
                 "input arbiter 1 (iteration 2): the pointer moves past the grant exactly "
                 "when it is used",
                 "output arbiter 2 (iteration 2): requester 0 is served within 3 moves of the "
                 "priority"):
        assert prop in result.asserts, prop
    assert set(result.covers) == {
        "input 0 vc 0 buffer full", "output 0 vc 0 out of credits",
        "output 0 vc 1 held by an open packet", "back-to-back flits on output 0",
        "a multi-flit packet completes on output 0", "two inputs contend for output 0",
        "a head flit claims output 0 vc 1 while it is held",
        "an output is matched in a later separable iteration"}
    assert all(result.covers.values()), result.covers


@pytest.mark.parametrize("drop, broken", [
    # Sending without a credit breaks the credit balance at the input, then overflows it.
    ("input_credit", ("credits conserved", "input buffer never overflows")),
    pytest.param("packet_framing", ("a body flit at the head follows its head",),
                 marks=pytest.mark.slow),
])
def test_dropping_an_assumption_gives_a_counterexample(drop, broken):
    result = run_formal(RouterHarness(drop=drop), mode="bmc", depth=4, cover=False,
                        reuse=False)
    assert result.status == "fail"
    assert any(name.startswith("in ") and any(b in name for b in broken)
               for name in result.failed), result.failed
    assert result.trace.exists() and result.trace.suffix == ".vcd"


@pytest.mark.slow
@pytest.mark.parametrize("params", [
    {"ports": 2, "vcs": 1, "buffer_depth": 2},
    {"ports": 3, "vcs": 2, "buffer_depth": 3},
    {"ports": 4, "vcs": 2, "buffer_depth": 4},
    {"ports": 4, "vcs": 2, "buffer_depth": 2},
], ids=["2p1v", "3p2v-d3", "4p2v-d4", "4p2v"])
def test_other_router_shapes_are_proved(params):
    # The separable allocator of one iteration (the default suite proves it on 2 ports).
    result = run_formal(RouterHarness(**params, separable_iterations=1))
    assert result.status == "pass", result.to_dict()


def test_bad_parameters_are_refused():
    assert DROPPABLE == ("input_credit", "packet_framing", "credit_return")
    assert FAULTS == ("frozen_grant_pointer", "accept_all", "no_claims", "rematch")
    with pytest.raises(ValueError, match="drop must be None or one of input_credit, "
                                         "packet_framing, credit_return, not 'x'"):
        RouterHarness(drop="x")
    with pytest.raises(ValueError, match="ports must be an integer from 2 to 16, not 1"):
        RouterHarness(ports=1)


def test_a_job_that_runs_out_of_time_is_unknown_not_pass():
    result = run_formal(RouterHarness(), cover=False, timeout_s=2, reuse=False)
    assert result.status == "unknown"
    assert "ran out of its 2 s" in result.detail


# -- iSLIP and virtual output queues -------------------------------------------------------

ISLIP_COVERS = {
    "input 0 vc 0 buffer full", "output 0 vc 0 out of credits",
    "output 0 vc 1 held by an open packet", "back-to-back flits on output 0",
    "a multi-flit packet completes on output 0", "two inputs contend for output 0",
    "an input is matched in a later iSLIP iteration",
    "input 0 vc 0 has packets open at two outputs (VOQ)",
    "a head flit claims output 0 vc 1 while it is held"}


def test_islip_with_virtual_output_queues_is_proved():
    # 3 ports keep the default suite in its time; 4 ports (1 and 2 iterations) are `slow`.
    result = run_formal(RouterHarness(ports=3, vcs=2, buffer_depth=2, allocator="islip",
                                      islip_iterations=2, voq=True))
    assert result.status == "pass", result.to_dict()
    assert result.mode == "prove" and result.depth == 2
    for prop in ("allocator: at most one input per output 2",
                 "allocator: at most one output per input 1",
                 "allocator: input 2 sends an eligible queue",
                 "iSLIP matches input 0 to output 2 only on a request",
                 "iSLIP input 1 accepts only a grant it was given",
                 "iSLIP grant arbiter 2: the pointer moves past the grant exactly when it is used",
                 "iSLIP grant arbiter 2: requester 1 is served within 2 moves of the priority",
                 "iSLIP accept arbiter 0: requester 2 is served within 2 moves of the priority",
                 "iSLIP queue arbiter 1: requester 5 is served within 5 moves of the priority",
                 "in 1 vc 1 for out 2: a virtual output queue holds flits for its output only",
                 "in 1 vc 1 for out 2: an empty queue's packet is open downstream",
                 "in 2 vc 0: credits conserved (upstream + buffer + returning)",
                 "out 1 vc 1: credits conserved (credit + downstream + link)",
                 "in 2 to out 0: no flit is created",
                 "out 2 vc 0: packets never interleave",
                 "out 2 vc 1: the claimant's queue head is a head flit for it"):
        assert prop in result.asserts, prop
    assert set(result.covers) == ISLIP_COVERS
    assert all(result.covers.values()), result.covers


@pytest.mark.slow
@pytest.mark.parametrize("params", [
    {"allocator": "islip", "islip_iterations": 1, "voq": False},
    {"allocator": "islip", "islip_iterations": 2, "voq": False},
    {"allocator": "islip", "islip_iterations": 1, "voq": True},
    {"allocator": "islip", "islip_iterations": 2, "voq": True},
    {"allocator": "separable", "separable_iterations": 1, "voq": True},
    {"allocator": "islip", "islip_iterations": 3, "voq": True, "ports": 3, "buffer_depth": 3},
], ids=["islip1", "islip2", "islip1-voq", "islip2-voq", "separable1-voq", "3p-islip3-voq-d3"])
def test_other_islip_and_voq_routers_are_proved(params):
    result = run_formal(RouterHarness(**{"ports": 4, "vcs": 2, "buffer_depth": 2, **params}))
    assert result.status == "pass", result.to_dict()


@pytest.mark.parametrize("params, depth, broken", [
    # iSLIP's grant pointer must move past an accepted grant; frozen, it starves inputs.
    ({"allocator": "islip", "fault": "frozen_grant_pointer"}, 3,
     "the pointer moves past the grant exactly when it is used"),
    # An input that accepts every grant is matched to two outputs at once.
    ({"allocator": "islip", "fault": "accept_all"}, 3, "allocator: at most one output per input"),
    # With virtual output queues, sending without a credit breaks the credit balance.
    ({"allocator": "islip", "voq": True, "drop": "input_credit"}, 4,
     "credits conserved (upstream + buffer + returning)"),
], ids=["frozen-grant-pointer", "accept-all", "voq-no-credit"])
def test_broken_islip_and_voq_give_a_counterexample(params, depth, broken):
    result = run_formal(RouterHarness(ports=2, **params), mode="bmc", depth=depth, cover=False,
                        reuse=False)
    assert result.status == "fail"
    assert any(broken in name for name in result.failed), result.failed
    assert result.trace.exists() and result.trace.suffix == ".vcd"


def test_a_fault_needs_the_islip_allocator():
    with pytest.raises(ValueError, match="fault 'accept_all' is a fault of the iSLIP "
                                         "allocator, not of 'separable'"):
        RouterHarness(fault="accept_all")
    # Claims belong to the router, not to an allocator: no_claims breaks either.
    for allocator in ("separable", "islip"):
        assert RouterHarness(allocator=allocator, fault="no_claims").params["fault"] == \
            "no_claims"
    with pytest.raises(ValueError, match="allocator must be one of separable, islip"):
        RouterHarness(allocator="wavefront")


# -- Separable allocator of more iterations ------------------------------------------------

def test_one_iteration_separable_router_is_proved():
    """The allocator of one iteration, still an option: R1 with one set of arbiters (the
    default router, of two, is proved on 4 ports above; one iteration on 4 ports is
    `slow`)."""
    result = run_formal(RouterHarness(ports=2, vcs=2, buffer_depth=2, separable_iterations=1))
    assert result.status == "pass", result.to_dict()
    assert result.mode == "prove"
    for prop in ("allocator: at most one input per output 1",
                 "allocator: at most one output per input 1",
                 "allocator: input 0 sends an eligible queue",
                 "input arbiter 1: the pointer moves past the grant exactly when it is used",
                 "output arbiter 0: requester 1 is served within 1 moves of the priority",
                 "out 1 vc 1: packets never interleave",
                 "out 0 vc 0: only the claimant's head flit takes a claimed VC"):
        assert prop in result.asserts, prop
    assert not any("(iteration 2)" in name for name in result.asserts)
    assert "an output is matched in a later separable iteration" not in result.covers
    assert all(result.covers.values()), result.covers


@pytest.mark.slow
@pytest.mark.parametrize("ports", [2, 3])
def test_smaller_two_iteration_separable_routers_are_proved(ports):
    result = run_formal(RouterHarness(ports=ports, vcs=2, buffer_depth=2,
                                      separable_iterations=2))
    assert result.status == "pass", result.to_dict()
    assert result.covers["an output is matched in a later separable iteration"]
    assert all(result.covers.values()), result.covers


def test_a_later_iteration_that_rematches_an_output_gives_a_counterexample():
    """A second iteration that lets inputs ask for outputs the first one matched grants an
    output twice."""
    result = run_formal(RouterHarness(ports=2, vcs=2, separable_iterations=2,
                                      fault="rematch"), mode="bmc", depth=4, cover=False,
                        reuse=False)
    assert result.status == "fail"
    assert any("picks only a queue whose input and output are unmatched" in name
               or "at most one input per output" in name for name in result.failed), \
        result.failed


def test_rematch_needs_a_later_separable_iteration():
    with pytest.raises(ValueError, match="fault 'rematch' breaks a later separable "
                                         "iteration: it needs separable_iterations of 2 or "
                                         "more, not 1"):
        RouterHarness(fault="rematch", separable_iterations=1)
    with pytest.raises(ValueError, match="fault 'rematch' is a fault of the separable "
                                         "allocator, not of 'islip'"):
        RouterHarness(allocator="islip", fault="rematch", separable_iterations=2)
    # The progress measures follow the router as built, not a broken allocator.
    with pytest.raises(ValueError, match="body_bound 'auto' takes the bound of the progress "
                                         "measures"):
        RouterHarness(ports=2, vcs=2, separable_iterations=2, fault="rematch", liveness={
            "credit_bound": 0, "send_bound": 0, "packet_length": 2, "body_bound": "auto",
            "head_bound": None})


def test_the_default_allocator_flits_leave_in_bounded_time_with_two_vcs():
    """The exact bounds of the router's default allocator (two iterations) on 2 ports, 2
    VCs and buffers of 1 flit, with everything at once and packets of up to 2 flits: a body
    flit waits at most 2 cycles at its queue head and a head flit 9, and both are reached.
    The induction of head bound + 3 cycles does not close; one cycle more does."""
    live = _live(2, 9)
    harness = RouterHarness(ports=2, vcs=2, buffer_depth=1, liveness=live)
    assert harness.router_params.separable_iterations == 2
    result = run_formal(harness, depth=13)
    assert result.status == "pass", result.to_dict()
    assert result.mode == "prove" and result.depth == 13
    for prop in ("in 1 vc 1: a body flit at the queue head leaves within 2 cycles",
                 "in 0 vc 0: a head flit at the queue head leaves within 9 cycles",
                 "in 1 vc 0: an accepted flit leaves its queue within 10 cycles",
                 "input arbiter 1 (iteration 2): picks only a queue whose input and output "
                 "are unmatched",
                 "claim arbiter 0 vc 1: requester 1 is served within 1 moves of the priority"):
        assert prop in result.asserts, prop
    assert result.covers["a body flit waits 2 cycles at a queue head"]
    assert result.covers["a head flit waits 9 cycles at a queue head"]
    assert result.covers["an output is matched in a later separable iteration"]


@pytest.mark.parametrize("body, head, broken", [
    (1, 9, "a body flit at the queue head leaves within 1 cycles"),
    (2, 8, "a head flit at the queue head leaves within 8 cycles"),
], ids=["body", "head"])
def test_the_default_allocator_bounds_one_cycle_short_fail(body, head, broken):
    result = run_formal(RouterHarness(ports=2, vcs=2, buffer_depth=1, liveness=_live(body, head)),
                        mode="bmc", depth=13, cover=False, reuse=False)
    assert result.status == "fail"
    assert any(broken in name for name in result.failed), result.failed


@pytest.mark.slow
def test_two_iteration_separable_flits_leave_in_bounded_time():
    """The exact bounds of 2 ports, 2 VCs with two iterations (both reached): a body flit
    3 cycles and a head flit 9, one fewer than with one iteration (4 and 10)."""
    live = _live(3, 9)
    result = run_formal(RouterHarness(ports=2, vcs=2, separable_iterations=2, liveness=live))
    assert result.status == "pass", result.to_dict()
    assert result.mode == "prove" and result.depth == 12
    for prop in ("in 1 vc 1: a body flit at the queue head leaves within 3 cycles",
                 "in 1 vc 1: a head flit at the queue head leaves within 9 cycles",
                 "claim arbiter 0 vc 1: requester 1 is served within 1 moves of the priority"):
        assert prop in result.asserts, prop
    assert result.covers["a body flit waits 3 cycles at a queue head"]
    assert result.covers["a head flit waits 9 cycles at a queue head"]


# -- Bounded liveness ----------------------------------------------------------------------

def _live(body, head, *, length=2, slack=0):
    return {"credit_bound": slack, "send_bound": slack, "packet_length": length,
            "body_bound": body, "head_bound": head}


@pytest.mark.parametrize("live", [
    # Credits back and flits sent within a cycle of being possible, packets of 3 flits.
    _live(2, 9, length=3, slack=1),
    # Everything at once, packets of 2 flits.
    pytest.param(_live(1, 4), marks=pytest.mark.slow),
], ids=["slack1-len3", "slack0-len2"])
def test_two_port_router_flits_leave_their_queue_in_bounded_time(live):
    result = run_formal(RouterHarness(ports=2, vcs=1, liveness=live))
    body, head = live["body_bound"], live["head_bound"]
    assert result.status == "pass", result.to_dict()
    assert result.mode == "prove" and result.depth == head + 3
    for prop in (f"in 0 vc 0: a body flit at the queue head leaves within {body} cycles",
                 f"in 1 vc 0: a head flit at the queue head leaves within {head} cycles",
                 f"in 1 vc 0: an accepted flit leaves its queue within {2 * (head + 1)} cycles",
                 "in 1 vc 0: buffered flits hold their packet position",
                 "out 0 vc 0: a packet's flits leave in order",
                 # The router's default allocator, of two iterations: with 1 VC the second
                 # never adds a match, so the bounds are those of one iteration.
                 "one queue per input: no output is matched in a later separable iteration"):
        assert prop in result.asserts, prop
    # The bounds are reached, so they are the exact worst cases.
    assert result.covers[f"a body flit waits {body} cycles at a queue head"]
    assert result.covers[f"a head flit waits {head} cycles at a queue head"]


@pytest.mark.slow
def test_head_and_body_flits_leave_in_bounded_time_with_two_vcs():
    # With claims on held output VCs a head flit cannot lose the freed VC for ever. The
    # exact bounds; the default suite proves looser ones on 4 ports by progress measures.
    result = run_formal(RouterHarness(ports=2, vcs=2, separable_iterations=1,
                                      liveness=_live(4, 10)))
    assert result.status == "pass", result.to_dict()
    assert result.mode == "prove" and result.depth == 13
    for prop in ("in 1 vc 1: a body flit at the queue head leaves within 4 cycles",
                 "in 1 vc 1: a head flit at the queue head leaves within 10 cycles",
                 "out 0 vc 1: the claimant's queue head is a head flit for it",
                 "claim arbiter 0 vc 1: requester 1 is served within 1 moves of the priority"):
        assert prop in result.asserts, prop
    assert result.covers["a body flit waits 4 cycles at a queue head"]
    assert result.covers["a head flit waits 10 cycles at a queue head"]
    assert result.covers["a head flit claims output 0 vc 1 while it is held"]


@pytest.mark.slow
def test_a_two_vc_head_bound_one_cycle_short_fails():
    result = run_formal(RouterHarness(ports=2, vcs=2, separable_iterations=1,
                                      liveness=_live(4, 9)), mode="bmc", depth=14,
                        cover=False, reuse=False)
    assert result.status == "fail"
    assert any("a head flit at the queue head leaves within 9 cycles" in name
               for name in result.failed), result.failed


def test_without_claims_a_head_flit_starves():
    """The router before claims (fault ``no_claims``): input 1's head flit on VC 1 for
    output 0 is eligible only in the cycles when input 0's two-flit packets on VC 1 leave
    that output VC free; in each such cycle output 0's round-robin pointer is back at
    input 0, because input 1's VC 0 flits to output 0 used input 1's turn. The output
    arbiter is fair to inputs, not to their VCs."""
    result = run_formal(RouterHarness(ports=2, vcs=2, separable_iterations=1, fault="no_claims",
                                      liveness=_live(4, 10)),
                        mode="bmc", depth=16, cover=False, reuse=False)
    assert result.status == "fail"
    assert any("a head flit at the queue head leaves within 10 cycles" in name
               for name in result.failed), result.failed
    assert result.trace.exists() and result.trace.suffix == ".vcd"


@pytest.mark.slow
def test_three_port_two_vc_body_flits_leave_in_bounded_time():
    # The exact body bound (reached); 8 does not close by induction of depth 11, 9 needs 14.
    result = run_formal(RouterHarness(ports=3, vcs=2, separable_iterations=1,
                                      liveness=_live(9, None)), depth=14, timeout_s=1500)
    assert result.status == "pass", result.to_dict()
    assert "in 2 vc 1: a body flit at the queue head leaves within 9 cycles" in result.asserts
    assert result.covers["a body flit waits 9 cycles at a queue head"]


@pytest.mark.slow
def test_four_port_two_vc_body_flits_leave_within_an_upper_bound():
    """The shape of the default safety proofs: 13 closes by induction of depth 16 (about 16
    minutes); the next test shows 13 is reached, so it is the exact worst case. Its cover
    is not run."""
    result = run_formal(RouterHarness(ports=4, vcs=2, separable_iterations=1,
                                      liveness=_live(13, None)), cover=False, timeout_s=6000)
    assert result.status == "pass", result.to_dict()
    assert result.mode == "prove" and result.depth == 16
    assert "in 3 vc 1: a body flit at the queue head leaves within 13 cycles" in result.asserts


@pytest.mark.slow
def test_a_four_port_two_vc_body_bound_one_cycle_short_fails():
    # A body flit waits 13 cycles within 17 from reset (about 22 minutes; 12 holds for the
    # first 16 cycles, which is why the search has to go this deep).
    result = run_formal(RouterHarness(ports=4, vcs=2, separable_iterations=1,
                                      liveness=_live(12, None)), mode="bmc", depth=17,
                        cover=False, reuse=False, timeout_s=6000)
    assert result.status == "fail"
    assert any("a body flit at the queue head leaves within 12 cycles" in name
               for name in result.failed), result.failed


def test_liveness_fails_when_a_downstream_keeps_its_credits():
    result = run_formal(RouterHarness(ports=2, vcs=1, liveness=_live(1, 4), drop="credit_return"),
                        mode="bmc", depth=8, cover=False, reuse=False)
    assert result.status == "fail"
    assert any("a body flit at the queue head leaves within 1 cycles" in name
               for name in result.failed), result.failed
    assert result.trace.exists()


def test_a_head_bound_one_cycle_short_fails():
    result = run_formal(RouterHarness(ports=2, vcs=1, liveness=_live(1, 3)), mode="bmc",
                        depth=10, cover=False, reuse=False)
    assert result.status == "fail"
    assert any("a head flit at the queue head leaves within 3 cycles" in name
               for name in result.failed), result.failed


@pytest.mark.slow
@pytest.mark.parametrize("ports, head", [(3, 7), (4, 10)], ids=["3p1v", "4p1v"])
def test_larger_one_vc_routers_flits_leave_in_bounded_time(ports, head):
    result = run_formal(RouterHarness(ports=ports, vcs=1, liveness=_live(1, head)))
    assert result.status == "pass", result.to_dict()
    assert f"in {ports - 1} vc 0: a head flit at the queue head leaves within {head} cycles" \
        in result.asserts
    assert "out 0: 1 VC, never claimed" in result.asserts
    assert "one queue per input: no output is matched in a later separable iteration" in \
        result.asserts
    assert result.covers[f"a head flit waits {head} cycles at a queue head"]


@pytest.mark.slow
def test_islip_router_with_two_vcs_flits_leave_in_bounded_time():
    # Without claims a body flit waited past 4 cycles and no bound was found; with them both
    # bounds hold and are reached (a head flit waits 15 cycles within 17 from reset).
    result = run_formal(RouterHarness(ports=2, vcs=2, allocator="islip", liveness=_live(6, 15)))
    assert result.status == "pass", result.to_dict()
    assert result.mode == "prove" and result.depth == 18
    assert result.covers["a body flit waits 6 cycles at a queue head"]
    assert result.covers["a head flit waits 15 cycles at a queue head"]


@pytest.mark.slow
def test_islip_router_flits_leave_in_bounded_time():
    result = run_formal(RouterHarness(ports=2, vcs=1, allocator="islip", liveness=_live(1, 4)))
    assert result.status == "pass", result.to_dict()
    assert result.covers["a head flit waits 4 cycles at a queue head"]


@pytest.mark.slow
@pytest.mark.parametrize("allocator, head", [("islip", 5), ("separable", 8)])
def test_voq_router_flits_leave_within_an_upper_bound(allocator, head):
    """Upper bounds: the cover runs of these shapes do not finish within 5 minutes. iSLIP's
    head bound of 5 is reached within 8 cycles from reset; separable: 6 fails from reset and
    7 does not close by induction of depth 10."""
    result = run_formal(RouterHarness(ports=2, vcs=1, voq=True, allocator=allocator,
                                      separable_iterations=1, liveness=_live(1, head)),
                        cover=False)
    assert result.status == "pass", result.to_dict()
    assert result.mode == "prove" and result.depth == head + 3
    assert (f"in 1 vc 0 for out 1: a head flit at the queue head leaves within {head} cycles"
            in result.asserts)


# -- Bounded liveness by progress measures ------------------------------------------------

def _measured(ports, buffer_depth=2, iterations=2, **env):
    live = {"credit_bound": 0, "send_bound": 0, "packet_length": 2, **env,
            "body_bound": "auto", "head_bound": "auto"}
    # The router's default allocator (two iterations) unless asked.
    return RouterHarness(ports=ports, vcs=2, buffer_depth=buffer_depth,
                         separable_iterations=iterations, liveness=live)


# The longest proof of the suite (about 2.5 minutes alone): `slow`, because the 2-port proof
# below checks the same measures, with a slower environment, longer packets and covers.
@pytest.mark.slow
@pytest.mark.parametrize("iterations", [2, 1], ids=["default", "one-iteration"])
def test_four_port_two_vc_router_flits_leave_within_the_bounds_of_its_progress_measures(
        iterations):
    """Head flits too, on the shape of the default safety proofs: each invariant relates
    neighbouring cycles, so an induction of 2 closes whatever the bounds (about 2.5
    minutes; the covers of the measures are reached on 2 ports, below). The arbiters'
    fairness counters are left to the safety proof above."""
    harness = _measured(4, iterations=iterations)
    b = progress.bounds(ports=4, buffer_depth=2, credit_bound=0, send_bound=0,
                        packet_length=2)
    live = harness.params["liveness"]
    assert (live["body_bound"], live["head_bound"]) == (b["body"], b["head"]) == (44, 634)
    result = run_formal(harness, cover=False)
    assert result.status == "pass", result.to_dict()
    assert result.mode == "prove" and result.depth == progress.DEPTH == 2
    for prop in ("in 3 vc 1: a body flit at the queue head leaves within 44 cycles",
                 "in 2 vc 0: a head flit at the queue head leaves within 634 cycles",
                 "in 1 vc 1: an eligible head leaves within 43 cycles of eligibility",
                 "in 0 vc 1: the other VC's eligibility changes at most 9 times",
                 "in 3 vc 0: an exclusive flit waits at most 0 cycles for a credit",
                 "out 2 vc 1: the holder's next flit reaches its queue head within 1 cycles",
                 "out 1 vc 0: a claim on a free VC waits for its exclusive claimant",
                 "in 2 vc 1: each claim given to another input moves the claim pointer "
                 "closer to a waiting head flit",
                 "in 0 vc 0: a head flit waits at most 136 cycles per claim given to another "
                 "input",
                 # Queues are FIFOs of depth 2: every flit accepted leaves within 2 x 635.
                 "in 1 vc 0: the flit at queue position 1 is at most 0 head turns older than "
                 "the head's wait",
                 "in 2 vc 1: an accepted flit leaves its queue within 1270 cycles"):
        assert prop in result.asserts, prop


@pytest.mark.parametrize("iterations", [
    2,
    # The option of one iteration: the same measures on a router with one stage fewer;
    # its safety stays in the default suite (2 ports), its measures on 4 ports are slow too.
    pytest.param(1, marks=pytest.mark.slow),
], ids=["default", "one-iteration"])
def test_progress_measures_hold_with_a_slow_environment_and_their_cases_are_reachable(
        iterations):
    # Credits back within 3 cycles, flits sent within 2, packets of up to 3 flits; the
    # same bounds for one and two iterations (a later iteration matches only outputs
    # nobody asked for in the first, whose arbiters the measures follow).
    result = run_formal(_measured(2, iterations=iterations, credit_bound=2, send_bound=1,
                                  packet_length=3))
    assert result.status == "pass", result.to_dict()
    assert result.depth == progress.DEPTH
    assert "in 1 vc 1: a head flit at the queue head leaves within 194 cycles" in \
        result.asserts
    assert all(result.covers.values()), result.covers
    for cover in ("a waiting head flit sees a claim given to another input",
                  "the other VC's eligibility changes while it is preferred over an eligible "
                  "head",
                  "out 0 vc 0 is held while its packet's next flit is not yet at its queue "
                  "head"):
        assert cover in result.covers, cover
    # The bounds are upper bounds, not reached, so no cover asks for them.
    assert not any("cycles at a queue head" in name for name in result.covers)
    # With two iterations the second one does match outputs inside the proved measures.
    assert ("an output is matched in a later separable iteration" in result.covers) == \
        (iterations == 2)


@pytest.mark.slow
@pytest.mark.parametrize("env", [
    {"buffer_depth": 1, "credit_bound": 1},
    {"buffer_depth": 3, "send_bound": 3, "packet_length": 4},
], ids=["depth1", "depth3-len4"])
def test_progress_measures_hold_for_other_buffer_depths(env):
    result = run_formal(_measured(2, **env), cover=False)
    assert result.status == "pass", result.to_dict()
    assert result.depth == progress.DEPTH


@pytest.mark.slow
def test_three_port_two_vc_router_flits_leave_within_the_bounds_of_its_progress_measures():
    result = run_formal(_measured(3, credit_bound=1, send_bound=1, packet_length=3),
                        cover=False)
    assert result.status == "pass", result.to_dict()


def test_progress_measures_fail_when_a_downstream_keeps_its_credits():
    result = run_formal(RouterHarness(ports=2, vcs=2, separable_iterations=1,
                                      drop="credit_return", liveness={
        "credit_bound": 0, "send_bound": 0, "packet_length": 2, "body_bound": "auto",
        "head_bound": "auto"}), mode="bmc", depth=6, cover=False, reuse=False)
    assert result.status == "fail"
    # An exclusive flit (here a body flit) stays without a credit past its measure.
    assert any(": an exclusive flit" in name for name in result.failed), result.failed
    assert result.trace.exists()


def test_auto_bounds_need_the_shape_the_measures_cover():
    one = {"separable_iterations": 1}
    for kwargs in ({"vcs": 1, **one}, {"vcs": 3, **one}, {"voq": True, **one},
                   {"allocator": "islip"}, {"fault": "no_claims", **one}):
        with pytest.raises(ValueError, match="'auto' takes the bound of the progress "
                                             "measures"):
            RouterHarness(liveness=_live("auto", None), **kwargs)
    # Tighter bounds than the measures' fall back to an induction longer than the bound.
    assert RouterHarness(ports=2, vcs=2, liveness=_live(4, 10), **one).default_depth == 13
    assert RouterHarness(ports=2, vcs=2, liveness=_live(14, None), **one).default_depth == 2
    # The router's default of two iterations takes the same measures.
    assert RouterHarness(ports=2, vcs=2, liveness=_live("auto", "auto")).default_depth == 2
    assert RouterHarness(ports=2, vcs=2, liveness=_live(14, None)).default_depth == 2
    assert RouterHarness(ports=2, vcs=2, liveness=_live(4, 10)).default_depth == 13


def test_bad_liveness_bounds_are_refused():
    with pytest.raises(ValueError, match="liveness must be None or a dict of credit_bound, "
                                         "send_bound, packet_length, body_bound, head_bound"):
        RouterHarness(liveness={"body_bound": 1})
    with pytest.raises(ValueError, match="drop 'credit_return' drops a liveness assumption"):
        RouterHarness(drop="credit_return")
