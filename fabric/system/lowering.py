"""Lowering onto one rank: the step program of an LLM, a GEMM or a collective under a mapping."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from supernode.rtl.errors import UserError

from .hardware import PRECISION_BYTES
from .moe import distinct_nodes, expert_load, step_spread
from .program import ACT_BYTES, Block, Comm, Gemm, Parallel, Program, Vector
from .workload import CollectiveWorkload, GemmWorkload, LlmModel, RunSettings

if TYPE_CHECKING:     # annotations only
    from .hardware import SystemSpec
    from .mapping import Mapping

__all__ = ["llm_program", "gemm_program", "collective_program"]


def _ceil_div(a: float, b: float) -> int:
    return max(1, math.ceil(a / b - 1e-9))


def _tokens_produced(mtp: int, acceptance: float) -> float:
    """Tokens a sequence gains per decode step with ``mtp`` drafts accepted in a chain."""
    return 1.0 + sum(acceptance ** i for i in range(1, mtp + 1))


def llm_program(model: LlmModel, run: RunSettings, mapping: Mapping,
                system: SystemSpec) -> Program:
    """The step program of one rank for an LLM step under ``mapping`` on ``system``.

    ``system`` is seen per rank (:meth:`~supernode.fabric.system.hardware.SystemSpec.per_rank`).
    Model of the work (all per rank, for its share of the batch):

    * attention and dense FFN weights are split ``tp`` ways (heads / intermediate columns),
      each tensor-parallel layer ends in an all-reduce of its activations over ``tp``;
    * MoE layers spread the routed experts (and any redundant copies) over the ``ep``
      ranks of the expert group less those hosting the shared expert; the busiest rank's
      share follows the routing skew, the placement and the sampling noise
      (:func:`~supernode.fabric.system.moe.expert_load`); tokens are dispatched (8-bit when the
      experts are) and combined (BF16) over ``ep``;
    * with two-batch overlap the blocks hold the ops of one of two micro-batches, and
      the estimator schedules both on a compute and a fabric stream;
    * with a spatial pipeline the blocks hold the ops of one of two micro-batches too,
      each op tagged with the stream whose share of the rank's cores runs it: attention
      (its projections, norms, the attention kernel, its all-reduce), the LM head and the
      prediction module's head on the attention stream; the router, dispatch, experts,
      combine and the dense layers' FFN on the MoE stream (:func:`_streams`);
    * decode with multi-token prediction verifies ``1 + mtp`` tokens per sequence, runs
      the prediction module (one MoE layer and the head) per draft and keeps
      ``1 + a + a^2 ...`` tokens;
    * pipeline stages hold ``layers / pp`` layers and pass activations with a send;
    * decode reads the whole KV cache of its sequences every step; prefill attention is
      causal over the prompt and attends to any cached prefix; attention is fused (the
      score matrix stays on chip).
    """
    chip = system.chip
    precision = chip.resolve_precision(run.precision)
    exp_precision = chip.resolve_precision(run.expert_precision)
    att_precision = chip.resolve_precision(run.attention_precision)
    kv_precision = chip.resolve_precision(run.kv_precision)
    tp, pp, dp, ep = mapping.tp, mapping.pp, mapping.dp, mapping.ep
    ranks = tp * pp * dp
    if ranks > system.chips:
        raise UserError(f"mapping uses tp x pp x dp = {tp} x {pp} x {dp} = {ranks} ranks but "
                        f"{system.name} has {system.chips}")
    if model.is_moe and ep > tp * dp:
        raise UserError(f"expert-parallel degree ep = {ep} exceeds the ranks of one pipeline "
                        f"stage (tp x dp = {tp * dp})")
    h = model.hidden_size
    wbytes = PRECISION_BYTES[precision]
    ebytes = PRECISION_BYTES[exp_precision]
    kv_bytes = PRECISION_BYTES[kv_precision]
    decode = run.phase == "decode"
    mtp = mapping.mtp_tokens if decode else 0
    if decode:
        q_len = 1 + mtp
        ctx = run.seq_len + mtp / 2.0
    else:
        q_len = max(1, round(run.seq_len * (1.0 - run.cache_hit_rate)))
        ctx = (run.seq_len - q_len) + (q_len + 1) / 2.0
    micro = mapping.microbatches if pp > 1 else 1
    notes = []
    stream_cores = mapping.streams(chip)
    halves = 2 if mapping.two_batch_overlap or stream_cores else 1
    on = _streams(bool(stream_cores))
    if stream_cores:
        (_, a_cube, a_vec, a_mem), (_, m_cube, m_vec, m_mem) = stream_cores
        notes.append(f"spatial pipeline: two micro-batches alternate between the attention "
                     f"stream ({a_cube} cube + {a_vec} vector cores, {a_mem:.0%} of the HBM "
                     f"bandwidth) and the MoE stream ({m_cube} + {m_vec}, {m_mem:.0%})")
    seqs_stage = _ceil_div(run.batch, dp * micro)   # sequences per replica per microbatch
    seqs = seqs_stage / halves                       # ... per overlapped half
    t = seqs * q_len                                 # tokens per rank per half
    heads = _ceil_div(model.heads, tp)
    if run.batch < dp * micro:
        notes.append(f"batch {run.batch} is smaller than dp x microbatches = {dp * micro}: "
                     f"some replicas idle")
    tp_tier = mapping.tier_for("tp", tp, system)
    ep_tier = mapping.tier_for("ep", ep, system) if model.is_moe else None
    pp_tier = mapping.tier_for("pp", pp, system)

    def rows(x):
        return max(1, math.ceil(x - 1e-9))

    def weight_gemm(name, m, k, n, batch=1.0, prec=precision):
        return Gemm(name, m=rows(m), k=int(k), n=int(n), batch=batch, precision=prec,
                    a_bytes=ACT_BYTES, b_bytes=PRECISION_BYTES[prec], c_bytes=ACT_BYTES,
                    b_is_weight=True)

    def act_gemm(name, m, k, n, batch, *, a_bytes=ACT_BYTES, b_bytes=kv_bytes,
                 c_bytes=ACT_BYTES):
        # The attention kernel on activations and the KV cache. An operand of 0 bytes stays
        # on chip (fused attention: the score matrix is never written out; the latent read
        # for the scores is reused for the values).
        return Gemm(name, m=rows(m), k=int(k), n=max(1, int(round(n))), batch=batch,
                    precision=att_precision, a_bytes=a_bytes, b_bytes=b_bytes,
                    c_bytes=c_bytes, b_is_weight=False)

    def tp_all_reduce(name):
        if tp == 1:
            return []
        return [Comm(name, "all_reduce", t * h * ACT_BYTES, tp, tp_tier.name)]

    # attention ---------------------------------------------------------------------------
    attn = []
    if model.attention == "gqa":
        kvh = _ceil_div(model.kv_heads, tp)
        hd = model.head_dim
        group = max(1, heads // kvh)
        attn.append(weight_gemm("qkv projection", t, h, (heads + 2 * kvh) * hd))
        attn.append(act_gemm("attention scores", q_len * group, hd, ctx, seqs * kvh,
                             c_bytes=0))
        attn.append(act_gemm("attention x V", q_len * group, max(1, round(ctx)), hd, seqs * kvh,
                             a_bytes=0))
        attn.append(weight_gemm("output projection", t, heads * hd, h))
    else:
        nope, rope, v = model.qk_nope_head_dim, model.qk_rope_head_dim, model.v_head_dim
        lat = model.kv_lora_rank
        attn.append(weight_gemm("q down-projection", t, h, model.q_lora_rank))
        attn.append(weight_gemm("q up-projection", t, model.q_lora_rank, heads * (nope + rope)))
        attn.append(weight_gemm("kv down-projection", t, h, lat + rope))
        if decode:
            # Weight absorption: scores and values are taken on the shared latent directly.
            attn.append(weight_gemm("absorb W_UK", t, nope, lat, batch=heads,
                                    prec=att_precision))
            attn.append(act_gemm("latent attention scores", q_len * heads, lat + rope, ctx, seqs,
                                 c_bytes=0))
            attn.append(act_gemm("latent attention x V", q_len * heads, max(1, round(ctx)), lat,
                                 seqs, a_bytes=0, b_bytes=0))
            attn.append(weight_gemm("absorb W_UV", t, lat, v, batch=heads, prec=att_precision))
        else:
            attn.append(weight_gemm("kv up-projection", t, lat, heads * (nope + v)))
            attn.append(act_gemm("attention scores", q_len, nope + rope, ctx, seqs * heads,
                                 c_bytes=0))
            attn.append(act_gemm("attention x V", q_len, max(1, round(ctx)), v, seqs * heads,
                                 a_bytes=0))
        attn.append(weight_gemm("output projection", t, heads * v, h))
    # Element-wise passes over each token's activations outside the fused kernels: the
    # input norm (read BF16, write BF16), the residual add (two reads, one write) and the
    # latent / query norms and rotary embedding (read and write of their vectors).
    latent = (model.q_lora_rank + model.kv_lora_rank if model.attention == "mla"
              else heads * model.head_dim)
    attn.append(Vector("softmax and norms", 5.0 * seqs * heads * q_len * ctx + 10.0 * t * h,
                       bytes=t * ACT_BYTES * (5 * h + 2 * latent)))
    attn += tp_all_reduce("attention all-reduce (tp)")

    def quantise(ops, prec):
        # Activations are quantised (block scale and cast) before every low-precision GEMM.
        if PRECISION_BYTES[prec] >= ACT_BYTES:
            return []
        elems = sum(op.m * op.k * op.batch for op in ops if isinstance(op, Gemm))
        return [Vector("quantise activations", 3.0 * elems,
                       bytes=elems * (ACT_BYTES + PRECISION_BYTES[prec]))]

    # FFN -----------------------------------------------------------------------------------
    def dense_ffn(inter):
        cols = _ceil_div(inter, tp)
        gemms = [weight_gemm("ffn gate+up", t, h, 2 * cols), weight_gemm("ffn down", t, cols, h)]
        return ([gemms[0], Vector("swiglu", 4.0 * t * cols, bytes=t * cols * 3 * ACT_BYTES),
                 gemms[1]]
                + quantise(gemms, precision) + tp_all_reduce("ffn all-reduce (tp)"))

    attn = on("attention", attn + quantise([op for op in attn if isinstance(op, Gemm)
                                            and op.b_is_weight], precision))
    blocks = []
    layers_per_stage = _ceil_div(model.layers, pp)
    # The slowest stage: as many MoE layers as a stage holds, the rest dense.
    moe_share = min(model.moe_layers, layers_per_stage)
    dense_share = layers_per_stage - moe_share
    if dense_share:
        blocks.append(Block("dense layer",
                            tuple(attn + on("moe", dense_ffn(model.ffn_intermediate))),
                            dense_share))
    expert_weight_bytes = 0.0
    moe_layer = ()
    if model.is_moe and moe_share:
        moe_layer = _moe_ops(model, mapping, system, ep_tier, t=t, seqs=seqs, decode=decode,
                             exp_precision=exp_precision, weight_gemm=weight_gemm,
                             quantise=quantise, notes=notes)
        moe_layer = replace(moe_layer, ops=tuple(on("moe", moe_layer.ops)))
        blocks.append(Block("moe layer", tuple(attn) + moe_layer.ops, moe_share))
        expert_weight_bytes = moe_share * moe_layer.slots * model.expert_params() * ebytes
        if mapping.shared_expert == "local" and model.shared_experts:
            expert_weight_bytes += (moe_share * model.shared_experts * model.expert_params()
                                    * ebytes)
    head_tokens = seqs * q_len if decode else seqs
    blocks.append(Block("lm head", tuple(on("attention", [
        weight_gemm("lm head", head_tokens, h, _ceil_div(model.vocab_size, tp))])), 1))
    if mtp and moe_layer:
        blocks.append(Block("multi-token prediction", tuple(attn) + moe_layer.ops + tuple(
            on("attention", [weight_gemm("mtp head", seqs, h,
                                         _ceil_div(model.vocab_size, tp))])), mtp))
    if pp > 1:
        blocks.append(Block("pipeline send", tuple(on("attention", [
            Comm("stage send (pp)", "send", t * h * ACT_BYTES, 2, pp_tier.name)])), 1))
    # Resident memory of one rank.
    dense_params = (layers_per_stage * model.attention_params()
                    + dense_share * model.dense_ffn_params() + model.embedding_params())
    weight_bytes = dense_params * wbytes / tp + expert_weight_bytes
    if mtp and moe_layer:
        weight_bytes += (model.attention_params() * wbytes
                         + model.expert_params() * ebytes * (moe_layer.slots + 1))
    kv = (seqs_stage * micro * (run.seq_len + mtp) * layers_per_stage
          * model.kv_elements_per_token() * kv_bytes)
    kv /= tp if model.attention == "gqa" else 1
    produced = _tokens_produced(mtp, mapping.mtp_acceptance) if decode else 1.0
    if mtp:
        notes.append(f"multi-token prediction: {mtp} draft token(s) per step, acceptance "
                     f"{mapping.mtp_acceptance:.0%}, {produced:.2f} tokens per sequence per step")
    # Prefill serves whole prompts, cached prefixes included; decode counts output tokens.
    tokens_per_step = run.batch * (q_len if decode else run.seq_len)
    return Program(blocks=tuple(blocks), chips=ranks, tokens=tokens_per_step,
                   output_tokens=run.batch * produced, pipeline_stages=pp, microbatches=micro,
                   overlap_microbatches=halves, weight_bytes=weight_bytes, kv_cache_bytes=kv,
                   tokens_per_sequence=produced, bulk_comm=not decode,
                   stream_cores=stream_cores, notes=tuple(notes))


def _streams(spatial: bool):
    """``on(stream, ops)``: the ops tagged to run on ``stream`` of a spatial pipeline, or
    unchanged without one.

    Placement follows the deployment the pipeline describes (attention path on one stream,
    MoE path on the other). Where it says nothing:

    * a dense layer's FFN runs on the MoE stream: it takes the MoE layer's place in the
      layer, so one micro-batch's attention still runs beside the other's FFN and the
      cores are never re-split between layers (running it on the whole rank would need
      both streams to drain first, a barrier each dense layer);
    * the LM head and the prediction module's head run on the attention stream: they are
      dense projections of each token like the output projection, and after a layer's
      MoE path the attention stream is the one a micro-batch goes to next, so the two
      micro-batches keep alternating with no barrier;
    * a pipeline-parallel send goes with the attention stream for the same reason.
    """
    def on(stream, ops):
        return [replace(op, stream=stream) for op in ops] if spatial else list(ops)
    return on


@dataclass(frozen=True)
class _MoeOps:
    ops: tuple
    slots: int


def _moe_ops(model, mapping, system, ep_tier, *, t, seqs, decode, exp_precision,
             weight_gemm, quantise, notes) -> _MoeOps:
    """The router, dispatch, experts and combine of one MoE layer on the busiest rank."""
    h, E, k = model.hidden_size, model.routed_experts, model.active_experts
    ep = mapping.ep
    inter = model.moe_intermediate
    routed_shared = mapping.shared_expert == "routed" and model.shared_experts
    shared_ranks = mapping.shared_expert_ranks if routed_shared else 0
    routed_ranks = ep - shared_ranks
    group_tokens = t * ep
    mean = group_tokens * k / routed_ranks             # (token, expert) pairs per rank
    # The step's sequences each bring their own routing preference; the more of them a
    # step gathers, the closer its expert loads come to the long-run ones.
    step_cv = step_spread(model.sequence_load_cv, seqs * ep)
    load = expert_load(experts=E, ranks=routed_ranks, redundant=mapping.redundant_experts,
                       balancer=mapping.expert_balancer, cv=model.expert_load_cv,
                       step_cv=step_cv, tokens_per_rank=mean)
    if mapping.perfect_balance:
        load = replace(load, placement_imbalance=1.0, imbalance=1.0)
    busiest = mean * load.imbalance
    per_slot = busiest / load.slots
    touched = 1.0 - math.exp(-per_slot) if per_slot < 1 else 1.0
    routed = [weight_gemm("routed experts gate+up", per_slot, h, 2 * inter,
                          batch=load.slots * touched, prec=exp_precision),
              Vector("routed swiglu", 4.0 * busiest * inter,
                     bytes=busiest * inter * 3 * ACT_BYTES),
              weight_gemm("routed experts down", per_slot, inter, h,
                          batch=load.slots * touched, prec=exp_precision)]
    routed += quantise(routed, exp_precision)
    shared = []
    if model.shared_experts:
        rows = group_tokens / shared_ranks if routed_shared else t
        shared = [weight_gemm("shared expert gate+up", rows, h, 2 * inter * model.shared_experts,
                              prec=exp_precision),
                  weight_gemm("shared expert down", rows, inter * model.shared_experts, h,
                              prec=exp_precision)]
    experts = ([Parallel("experts", (tuple(routed), tuple(shared)))] if routed_shared
               else routed + shared)
    copies = k + (model.shared_experts if routed_shared else 0)
    dispatch_bytes = min(PRECISION_BYTES[exp_precision], 1) if PRECISION_BYTES[
        exp_precision] < ACT_BYTES else ACT_BYTES
    remote = 0.0
    node = system.scale_up_tiers[0] if system.scale_up_tiers else None
    if (not decode and ep_tier.plane == "rdma" and node is not None
            and node.span_chips < ep):
        # Normal-mode kernels send each token once per remote node and forward it there.
        nodes = math.ceil(ep / node.span_chips)
        limit = model.max_nodes_per_token or nodes
        remote = distinct_nodes(k, nodes, max(1, E // nodes), limit) * (nodes - 1) / nodes
    # The busiest rank reorders what it receives by expert before the grouped GEMMs; each
    # token's expert outputs come back and are summed with their routing weights.
    permute = Vector("permute received tokens", 0.0,
                     bytes=busiest * h * dispatch_bytes * 2)
    gather = Vector("weighted sum of expert outputs", 2.0 * t * copies * h,
                    bytes=t * copies * h * ACT_BYTES + t * h * ACT_BYTES)
    ops = [weight_gemm("router", t, h, E),
           Comm("moe dispatch (ep)", "dispatch", t * copies * h * dispatch_bytes, ep,
                ep_tier.name, imbalance=load.imbalance, copies=copies, remote_nodes=remote,
                low_latency=decode),
           permute, *experts,
           Comm("moe combine (ep)", "combine", t * copies * h * ACT_BYTES, ep, ep_tier.name,
                imbalance=load.imbalance, copies=copies, remote_nodes=remote,
                low_latency=decode),
           gather]
    if ep == 1:
        ops = [op for op in ops if not isinstance(op, Comm)]
    placement = ("every copy equally loaded" if mapping.perfect_balance
                 else "placed by load" if mapping.expert_balancer else "in index order")
    shared_where = f"on {shared_ranks} ranks of its own" if routed_shared else "on every rank"
    notes.append(f"MoE: {E} routed experts + {mapping.redundant_experts} redundant over "
                 f"{routed_ranks} ranks ({load.slots} per rank, {placement}), "
                 f"shared expert {shared_where}; "
                 f"busiest rank {load.imbalance:.2f} x the mean load ({mean:.1f} pairs)")
    return _MoeOps(ops=tuple(ops), slots=load.slots)


def gemm_program(work: GemmWorkload, mapping: Mapping, system: SystemSpec) -> Program:
    """One GEMM on ``tp`` packages: ``n`` split ``tp`` ways, then an all-gather of ``C``."""
    precision = system.chip.resolve_precision(work.precision)
    tp = mapping.tp
    wbytes = PRECISION_BYTES[precision]
    cols = _ceil_div(work.n, tp)
    ops = [Gemm("gemm", m=work.m, k=work.k, n=cols, precision=precision, a_bytes=wbytes,
                b_bytes=wbytes, c_bytes=ACT_BYTES, b_is_weight=True)]
    if tp > 1:
        ops.append(Comm("output all-gather", "all_gather", work.m * work.n * ACT_BYTES, tp,
                        mapping.tier_for("tp", tp, system).name))
    return Program(blocks=(Block("gemm", tuple(ops)),), chips=tp, tokens=work.m,
                   output_tokens=work.m, weight_bytes=work.k * cols * wbytes)


def collective_program(work: CollectiveWorkload, mapping: Mapping,
                       system: SystemSpec) -> Program:
    """One collective over ``group`` packages on the smallest tier that holds them."""
    tier = mapping.tier_for("collective", work.group, system)
    op = Comm(work.op.replace("_", "-"), work.op, work.size_bytes, work.group, tier.name)
    return Program(blocks=(Block("collective", (op,)),), chips=work.group, tokens=0.0,
                   output_tokens=0.0)
