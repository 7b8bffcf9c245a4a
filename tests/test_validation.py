"""Published measurements the estimator is held to: every set and check point within 25 %, blind points kept apart."""

import json
import re

import pytest

from supernode.fabric.system.config import CONFIG_DIR
from supernode.fabric.system.validation import TOLERANCE, load_points, validate
from supernode.rtl.errors import UserError
from supernode.cli import main

POINTS = load_points()
HELD = [p for p in POINTS if p.role != "blind"]
BLIND = [p for p in POINTS if p.role == "blind"]


@pytest.fixture(scope="session")
def rows():
    return {r.point.id: r for r in validate(POINTS)}


@pytest.mark.parametrize("point", HELD, ids=[p.id for p in HELD])
def test_every_set_and_check_point_is_within_tolerance(rows, point):
    row = rows[point.id]
    assert abs(row.ratio - 1) <= TOLERANCE, (
        f"{point.id}: measured {point.measured} {point.unit}, estimate {row.estimate:.4g} "
        f"({row.detail}); source {point.source}")


def test_the_table_covers_serving_on_several_systems_and_components_on_two():
    serving = [p for p in HELD if p.kind == "serving"]
    assert len(serving) >= 8
    assert len({p.system for p in serving}) >= 3
    for kind in ("dispatch", "combine"):
        systems = {p.system for p in HELD if p.kind == kind}
        assert {"cloudmatrix384", "h800-cluster"} <= systems
        sizes = {p.setup["ep"] for p in HELD if p.kind == kind}
        assert {8, 256} <= sizes
    assert any(p.role == "check" for p in HELD if p.kind in ("dispatch", "combine"))


def test_blind_points_are_cloudmatrix_infer_figures_and_set_nothing(rows):
    assert len(BLIND) >= 4
    for p in BLIND:
        assert p.system == "cloudmatrix384" and "2506.12708" in p.source and not p.sets
        assert p.id in rows                      # estimated and shown, whatever the ratio


def test_no_parameter_cites_a_blind_figure():
    """A config source that quotes an end-to-end figure kept blind would mean it set a
    parameter; every figure of a blind point is looked for in every shipped file."""
    figures = {f"{p.measured:,.0f}" for p in BLIND} | {f"{p.measured:.0f}" for p in BLIND}
    for path in CONFIG_DIR.rglob("*.toml"):
        if path.parent.name == "validation":
            continue
        text = path.read_text()
        for figure in figures:
            assert not re.search(rf"(?<![\d.,]){re.escape(figure)}(?![\d,])", text), (
                f"{path.name} mentions {figure}, a blind end-to-end figure")


def test_set_points_name_what_they_set_and_roles_are_checked(tmp_path):
    assert all(p.sets for p in POINTS if p.role == "set")
    text = (CONFIG_DIR / "validation" / "points.toml").read_text()
    bad = tmp_path / "points.toml"
    bad.write_text(text.replace('\nrole = "check"\n', '\nrole = "guess"\n', 1))
    with pytest.raises(UserError, match="role = 'guess' is not accepted; accepted: set, check, "
                                        "blind"):
        load_points(bad)
    bad.write_text(re.sub(r'\nrole = "set"\nsets = "[^"]*"\n', '\nrole = "set"\n', text,
                          count=1))
    with pytest.raises(UserError, match='names the parameter it set in sets'):
        load_points(bad)


def test_validate_command_prints_json_and_csv(capsys):
    assert main(["validate", "--role", "set", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["tolerance"] == TOLERANCE and data["rows"]
    for row in data["rows"]:
        assert row["role"] == "set" and row["sets"] and row["source"].startswith("http")
        for key in ("system", "setup", "measured", "estimate", "ratio", "unit"):
            assert key in row
    assert main(["validate", "--role", "blind", "--csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("id,kind,role,system") and len(lines) == len(BLIND) + 1


def test_expert_load_points_follow_the_estimators_placement(rows, tmp_path):
    load = {p.id: rows[p.id].estimate for p in HELD if p.kind == "expert_load"}
    # Placement by load with redundant copies evens the ranks out; one copy per rank keeps
    # the hottest copy's tail, and single experts placed in index order the whole spread.
    assert load["trtllm-r1-load-rank-eplb-ep32"] < load["trtllm-r1-load-rank-ep32"]
    assert load["trtllm-r1-load-rank-eplb-ep32"] < load["trtllm-r1-load-slot-eplb-ep32"]
    assert load["trtllm-r1-load-slot-eplb-ep32"] < load["trtllm-r1-load-expert"]
    text = (CONFIG_DIR / "validation" / "points.toml").read_text()
    bad = tmp_path / "points.toml"
    for old, new, message in (
            ('statistic = "slot"', 'statistic = "node"',
             "statistic = 'node' is not accepted; accepted: rank, slot, rank-spread, slot-spread"),
            ("slots_per_rank = 9", "slots_per_rank = 0",
             "slots_per_rank = 0 must be greater than 0"),
            ("slots_per_rank = 9", "slots_per_rank = 9.5",
             "slots_per_rank = 9.5 must be a whole number"),
            ("expert_balancer = true", 'expert_balancer = "yes"',
             "expert_balancer = 'yes' must be true or false")):
        bad.write_text(text.replace(old, new, 1))
        with pytest.raises(UserError, match=re.escape(message)):
            load_points(bad)
    bad.write_text(text.replace("ep = 32\nslots_per_rank = 8", "ep = 16\nslots_per_rank = 8", 1))
    with pytest.raises(UserError, match="16 ranks of 8 slots hold 128 experts; accepted: at "
                                        "least the model's 256"):
        validate(load_points(bad))
