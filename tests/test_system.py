"""System estimator per level: tile seam, chip GEMMs, collectives, LLM steps, published totals and properties."""

import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from supernode.fabric.system import collective_workload, estimate, gemm_workload, load_system, load_workload
from supernode.fabric.system.chip import gemm_on_chip, reuse_traffic, split_gemm
from supernode.fabric.system.comm import NetworkSource, collective_time
from supernode.fabric.system.estimate import schedule
from supernode.fabric.system.hardware import chip_totals, system_totals
from supernode.fabric.system.mapping import Mapping
from supernode.fabric.system.moe import expected_maximum, expert_load
from supernode.fabric.system.program import Comm, Gemm
from supernode.fabric.tile_model import predict as rtl_predict
from supernode.rtl.errors import UserError

SYSTEMS = ("cloudmatrix384", "gb200-nvl72")


@pytest.fixture(scope="module")
def cm384():
    return load_system("cloudmatrix384")


@pytest.fixture(scope="module")
def nvl72():
    return load_system("gb200-nvl72")


def fake_figures(sat=0.5, hop=4, endpoints=16):
    """A NetworkFigures-shaped object with round numbers."""
    def figures(pattern):
        return SimpleNamespace(hop_latency_cycles=hop, credit_round_trip_cycles=8,
                               saturation_throughput=sat, pattern=pattern, router={},
                               source=f"fake {pattern}",
                               clos={"endpoints_per_leaf": endpoints // 4, "leaves": 4})
    return figures


def fake_tile(cycles_per_mac=1.0):
    """A tile model that takes ``m*k*n / (rows*cols)`` cycles, plus a fixed 10."""
    def predict(*, rows, cols, dataflow, m, k, n):
        total = math.ceil(m * k * n / (rows * cols) * cycles_per_mac) + 10
        return SimpleNamespace(total_cycles=total)
    return predict


# --- published figures --------------------------------------------------------------

def _published_cases():
    for name in SYSTEMS:
        system = load_system(name)
        for key in system.published:
            yield pytest.param(name, "system", key, id=f"{name}-{key}")
        for key in system.chip.published:
            yield pytest.param(name, "chip", key, id=f"{system.chip.name}-{key}")


@pytest.mark.parametrize("name, level, key", list(_published_cases()))
def test_derived_totals_match_the_published_ones(name, level, key):
    system = load_system(name)
    totals = system_totals(system) if level == "system" else chip_totals(system.chip)
    published = (system.published if level == "system" else system.chip.published)[key]
    assert published.matches(totals[key]), (
        f"{name} {key}: derived {totals[key]:.6g} vs published {published.text} "
        f"({published.source}); {published.tolerance_reason}")


def test_chip_peak_is_cores_times_macs_times_two_times_clock(cm384, nvl72):
    for chip in (cm384.chip, nvl72.chip):
        core = chip.core
        expected = (chip.dies * chip.cores_per_die * core.tile_rows * core.tile_cols
                    * core.tiles_per_core * 2 * core.clock_hz)
        assert chip.peak_flops("bf16") == pytest.approx(expected)
    assert cm384.chip.core.macs_per_cycle == 4096            # the published Da Vinci cube


def test_paper_based_cm384_total_is_752_times_384(cm384):
    assert system_totals(cm384)["bf16_dense_flops"] == pytest.approx(288.8e15, abs=0.05e15)


def test_a_published_figure_that_does_not_match_fails():
    system = load_system("cloudmatrix384")
    pub = system.published["hbm_capacity_bytes"]
    assert not pub.matches(pub.value * 1.01)


@pytest.mark.parametrize("name", ["deepseek-r1", "llama3-70b"])
def test_parameter_count_from_the_shapes_matches_the_model_card(name):
    model = load_workload(name)
    assert model.params() == pytest.approx(model.published_params, rel=0.01)
    assert model.active_params() == pytest.approx(model.published_active_params, rel=0.02)


# --- tile -> core -> chip --------------------------------------------------------------

def test_chip_gemm_time_comes_from_the_tile_model(cm384):
    chip = cm384.chip
    tiles = chip.cores * chip.core.tiles_per_core
    # As many independent 64x512x64 GEMMs as tiles: each tile does exactly one.
    g = Gemm("g", m=64, k=512, n=64, batch=tiles)
    est = gemm_on_chip(g, chip, predict=rtl_predict)
    tile = rtl_predict(rows=16, cols=16, dataflow="os", m=64, k=512, n=64)
    assert est.tile_cycles == tile.total_cycles
    # The tile's cycles at the rate the GEMM kernels achieve on the package.
    assert est.compute_s == pytest.approx(tile.total_cycles / chip.core.clock_hz
                                          / chip.kernels.matrix_efficiency)
    # A fake tile model changes the answer accordingly: the chip level has no own copy.
    slow = gemm_on_chip(g, chip, predict=fake_tile(cycles_per_mac=3.0))
    assert slow.tile_cycles == math.ceil(64 * 512 * 64 / 256 * 3.0) + 10


def test_int8_runs_at_twice_the_bf16_rate(cm384):
    g = Gemm("g", m=4096, k=4096, n=4096)
    bf16 = gemm_on_chip(g, cm384.chip, predict=rtl_predict)
    int8 = gemm_on_chip(replace(g, precision="int8"), cm384.chip, predict=rtl_predict)
    assert bf16.compute_s == pytest.approx(2 * int8.compute_s)


def test_large_square_gemm_is_compute_bound_near_peak(cm384):
    g = Gemm("g", m=8192, k=8192, n=8192)
    est = gemm_on_chip(g, cm384.chip, predict=rtl_predict)
    assert est.bound == "compute"
    assert est.roofline_s <= est.time_s
    # Near the peak the kernels achieve: the tile model fills, the kernel share sets the rest.
    assert 0.9 * cm384.chip.kernels.matrix_efficiency < est.roofline_s / est.time_s


def test_a_short_reduction_pays_the_fixed_cost_of_each_output_block(cm384):
    chip = cm384.chip
    g = Gemm("g", m=8192, k=2048, n=8192)
    plain = gemm_on_chip(g, replace(chip, kernels=replace(chip.kernels, reduction_overhead=0)),
                         predict=rtl_predict)
    paid = gemm_on_chip(g, replace(chip, kernels=replace(chip.kernels,
                                                         reduction_overhead=1024)),
                        predict=rtl_predict)
    assert paid.compute_s == pytest.approx(plain.compute_s * (2048 + 1024) / 2048)
    # Attention GEMMs keep the attention kernel's own measured shares.
    att = replace(g, b_is_weight=False)
    assert gemm_on_chip(att, replace(chip, kernels=replace(chip.kernels,
                                                           reduction_overhead=1024)),
                        predict=rtl_predict).compute_s == pytest.approx(
        gemm_on_chip(att, replace(chip, kernels=replace(chip.kernels, reduction_overhead=0)),
                     predict=rtl_predict).compute_s)


def test_skinny_decode_gemm_is_memory_bound(cm384):
    g = Gemm("g", m=8, k=7168, n=18432, b_bytes=1, precision="int8")
    est = gemm_on_chip(g, cm384.chip, predict=rtl_predict)
    assert est.bound == "memory"
    assert est.hbm_s == pytest.approx(est.hbm_bytes / cm384.chip.hbm_bandwidth_bytes_per_s
                                      / cm384.chip.kernels.hbm_efficiency)


def test_reuse_traffic_is_compulsory_when_an_operand_fits_and_more_otherwise():
    assert reuse_traffic(8, 1024, 1024, 2, 2, 2, 1e9) == (8 * 1024 + 1024 * 1024 + 8 * 1024) * 2
    small = reuse_traffic(4096, 4096, 4096, 2, 2, 2, 1e6)
    assert small > 3 * 4096 * 4096 * 2


def test_split_gemm_uses_more_workers_when_it_helps():
    cost = lambda mp, np_: mp * np_                          # noqa: E731
    pm, pn, c = split_gemm(256, 256, 16, 16, 16, cost)
    assert pm * pn == 16 and c == 256 * 256 // 16


@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 3000), k=st.integers(1, 4000), n=st.integers(1, 3000),
       cores=st.integers(1, 47))
def test_more_cores_never_slower_on_a_compute_bound_gemm(cm384, m, k, n, cores):
    chip = cm384.chip
    fewer = replace(chip, dies=1, cores_per_die=cores)
    more = replace(chip, dies=1, cores_per_die=cores + 1)
    g = Gemm("g", m=m, k=k, n=n)
    assert (gemm_on_chip(g, more, predict=rtl_predict).compute_s
            <= gemm_on_chip(g, fewer, predict=rtl_predict).compute_s)


@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 64), k=st.integers(64, 8192), n=st.integers(64, 8192),
       factor=st.floats(1.0, 8.0))
def test_more_bandwidth_never_slower_on_a_memory_bound_gemm(cm384, m, k, n, factor):
    chip = cm384.chip
    wider = replace(chip, hbm_bandwidth_bytes_per_s=chip.hbm_bandwidth_bytes_per_s * factor)
    g = Gemm("g", m=m, k=k, n=n)
    assert (gemm_on_chip(g, wider, predict=rtl_predict).time_s
            <= gemm_on_chip(g, chip, predict=rtl_predict).time_s)


# --- collectives ------------------------------------------------------------------------

def test_collective_time_is_hops_latency_plus_bytes_over_saturated_ports(cm384):
    net = NetworkSource(cm384, fake_figures(sat=0.5, hop=4, endpoints=16))
    c = collective_time(Comm("a2a", "all_to_all", 64e6, 384, "supernode"), cm384, net)
    tier = cm384.tier("supernode")
    latency = cm384.endpoint_latency_ns * 1e-9 + 3 * 4 / cm384.switch_clock_hz
    transfer = 383 / 384 * 64e6 / (0.5 * tier.bandwidth_bytes_per_s * tier.efficiency)
    assert c.latency_s == pytest.approx(latency)
    assert c.transfer_s == pytest.approx(transfer)
    assert c.extrapolated                                   # 384 > the 16 endpoints modelled
    assert c.roofline_s < c.time_s
    node = collective_time(Comm("ar", "all_reduce", 64e6, 8, "node"), cm384, net)
    assert node.hops == 1
    assert node.wire_bytes == pytest.approx(2 * 7 / 8 * 64e6)


def test_oversubscription_and_saturation_slow_the_transfer(cm384):
    net = NetworkSource(cm384, fake_figures(sat=1.0))
    base = collective_time(Comm("a", "all_gather", 1e8, 384, "supernode"), cm384, net)
    tiers = tuple(replace(t, oversubscription=2.0) if t.name == "supernode" else t
                  for t in cm384.tiers)
    over = collective_time(Comm("a", "all_gather", 1e8, 384, "supernode"),
                           replace(cm384, tiers=tiers), net)
    assert over.transfer_s == pytest.approx(2 * base.transfer_s)
    half = collective_time(Comm("a", "all_gather", 1e8, 384, "supernode"), cm384,
                           NetworkSource(cm384, fake_figures(sat=0.5)))
    assert half.transfer_s == pytest.approx(2 * base.transfer_s)


def test_communication_uses_the_router_network_model(cm384):
    # Deferred: the network model imports numba and compiles its engine.
    from supernode.fabric.network import clos_figures
    figures = clos_figures(pattern="all_to_all", **dict(cm384.router))
    c = collective_time(Comm("a2a", "all_to_all", 1e8, 384, "supernode"), cm384,
                        NetworkSource(cm384))
    assert c.saturation_throughput == figures.saturation_throughput
    assert c.effective_bandwidth_bytes_per_s == pytest.approx(
        figures.saturation_throughput * 392e9 * cm384.tier("supernode").efficiency)
    assert c.latency_s == pytest.approx(1e-6 + 3 * figures.hop_latency_cycles / 1e9)


def test_a_group_larger_than_its_tier_is_refused(cm384):
    with pytest.raises(UserError, match="does not fit tier 'node'"):
        collective_time(Comm("a", "all_reduce", 1e6, 16, "node"), cm384,
                        NetworkSource(cm384, fake_figures()))


# --- LLM steps ----------------------------------------------------------------------------

CASES = [(s, w, p) for s in SYSTEMS for w in ("deepseek-r1", "llama3-70b")
         for p in ("decode", "prefill")]


@pytest.fixture(scope="module")
def default_estimates():
    return {case: estimate(case[0], case[1], phase=case[2]) for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_estimate_is_consistent_and_never_beats_its_roofline(default_estimates, case):
    e = default_estimates[case]
    assert e.roofline_s <= e.step_s * (1 + 1e-9)
    assert e.comm_exposed_s + e.comm_overlapped_s == pytest.approx(e.comm_s)
    assert e.step_s == pytest.approx(sum(b.time_s * b.repeat for b in e.blocks))
    assert e.bound in ("compute", "memory", "fabric")
    assert 0 < e.utilization <= 1
    assert e.tokens_per_s == pytest.approx(e.tokens_per_s_per_chip * e.chips)
    assert e.fits_in_hbm
    assert e.network_source and "RTL" in e.network_source


def test_the_default_instances_are_the_published_deployment_shapes(default_estimates):
    cm = default_estimates[("cloudmatrix384", "deepseek-r1", "decode")]
    assert (cm.chips, cm.ranks) == (160, 320)         # a 910C is two ranks: EP320 on 160
    assert default_estimates[("cloudmatrix384", "deepseek-r1", "prefill")].ranks == 32
    assert default_estimates[("gb200-nvl72", "deepseek-r1", "decode")].ranks == 48
    # CloudMatrix-Infer's decode runs the spatial micro-batch pipeline, not two-batch overlap.
    assert cm.pipeline == "spatial" and not cm.two_batch_overlap
    assert cm.tokens_per_sequence == pytest.approx(1.7)
    assert cm.time_per_output_token_s == pytest.approx(cm.step_s / 1.7)


def test_decode_throughput_rises_with_batch_until_the_hbm_is_full(cm384):
    net = NetworkSource(cm384, fake_figures(sat=0.9, hop=2))
    throughput, fits = [], []
    for per_rank in (2 ** i for i in range(0, 10)):
        e = estimate(cm384, "deepseek-r1", phase="decode", batch=320 * per_rank,
                     seq_len=16384, network=net, refuse_unfit=False)
        throughput.append(e.tokens_per_s)
        fits.append(e.fits_in_hbm)
    assert not all(fits)                    # the KV cache eventually outgrows the HBM
    last = fits.index(False) - 1
    assert throughput[last] > 4 * throughput[0]
    with pytest.raises(UserError, match="do not fit the .* GB of HBM left after the 10% "
                                        "reserve on ascend-910c"):
        estimate(cm384, "deepseek-r1", phase="decode", batch=320 * 2 ** 9, seq_len=16384,
                 network=net)


def test_memory_capacity_is_reported(cm384):
    net = NetworkSource(cm384, fake_figures())
    with pytest.raises(UserError, match="weights and KV cache of .* GB per rank do not fit"):
        estimate(cm384, "llama3-70b", phase="decode", mapping=Mapping(name="one", dp=1),
                 batch=1, network=net)
    e = estimate(cm384, "llama3-70b", phase="decode", mapping=Mapping(name="one", dp=1),
                 batch=1, network=net, refuse_unfit=False)
    # One rank is half a package: the package-level figure counts both halves.
    assert e.weight_bytes == pytest.approx(2 * load_workload("llama3-70b").params() * 2,
                                           rel=0.01)
    assert not e.fits_in_hbm
    assert any("does not fit" in n for n in e.notes)


def test_tensor_parallel_adds_exposed_fabric_time(cm384):
    net = NetworkSource(cm384, fake_figures())
    tp1 = estimate(cm384, "llama3-70b", phase="decode", batch=64,
                   mapping=Mapping(name="tp1", dp=8), network=net, refuse_unfit=False)
    tp8 = estimate(cm384, "llama3-70b", phase="decode", batch=64,
                   mapping=Mapping(name="tp8", tp=8), network=net)
    assert tp1.comm_s == 0 and tp8.comm_exposed_s > 0
    assert tp8.weight_bytes == pytest.approx(tp1.weight_bytes / 8, rel=0.02)


def test_two_batch_overlap_hides_dispatch_and_combine_at_large_batch(cm384):
    net = NetworkSource(cm384, fake_figures())
    base = dict(dp=320, ep=320, redundant_experts=32, expert_balancer=True)
    overlapped = Mapping(name="tbo", two_batch_overlap=True, **base)
    serial = Mapping(name="serial", **base)
    a = estimate(cm384, "deepseek-r1", phase="decode", batch=320 * 96, mapping=overlapped,
                 network=net)
    b = estimate(cm384, "deepseek-r1", phase="decode", batch=320 * 96, mapping=serial,
                 network=net)
    assert b.comm_exposed_s == pytest.approx(b.comm_s) and b.comm_overlapped_s == 0
    assert a.comm_overlapped_s > 0 and a.comm_exposed_s < b.comm_exposed_s
    assert a.step_s < b.step_s
    # Each micro-batch reads the weights again, so the overlap costs HBM traffic.
    assert a.hbm_bytes > b.hbm_bytes
    # At a batch of one the fixed costs of twice as many kernels outweigh what it hides.
    small = [estimate(cm384, "deepseek-r1", phase="decode", batch=320, mapping=m,
                      network=net).step_s for m in (overlapped, serial)]
    assert small[0] > small[1]


def test_schedule_overlaps_one_micro_batchs_fabric_with_the_others_compute():
    layer = [("compute", 2.0), ("fabric", 1.0), ("compute", 2.0), ("fabric", 1.0)]
    end, ends, busy = schedule([(layer, 1)], 1)
    assert end == 6.0 and busy == 4.0                 # one micro-batch: all in series
    end, _, busy = schedule([(layer, 1)], 2)
    # Compute A1 A2 E1 E2 back to back (8); the last combine follows the last compute.
    assert busy == 8.0 and end == 9.0
    end, _, _ = schedule([([("compute", 1.0), ("fabric", 3.0)], 2)], 2)
    assert end == 1.0 + 4 * 3.0                       # fabric-bound: the stream never idles


def test_multi_token_prediction_trades_a_longer_step_for_more_tokens(cm384):
    net = NetworkSource(cm384, fake_figures())
    base = dict(dp=320, ep=320, redundant_experts=32, expert_balancer=True)
    plain = estimate(cm384, "deepseek-r1", phase="decode", batch=320 * 32, network=net,
                     mapping=Mapping(name="plain", **base))
    mtp = estimate(cm384, "deepseek-r1", phase="decode", batch=320 * 32, network=net,
                   mapping=Mapping(name="mtp", mtp_tokens=1, mtp_acceptance=0.7, **base))
    assert mtp.step_s > plain.step_s
    assert mtp.tokens_per_sequence == pytest.approx(1.7)
    assert mtp.time_per_output_token_s == pytest.approx(mtp.step_s / 1.7)
    assert any(b.name == "multi-token prediction" for b in mtp.blocks)
    assert mtp.kv_cache_bytes > plain.kv_cache_bytes


def test_expert_placement_by_load_and_redundant_copies_even_the_busiest_rank():
    skew = dict(experts=256, ranks=32, cv=0.7, tokens_per_rank=1e6)
    index = expert_load(**skew)
    placed = expert_load(balancer=True, **skew)
    copies = expert_load(balancer=True, redundant=32, **skew)
    assert index.imbalance > placed.imbalance > copies.imbalance > 1.0
    assert copies.slots == 9 and copies.copies == 288
    # A step of few tokens is uneven even when the long-run loads are equal.
    few = expert_load(experts=256, ranks=32, cv=0.0, tokens_per_rank=16)
    many = expert_load(experts=256, ranks=32, cv=0.0, tokens_per_rank=16000)
    assert few.imbalance > many.imbalance > 1.0
    drift = expert_load(experts=256, ranks=32, cv=0.0, step_cv=0.3, tokens_per_rank=16000)
    assert drift.imbalance > many.imbalance


def test_bulk_kernels_run_at_the_bandwidth_measured_for_their_group_size(cm384):
    ranks = cm384.per_rank()
    gb = 1e9
    # At a measured size, the measured figure; between two, linear in log(group); beyond
    # the table, its end.
    assert ranks.bulk_rate("dispatch", 32) == pytest.approx(102 * gb)
    assert ranks.bulk_rate("combine", 8) == pytest.approx(125 * gb)
    assert ranks.bulk_rate("dispatch", 4) == ranks.bulk_rate("dispatch", 8)
    assert ranks.bulk_rate("dispatch", 320) == pytest.approx(57 * gb)
    between = 102 + (81 - 102) * math.log(48 / 32) / math.log(2)
    assert ranks.bulk_rate("dispatch", 48) == pytest.approx(between * gb)
    # Seen by package, a 910C is two ranks: twice the bytes over half the group.
    assert cm384.bulk_rate("dispatch", 16) == pytest.approx(2 * 102 * gb)
    assert load_system("h800-cluster").bulk_rate("dispatch", 32) is None
    # The bulk kernels use it; the low-latency ones keep the tier's efficiency.
    net = NetworkSource(ranks, fake_figures())
    bulk = collective_time(Comm("d", "dispatch", 64e6, 32, "supernode"), ranks, net)
    assert bulk.effective_bandwidth_bytes_per_s == pytest.approx(102 * gb)
    quick = collective_time(Comm("d", "dispatch", 64e6, 32, "supernode", low_latency=True),
                            ranks, net)
    tier = ranks.tier("supernode")
    assert quick.effective_bandwidth_bytes_per_s == pytest.approx(
        fake_figures()("all_to_all").saturation_throughput * tier.bandwidth_bytes_per_s
        * tier.efficiency)


def test_the_busiest_rank_is_the_expected_maximum_of_the_ranks_loads():
    # Two standard normals: E[max] = 1 / sqrt(pi); one far ahead of the others: its mean.
    assert expected_maximum([0.0, 0.0], [1.0, 1.0]) == pytest.approx(1 / math.sqrt(math.pi),
                                                                    abs=1e-4)
    assert expected_maximum([100.0, 10.0, 10.0], [1.0, 1.0, 1.0]) == pytest.approx(100.0)
    # Unequal means and spreads, against sampling.
    rng = np.random.default_rng(7)
    mean, sd = rng.uniform(50, 100, 64), rng.uniform(2, 20, 64)
    sampled = rng.normal(mean, sd, (40_000, 64)).max(axis=1).mean()
    assert expected_maximum(mean, sd) == pytest.approx(sampled, rel=2e-3)
    # Equal long-run loads: the spread of a step is its Poisson noise, 1 / sqrt(tokens).
    even = expert_load(experts=256, ranks=32, cv=0.0, tokens_per_rank=400)
    assert even.spread == pytest.approx(1 / math.sqrt(400), rel=1e-6)
    assert even.imbalance == pytest.approx(expected_maximum([400.0] * 32, [20.0] * 32) / 400)


def test_a_shared_expert_on_ranks_of_its_own_runs_beside_the_routed_ones(cm384):
    net = NetworkSource(cm384, fake_figures())
    local = Mapping(name="local", dp=320, ep=320, redundant_experts=32, expert_balancer=True)
    routed = replace(local, name="routed", redundant_experts=0, shared_expert="routed",
                     shared_expert_ranks=64)
    a, b = (estimate(cm384, "deepseek-r1", phase="decode", batch=320 * 64, mapping=m,
                     network=net) for m in (local, routed))
    # The busiest routed rank no longer computes the shared expert: its ranks of their own
    # do, at the same time, and the slower of the two sets the layer.
    shared = [[op for op in blk.ops if op.name.startswith("shared expert")]
              for e in (a, b) for blk in e.blocks if blk.name == "moe layer"]
    assert shared[0] and not shared[1]
    # Tokens now travel to the shared expert as a ninth pair.
    dispatch = [op for blk in (a, b) for op in blk.blocks[1].ops if op.name.endswith("dispatch (ep)")]
    assert dispatch[1].bytes_per_chip == pytest.approx(dispatch[0].bytes_per_chip * 9 / 8)


def test_pipeline_parallel_steps_follow_the_gpipe_schedule(cm384):
    net = NetworkSource(cm384, fake_figures())
    e = estimate(cm384, "llama3-70b", phase="decode", batch=64, network=net,
                 mapping=Mapping(name="pp", pp=4, dp=2, microbatches=4))
    stage = sum(b.time_s * b.repeat for b in e.blocks)
    assert e.step_s == pytest.approx(stage * (4 + 4 - 1))


def test_transformer_layer_gemm_and_collective_workloads(cm384):
    net = NetworkSource(cm384, fake_figures())
    one = estimate(cm384, "llama3-70b", phase="decode", layers=1, network=net)
    full = estimate(cm384, "llama3-70b", phase="decode", network=net)
    fixed = cm384.chip.kernels.step_overhead_ns * 1e-9        # paid once per step
    assert one.step_s - fixed < (full.step_s - fixed) / 40
    g = estimate(cm384, gemm_workload(4096, 4096, 4096), network=net)
    assert g.flops == 2 * 4096 ** 3 and g.comm_s == 0
    c = estimate(cm384, collective_workload("all_to_all", 16e6, 384), network=net)
    assert c.comm_s > 0 and c.bound == "fabric"


def test_bad_inputs_are_one_sentence(cm384):
    net = NetworkSource(cm384, fake_figures())
    with pytest.raises(UserError, match="precision 'fp8' is not supported by ascend-910c"):
        estimate(cm384, "deepseek-r1", precision="fp8", network=net)
    with pytest.raises(UserError, match="uses tp x pp x dp = 8 x 1 x 128 = 1024 ranks \\(512 "
                                        "packages\\) but cloudmatrix384 has 768 ranks"):
        estimate(cm384, "llama3-70b", mapping=Mapping(name="m", tp=8, dp=128), network=net)
    with pytest.raises(UserError, match="precision 'fp4' is not supported by ascend-910c"):
        estimate(cm384, "deepseek-r1", expert_precision="fp4", network=net)
    with pytest.raises(UserError, match="cache hit rate must be a fraction"):
        estimate(cm384, "deepseek-r1", phase="prefill", cache_hit_rate=1.0, network=net)
    with pytest.raises(UserError, match="batch must be a positive whole number"):
        estimate(cm384, "llama3-70b", batch=0, network=net)
    with pytest.raises(UserError, match="phase 'train' is not accepted"):
        estimate(cm384, "llama3-70b", phase="train", network=net)


@pytest.mark.parametrize("workload", ["deepseek-r1", "llama3-70b"])
def test_decode_reads_the_kv_cache_once_per_step(cm384, workload):
    net = NetworkSource(cm384, fake_figures())
    plain = (Mapping(name="plain", dp=64, ep=64) if workload == "deepseek-r1"
             else Mapping(name="plain", tp=8, dp=8))
    short = estimate(cm384, workload, phase="decode", seq_len=2048, batch=64 * 8,
                     mapping=plain, network=net)
    long = estimate(cm384, workload, phase="decode", seq_len=4096, batch=64 * 8,
                    mapping=plain, network=net)
    grown = long.kv_cache_bytes - short.kv_cache_bytes
    assert grown > 0
    assert long.hbm_bytes - short.hbm_bytes == pytest.approx(grown, rel=0.01)


def test_decode_traffic_is_weights_touched_plus_kv_cache(cm384):
    model = load_workload("deepseek-r1")
    e = estimate(cm384, model, phase="decode", network=NetworkSource(cm384, fake_figures()),
                 batch=256 * 64, mapping=Mapping(name="ep256", dp=256, ep=256,
                                                 perfect_balance=True))
    # int8 weights; EP256 puts one routed expert on each rank (half a package), and 512
    # tokens reach it (evenly balanced, so the hottest expert's share does not enter); the
    # package-level traffic counts both of its ranks.
    weights = (model.layers * model.attention_params()
               + model.dense_layers * model.dense_ffn_params()
               + model.moe_layers * (2 * model.expert_params()
                                     + model.hidden_size * model.routed_experts)
               + model.vocab_size * model.hidden_size)
    floor = 2 * weights + e.kv_cache_bytes
    # Above the floor: activations in and out of every GEMM, most of them those of the
    # tokens the busiest rank's expert receives.
    assert floor <= e.hbm_bytes <= 1.35 * floor


def test_a_group_can_be_placed_on_the_rdma_plane(cm384):
    net = NetworkSource(cm384, fake_figures(sat=0.9))
    ub = Mapping(name="ub", tp=8, dp=4, tiers={"tp": "supernode"})
    rdma = Mapping(name="rdma", tp=8, dp=4, tiers={"tp": "scale_out"})
    a = estimate(cm384, "llama3-70b", phase="decode", batch=64, mapping=ub, network=net)
    b = estimate(cm384, "llama3-70b", phase="decode", batch=64, mapping=rdma, network=net)
    # Same bytes, 392 GB/s of UB (at its end-point efficiency) against 50 GB/s of RDMA per
    # package.
    assert b.fabric_bytes == pytest.approx(a.fabric_bytes)
    transfer = [op.transfer_s for blk in (a, b) for op in blk.blocks[0].ops
                if hasattr(op, "pattern")]
    ub_eff = cm384.tier("supernode").efficiency
    assert transfer[2] == pytest.approx(transfer[0] * 392 * ub_eff / 50)


@pytest.mark.parametrize("phase", ["decode", "prefill"])
def test_a_faster_package_never_makes_the_supernode_slower(cm384, phase):
    net = NetworkSource(cm384, fake_figures())
    chip = cm384.chip
    base = estimate(cm384, "deepseek-r1", phase=phase, network=net)
    for faster in (replace(chip, hbm_bandwidth_bytes_per_s=2 * chip.hbm_bandwidth_bytes_per_s),
                   replace(chip, cores_per_die=2 * chip.cores_per_die),
                   replace(chip, core=replace(chip.core, clock_hz=2 * chip.core.clock_hz))):
        e = estimate(cm384.with_chip(faster), "deepseek-r1", phase=phase, network=net)
        assert e.step_s <= base.step_s
