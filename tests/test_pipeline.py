"""The spatial micro-batch pipeline: streams on shares of a rank's cores, their schedule, the mapping that asks for it."""

from dataclasses import replace
from types import SimpleNamespace

import pytest

from supernode.fabric.system import estimate, load_system, load_workload
from supernode.fabric.system.chip import gemm_on_chip, vector_on_chip
from supernode.fabric.system.comm import NetworkSource
from supernode.fabric.system.config import CONFIG_DIR
from supernode.fabric.system.estimate import estimate_program, schedule
from supernode.fabric.system.lowering import llm_program
from supernode.fabric.system.mapping import Mapping, load_mapping
from supernode.fabric.system.program import Block, Gemm, Program, Vector
from supernode.fabric.system.slo import latency_of, slo_search
from supernode.rtl.errors import UserError

SPATIAL = dict(pipeline="spatial", attention_cube_cores=16, attention_vector_cores=32)
BASE = dict(dp=320, ep=320, redundant_experts=32, expert_balancer=True)


def fake_figures(pattern):
    """Round network figures, so no network model runs."""
    return SimpleNamespace(hop_latency_cycles=4, credit_round_trip_cycles=8,
                           saturation_throughput=0.5, pattern=pattern, router={},
                           source=f"fake {pattern}", clos={"endpoints_per_leaf": 4, "leaves": 4})


@pytest.fixture(scope="module")
def cm384():
    return load_system("cloudmatrix384")


@pytest.fixture(scope="module")
def rank(cm384):
    return cm384.per_rank()


def test_schedule_alternates_two_micro_batches_between_the_attention_and_moe_streams():
    layer = [("attention", 2.0), ("moe", 3.0)]
    # Layer 1: A0 [0,2] A1 [2,4] M0 [2,5] M1 [5,8]; layer 2: A0 [5,7] A1 [8,10] M0 [8,11]
    # M1 [11,14]. The MoE stream is the busier (12 s against 8).
    end, ends, busy = schedule([(layer, 2)], 2)
    assert (end, ends, busy) == (14.0, [14.0], 12.0)
    # A head on the attention stream follows each micro-batch's last MoE segment.
    end, ends, busy = schedule([(layer, 2), ([("attention", 1.0)], 1)], 2)
    assert (end, ends, busy) == (15.0, [14.0, 15.0], 12.0)
    # One micro-batch: everything in series.
    assert schedule([(layer, 2)], 1) == (10.0, [10.0], 6.0)
    # An attention-bound layer: the attention stream never idles after the first segment.
    end, _, busy = schedule([([("attention", 3.0), ("moe", 1.0)], 3)], 2)
    assert end == 3 * 2 * 3.0 + 1.0 and busy == 18.0
    # Of a MoE segment's 3 s only 1 s is compute (dispatch and combine the rest): the
    # times are those of the first case, the busiest compute is the attention stream's.
    end, ends, busy = schedule([([("attention", 2.0), ("moe", 3.0, 1.0)], 2)], 2)
    assert (end, ends, busy) == (14.0, [14.0], 8.0)


def test_a_share_of_the_cube_cores_is_slower_by_the_tile_models_fold(rank):
    chip = rank.chip
    share = chip.share(16, 32, 48 / 72)
    assert share.cores == 16 and share.vector_cores == 32
    gemm = Gemm("g", m=2048, k=7168, n=2048, precision="int8", a_bytes=1, b_bytes=1)
    whole, part = gemm_on_chip(gemm, chip), gemm_on_chip(gemm, share)
    assert whole.bound == part.bound == "compute"
    assert part.tiles_used == 16 * chip.core.tiles_per_core < whole.tiles_used
    ratio = part.compute_s / whole.compute_s
    # The fold over 256 tiles against 384, from the tile model: not the cores' 24 / 16.
    assert ratio == pytest.approx(part.tile_cycles / whole.tile_cycles, rel=1e-12)
    assert 1.0 < ratio < 1.5 and ratio != pytest.approx(1.5, rel=1e-3)
    assert part.time_s > whole.time_s


def test_a_share_has_its_vector_cores_and_its_part_of_the_memory(rank):
    chip = rank.chip
    moe = chip.share(8, 16, 24 / 72)
    arithmetic = Vector("v", flops=1e9)
    assert vector_on_chip(arithmetic, moe) == pytest.approx(
        vector_on_chip(arithmetic, chip) * 48 / 16)
    traffic = Vector("v", flops=0.0, bytes=1e9)
    assert vector_on_chip(traffic, moe) == pytest.approx(vector_on_chip(traffic, chip) * 3)
    weights = Gemm("w", m=8, k=7168, n=4096, precision="int8", a_bytes=1, b_bytes=1)
    assert gemm_on_chip(weights, moe).hbm_s == pytest.approx(
        gemm_on_chip(weights, chip).hbm_s * 3)
    # Vector cores need not split like the cube cores.
    lopsided = chip.share(8, 40, 0.5)
    assert vector_on_chip(arithmetic, lopsided) == pytest.approx(
        vector_on_chip(arithmetic, chip) * 48 / 40)


def test_a_spatial_program_runs_each_op_on_its_streams_share(rank):
    chip = rank.chip
    mapping = Mapping(name="m", **SPATIAL)
    streams = mapping.streams(chip)
    assert streams == (("attention", 16, 32, 48 / 72), ("moe", 8, 16, 24 / 72))
    att = Gemm("attention gemm", m=64, k=7168, n=1536, stream="attention")
    moe = Gemm("expert gemm", m=512, k=7168, n=4096, precision="int8", a_bytes=1, b_bytes=1,
               stream="moe")
    act = Vector("swiglu", flops=1e8, bytes=1e7, stream="moe")
    program = Program(blocks=(Block("layer", (att, moe, act), repeat=3),), chips=1, tokens=1,
                      output_tokens=1, overlap_microbatches=2, stream_cores=streams)
    launch = chip.kernels.kernel_launch_ns * 1e-9
    shares = {name: chip.share(c, v, m) for name, c, v, m in streams}
    a = gemm_on_chip(att, shares["attention"]).time_s + launch
    m = (gemm_on_chip(moe, shares["moe"]).time_s + launch
         + vector_on_chip(act, shares["moe"]) + launch)
    end, _, _ = schedule([([("attention", a), ("moe", m)], 3)], 2)
    result = estimate_program(program, rank, network=None)
    assert result["totals"]["time"] == end + chip.kernels.step_overhead_ns * 1e-9
    # The roofline stays the rank's: the op's FLOPs over the whole rank's peak.
    assert result["totals"]["roof_compute"] > 0
    assert result["totals"]["comm_exposed"] == 0.0


def test_lowering_tags_ops_with_streams_only_for_a_spatial_pipeline(cm384, rank):
    model = load_workload("deepseek-r1")
    run = model.settings(phase="decode", batch=320 * 8, chips=320)
    spatial = llm_program(model, run, Mapping(name="s", mtp_tokens=1, **BASE, **SPATIAL), rank)
    assert spatial.pipeline == "spatial" and spatial.overlap_microbatches == 2
    streams = {b.name: [(op.name, op.stream) for op in b.ops] for b in spatial.blocks}
    moe = dict(streams["moe layer"])
    assert moe["latent attention scores"] == moe["output projection"] == "attention"
    for name in ("router", "moe dispatch (ep)", "routed experts gate+up", "moe combine (ep)",
                 "weighted sum of expert outputs"):
        assert moe[name] == "moe"
    dense = dict(streams["dense layer"])
    assert dense["ffn gate+up"] == dense["ffn down"] == "moe"
    assert streams["lm head"] == [("lm head", "attention")]
    assert dict(streams["multi-token prediction"])["mtp head"] == "attention"
    plain = llm_program(model, run, Mapping(name="p", two_batch_overlap=True, **BASE), rank)
    assert plain.pipeline == "none" and not plain.stream_cores
    assert all(op.stream == "" for b in plain.blocks for op in b.ops)


def test_a_spatial_decode_step_carries_dispatch_and_combine_on_the_moe_stream(cm384):
    net = NetworkSource(cm384, fake_figures)
    spatial = Mapping(name="spatial", **BASE, **SPATIAL)
    e = estimate(cm384, "deepseek-r1", phase="decode", batch=320 * 32, mapping=spatial,
                 network=net, layers=6)
    assert e.pipeline == "spatial" and not e.two_batch_overlap
    assert any(note.startswith("spatial pipeline:") for note in e.notes)
    assert 0 < e.comm_exposed_s <= e.comm_s
    serial = estimate(cm384, "deepseek-r1", phase="decode", batch=320 * 32, network=net,
                      mapping=spatial.without_overlap(), layers=6)
    assert serial.pipeline == "none" and serial.comm_exposed_s == pytest.approx(serial.comm_s)
    # Each micro-batch reads the weights again, as with two-batch overlap.
    assert e.hbm_bytes > serial.hbm_bytes


def test_the_slo_search_takes_the_faster_of_the_pipeline_and_the_serial_program(cm384):
    net = NetworkSource(cm384, fake_figures)
    spatial = Mapping(name="spatial", **BASE, **SPATIAL)
    result = slo_search(cm384, "deepseek-r1", phase="decode", limit_s=0.5, mapping=spatial,
                        network=net, layers=6, max_batch_per_rank=64)
    for point in result.curve[:3]:
        runs = [estimate(cm384, "deepseek-r1", phase="decode", batch=point.batch, mapping=m,
                         network=net, layers=6, refuse_unfit=False)
                for m in (spatial, spatial.without_overlap())]
        assert point.latency_s == min(latency_of(r) for r in runs)


def test_the_shipped_cloudmatrix_decode_mapping_runs_the_spatial_pipeline():
    decode = load_mapping("cloudmatrix384-moe-decode")
    assert (decode.pipeline, decode.attention_cube_cores, decode.attention_vector_cores,
            decode.hbm_sharing, decode.two_batch_overlap) == ("spatial", 16, 32, "cores", False)
    for key in ("pipeline.kind", "pipeline.attention_cube_cores",
                "pipeline.attention_vector_cores", "pipeline.hbm_sharing"):
        assert key in decode.sources
    prefill = load_mapping("cloudmatrix384-moe-prefill")
    assert prefill.pipeline == "none" and prefill.two_batch_overlap
    for name in ("gb200-nvl72-moe-decode", "h800-cluster-moe-decode", "h100-cluster-moe-decode"):
        assert load_mapping(name).pipeline == "none"


@pytest.mark.parametrize("settings, words", [
    (dict(pipeline="temporal"), "pipeline = 'temporal' is not accepted; accepted: none, spatial"),
    (dict(SPATIAL, attention_cube_cores=0),
     "attention_cube_cores = 0 must be a positive whole number of cores with pipeline = "
     "\"spatial\""),
    (dict(SPATIAL, attention_vector_cores=2.5),
     "attention_vector_cores = 2.5 must be a positive whole number of cores"),
    (dict(attention_cube_cores=16),
     "attention_cube_cores = 16 applies only to pipeline = \"spatial\"; accepted here: 0 or "
     "leaving it out"),
    (dict(SPATIAL, two_batch_overlap=True),
     "pipeline = \"spatial\" cannot be combined with two_batch_overlap = true; accepted: one "
     "of the two"),
    (dict(SPATIAL, hbm_sharing="half"), "hbm_sharing = 'half' is not accepted; accepted: "
                                        "cores, full"),
])
def test_mapping_refuses_a_bad_pipeline(settings, words):
    with pytest.raises(UserError, match=words.replace("(", r"\(").replace(")", r"\)")):
        Mapping(name="bad", **settings)


@pytest.mark.parametrize("settings, words", [
    (dict(SPATIAL, attention_cube_cores=24),
     "attention_cube_cores = 24 leaves the MoE stream none of the 24 cube cores of "
     "one ascend-910c rank; accepted: 1 to 23"),
    (dict(SPATIAL, attention_vector_cores=60),
     "attention_vector_cores = 60 leaves the MoE stream none of the 48 vector cores of "
     "one ascend-910c rank; accepted: 1 to 47"),
])
def test_the_streams_must_each_keep_a_core_of_the_rank(rank, settings, words):
    with pytest.raises(UserError, match=words):
        Mapping(name="bad", **settings).streams(rank.chip)


def test_a_chip_without_separate_vector_cores_refuses_the_spatial_pipeline():
    nvl72 = load_system("gb200-nvl72")
    with pytest.raises(UserError, match="pipeline = \"spatial\" splits a rank's cube and vector "
                                        "cores between two streams, but b200 does not count "
                                        "vector cores apart from its matrix cores; accepted: a "
                                        "chip with vector_cores_per_die, or two_batch_overlap"):
        estimate(nvl72, "deepseek-r1", phase="decode", batch=48,
                 mapping=Mapping(name="bad", dp=48, ep=48, **SPATIAL))


def test_bad_pipeline_tables_in_a_mapping_file(tmp_path):
    text = (CONFIG_DIR / "mappings" / "cloudmatrix384-moe-decode.toml").read_text()
    bad = tmp_path / "m.toml"
    for edit, words in (
            (("attention_cube_cores = { value = 16", "attention_cube_cores = { value = 0"),
             "attention_cube_cores = 0 must be greater than 0"),
            (('kind = { value = "spatial"', 'kind = { value = "temporal"'),
             "kind = 'temporal' is not accepted; accepted: none, spatial"),
            (('hbm_sharing = { value = "cores"', 'hbm_sharing = { value = "half"'),
             "hbm_sharing = 'half' is not accepted; accepted: cores, full"),
            (("\n[pipeline]\n", "\n[pipeline]\nstreams = 3\n"), "unknown key 'streams'"),
            (("two_batch_overlap = { value = false", "two_batch_overlap = { value = true"),
             "cannot be combined with two_batch_overlap = true")):
        bad.write_text(text.replace(*edit))
        with pytest.raises(UserError, match=words):
            load_mapping(bad)


def test_the_overlap_flag_replaces_the_spatial_pipeline():
    spatial = Mapping(name="s", **BASE, **SPATIAL)
    tbo = spatial.without_overlap().with_degrees(two_batch_overlap=True)
    assert tbo.pipeline == "none" and tbo.two_batch_overlap
    assert replace(spatial, attention_cube_cores=8).streams(
        load_system("cloudmatrix384").per_rank().chip)[1][1] == 16
