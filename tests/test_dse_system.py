"""System points in sweeps: the resized supernode, checked against the estimator at the shipped design."""

import pytest

from supernode.dse.evaluators import system
from supernode.fabric.system import estimate, load_system

WORKLOAD = system.check_workload({"system": "cloudmatrix384", "model": "deepseek-r1",
                                  "phase": "decode", "mapping": "cloudmatrix384-moe-decode",
                                  "layers": 4}, set())


def test_the_shipped_design_point_gives_the_estimators_own_answer():
    shipped = load_system("cloudmatrix384")
    tier2 = shipped.scale_up_tiers[1].bandwidth_bytes_per_s
    metrics = system.evaluate({"nodes": shipped.nodes, "tier2_bandwidth_bytes_per_s": tier2},
                              WORKLOAD)
    direct = estimate("cloudmatrix384", "deepseek-r1", phase="decode",
                      mapping="cloudmatrix384-moe-decode", layers=4)
    assert metrics["chips"] == 384 and direct.chips == 160     # the mapping grows to 768 ranks
    assert metrics["ranks"] == 768 and direct.ranks == 320
    grown = estimate("cloudmatrix384", "deepseek-r1", phase="decode", layers=4,
                     mapping=system.build({"nodes": 48}, WORKLOAD)[2])
    assert metrics["tokens_per_s"] == grown.tokens_per_s
    assert metrics["step_s"] == grown.step_s


def test_resizing_changes_packages_mapping_and_exposed_traffic():
    small = system.evaluate({"nodes": 4}, WORKLOAD)
    assert small["chips"] == 32 and small["mapping_dp"] == 64 and small["mapping_ep"] == 64
    slow, fast = (system.evaluate({"nodes": 16, "tier2_bandwidth_bytes_per_s": bw,
                                   "two_batch_overlap": False}, WORKLOAD)
                  for bw in (49e9, 392e9))
    assert slow["comm_exposed_s"] > fast["comm_exposed_s"] > 0
    assert slow["tokens_per_s"] < fast["tokens_per_s"]
    hidden = system.evaluate({"nodes": 16, "tier2_bandwidth_bytes_per_s": 49e9,
                              "two_batch_overlap": True}, WORKLOAD)
    assert hidden["comm_exposed_s"] < slow["comm_exposed_s"]


@pytest.mark.parametrize("name, value, words", [
    ("tier2_bandwidth_bytes_per_s", "fast", ["bytes per second"]),
    ("tier2_bandwidth_bytes_per_s", -1, ["positive"]),
    ("nodes", 0, ["positive integer"]),
    ("two_batch_overlap", 1, ["true or false"]),
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
