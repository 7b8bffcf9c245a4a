"""``supernode formal``: verdicts as text and JSON, exit status, bad input."""

import json

import pytest

from supernode.cli import main


def test_tile_proof_as_json(capsys):
    assert main(["formal", "tile", "--rows", "2", "--cols", "2", "--no-sums", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "pass"
    assert [job["params"]["consumer"] for job in out["jobs"]] == ["free", "always_ready"]
    assert all(job["mode"] == "prove" and job["status"] == "pass" for job in out["jobs"])


def test_a_failing_proof_exits_1_and_names_the_counterexample(capsys):
    code = main(["formal", "tile", "--consumer", "free", "--fault", "short_fold_interval",
                 "--no-sums", "--no-cover"])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL by k-induction" in out
    assert "FAILED: the double buffer never overwrites a fold not yet drained" in out
    assert "counterexample: " in out and ".vcd" in out and "gtkwave " in out


def test_router_allocator_options_reach_the_proof(capsys):
    code = main(["formal", "router", "--ports", "3", "--allocator", "islip",
                 "--islip-iterations", "2", "--voq", "--fault", "frozen_grant_pointer",
                 "--mode", "bmc", "--depth", "3", "--no-cover", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["status"] == "fail"
    job = out["jobs"][0]
    assert job["params"] == {"ports": 3, "vcs": 2, "buffer_depth": 2, "flit_width": 1,
                             "drop": None, "allocator": "islip", "voq": True,
                             "fault": "frozen_grant_pointer", "islip_iterations": 2}
    assert any("the pointer moves past the grant exactly when it is used" in name
               for name in job["failed"]), job["failed"]


def test_separable_iterations_reach_the_proof(capsys):
    code = main(["formal", "router", "--ports", "2", "--separable-iterations", "2",
                 "--fault", "rematch", "--mode", "bmc", "--depth", "4", "--no-cover", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["jobs"][0]["params"]["separable_iterations"] == 2
    assert code == 1 and out["status"] == "fail"


def test_bmc_with_a_stated_depth(capsys):
    assert main(["formal", "skid", "--mode", "bmc", "--depth", "5", "--no-cover"]) == 0
    assert "PASS by bounded check, depth 5" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["formal", "tile", "--rows", "0"], "rows must be an integer from 1 to 64, not 0"),
    (["formal", "router", "--drop", "nope"], "drop must be None or one of input_credit"),
    (["formal", "tile", "--fault", "nope"], "fault must be None or one of short_fold_interval"),
    (["formal", "router", "--allocator", "wavefront"],
     "allocator must be one of separable, islip, not 'wavefront'"),
    (["formal", "router", "--fault", "accept_all"],
     "fault 'accept_all' is a fault of the iSLIP allocator, not of 'separable'"),
    (["formal", "router", "--vcs", "1", "--liveness", "--head-bound", "auto"],
     "head_bound 'auto' takes the bound of the progress measures, which cover the separable "
     "allocator with one queue per VC, 2 VCs and no fault"),
    (["formal", "router", "--allocator", "islip", "--liveness", "--body-bound", "auto"],
     "body_bound 'auto' takes the bound of the progress measures, which cover the separable "
     "allocator"),
])
def test_bad_input_is_one_sentence_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_liveness_bound_is_a_number_or_auto(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["formal", "router", "--liveness", "--body-bound", "soon"])
    assert exc.value.code == 2
    assert "expected a number of cycles (0 or more) or auto, not 'soon'" in \
        capsys.readouterr().err


def test_auto_liveness_bounds_are_reported_as_numbers(capsys):
    code = main(["formal", "router", "--ports", "2", "--separable-iterations", "1",
                 "--liveness", "--body-bound", "auto", "--head-bound", "auto", "--mode", "bmc",
                 "--depth", "3", "--no-cover", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["status"] == "pass"
    live = out["jobs"][0]["params"]["liveness"]
    assert live["body_bound"] == 14 and live["head_bound"] == 122


def test_bad_depth_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["formal", "router", "--depth", "0"])
    assert exc.value.code == 2
    assert "expected a positive integer, not '0'" in capsys.readouterr().err
