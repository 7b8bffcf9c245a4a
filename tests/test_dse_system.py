"""System points in sweeps: the resized supernode, checked against the estimator at the shipped design."""

import pytest

from supernode.dse.evaluators import system
from fabric.system import estimate, load_system

WORKLOAD = system.check_workload({"system": "cloudmatrix384", "model": "deepseek-r1",
                                  "phase": "decode", "mapping": "cloudmatrix384-moe",
                                  "layers": 4}, set())


def test_the_shipped_design_point_gives_the_estimators_own_answer():
    shipped = load_system("cloudmatrix384")
    tier2 = shipped.scale_up_tiers[1].bandwidth_bytes_per_s
    metrics = system.evaluate({"nodes": shipped.nodes, "tier2_bandwidth_bytes_per_s": tier2},
                              WORKLOAD)
    direct = estimate("cloudmatrix384", "deepseek-r1", phase="decode",
                      mapping="cloudmatrix384-moe", layers=4)
    assert metrics["chips"] == direct.chips == 384
    assert metrics["tokens_per_s"] == direct.tokens_per_s
    assert metrics["step_s"] == direct.step_s


def test_resizing_changes_packages_mapping_and_exposed_traffic():
    small = system.evaluate({"nodes": 4}, WORKLOAD)
    assert small["chips"] == 32 and small["mapping_dp"] == 32 and small["mapping_ep"] == 32
    slow, fast = (system.evaluate({"nodes": 16, "tier2_bandwidth_bytes_per_s": bw,
                                   "ep_overlap": 0.0}, WORKLOAD) for bw in (49e9, 392e9))
    assert slow["comm_exposed_s"] > fast["comm_exposed_s"] > 0
    assert slow["tokens_per_s"] < fast["tokens_per_s"]
    hidden = system.evaluate({"nodes": 16, "tier2_bandwidth_bytes_per_s": 49e9,
                              "ep_overlap": 1.0}, WORKLOAD)
    assert hidden["comm_exposed_s"] <= slow["comm_exposed_s"]


@pytest.mark.parametrize("name, value, words", [
    ("tier2_bandwidth_bytes_per_s", "fast", ["bytes per second"]),
    ("tier2_bandwidth_bytes_per_s", -1, ["positive"]),
    ("nodes", 0, ["positive integer"]),
    ("ep_overlap", 1.5, ["fraction"]),
])
def test_bad_system_parameters_say_what_is_accepted(name, value, words):
    with pytest.raises(ValueError) as info:
        system.parameters()[name](value)
    for word in words:
        assert word in str(info.value)


def test_bandwidth_accepts_units():
    assert system.parameters()["tier2_bandwidth_bytes_per_s"]("196 GB/s") == 196e9


def test_bad_system_workload_names_the_value():
    with pytest.raises(ValueError, match="'llama-9000'"):
        system.check_workload({"model": "llama-9000"}, set())
    with pytest.raises(ValueError, match="'train'"):
        system.check_workload({"phase": "train"}, set())
