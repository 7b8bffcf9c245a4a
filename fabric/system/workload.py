"""Workloads as data: GEMMs, collectives and whole LLMs, turned into per-package step programs."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from rtl.errors import UserError

from .config import Table, find_config, read_toml
from .hardware import EIGHT_BIT, PRECISION_BYTES, PRECISIONS

__all__ = [
    "PHASES", "COLLECTIVES", "Gemm", "Vector", "Comm", "Block", "Program", "RunSettings",
    "LlmModel", "GemmWorkload", "CollectiveWorkload", "load_workload", "gemm_workload",
    "collective_workload",
]

PHASES = ("prefill", "decode")
COLLECTIVES = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "send")
ATTENTIONS = ("gqa", "mla")

#: Bytes of an activation element moved or kept in BF16.
ACT_BYTES = PRECISION_BYTES["bf16"]


# --- the step program: what one package does in one step ------------------------------

@dataclass(frozen=True)
class Gemm:
    """``batch`` independent GEMMs ``C[m, n] = A[m, k] @ B[k, n]`` on one package.

    Members
    -------
    name : str
    m, k, n : int
    batch : float
        How many such GEMMs per step (fractional when it is an expected count).
    precision : str
        Precision the matrix unit runs at.
    a_bytes, b_bytes, c_bytes : int
        Element sizes of the operands and the result.
    b_is_weight : bool
        ``B`` is a weight (read from HBM every step), not an activation or the KV cache.
    """
    name: str
    m: int
    k: int
    n: int
    batch: float = 1.0
    precision: str = "bf16"
    a_bytes: int = ACT_BYTES
    b_bytes: int = ACT_BYTES
    c_bytes: int = ACT_BYTES
    b_is_weight: bool = True

    @property
    def flops(self) -> float:
        return 2.0 * self.m * self.k * self.n * self.batch


@dataclass(frozen=True)
class Vector:
    """Element-wise work (norms, softmax, activations) on the vector units."""
    name: str
    flops: float


@dataclass(frozen=True)
class Comm:
    """One collective over a group of packages on one fabric tier.

    Members
    -------
    name : str
    kind : str
        One of :data:`COLLECTIVES`.
    bytes_per_chip : float
        The collective's size as seen by one package (its whole buffer; for ``all_to_all``
        everything it sends, for ``send`` the message).
    group : int
        Packages taking part.
    tier : str
        Fabric tier the group spans.
    overlap : float
        Fraction of this transfer that may run under the block's compute (0..1).
    """
    name: str
    kind: str
    bytes_per_chip: float
    group: int
    tier: str
    overlap: float = 0.0


@dataclass(frozen=True)
class Block:
    """A run of identical layers: the ops of one, repeated ``repeat`` times."""
    name: str
    ops: tuple
    repeat: int = 1


@dataclass(frozen=True)
class Program:
    """Everything one package does in one step, and what the step produces.

    Members
    -------
    blocks : tuple of Block
    chips : int
        Packages the step runs on.
    tokens : float
        Tokens the whole step produces (decode: one per sequence; prefill: the prompts).
    output_tokens : float
        Sequences that get a next token (decode throughput counts these).
    pipeline_stages, microbatches : int
        Step time is ``(microbatches + stages - 1)`` stage times, GPipe style.
    weight_bytes, kv_cache_bytes : float
        Resident in one package's HBM.
    notes : tuple of str
    """
    blocks: tuple
    chips: int
    tokens: float
    output_tokens: float
    pipeline_stages: int = 1
    microbatches: int = 1
    weight_bytes: float = 0.0
    kv_cache_bytes: float = 0.0
    notes: tuple = ()


@dataclass(frozen=True)
class RunSettings:
    """The inputs of one LLM step that are neither hardware nor mapping.

    Members
    -------
    phase : str
        ``"prefill"`` or ``"decode"``.
    batch : int
        Sequences in the step (global, over all data-parallel replicas).
    seq_len : int
        Prompt length (prefill) or context length already in the KV cache (decode).
    precision : str
        Weights and matrix precision (``"bf16"``, ``"fp8"``, ``"int8"``); attention
        scores and the KV cache run at this precision too when it is 8-bit.
    """
    phase: str
    batch: int
    seq_len: int
    precision: str

    def __post_init__(self):
        if self.phase not in PHASES:
            raise UserError(f"phase {self.phase!r} is not accepted; accepted: "
                            f"{', '.join(PHASES)}")
        for name in ("batch", "seq_len"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"{name} must be a positive whole number, not {value!r}")
        if self.precision not in PRECISIONS + (EIGHT_BIT,):
            raise UserError(f"precision {self.precision!r} is not accepted; accepted: "
                            f"{', '.join(PRECISIONS + (EIGHT_BIT,))}")


# --- workloads ----------------------------------------------------------------------------

@dataclass(frozen=True)
class LlmModel:
    """A decoder-only transformer, dense or mixture-of-experts, from its model card.

    Members
    -------
    name, description : str
    layers : int
    dense_layers : int
        Layers with a dense FFN (all of them for a dense model; the first few for MoE).
    hidden_size, vocab_size, heads : int
    attention : str
        ``"gqa"`` (grouped-query) or ``"mla"`` (multi-head latent attention).
    kv_heads, head_dim : int
        GQA only (0 for MLA).
    q_lora_rank, kv_lora_rank, qk_nope_head_dim, qk_rope_head_dim, v_head_dim : int
        MLA only (0 for GQA).
    ffn_intermediate : int
        Intermediate size of a dense FFN (SwiGLU: gate, up and down projections).
    moe_intermediate, routed_experts, shared_experts, active_experts : int
        MoE only (0 for a dense model).
    published_params, published_active_params : float
        From the model card, to check the parameter count derived from the shapes.
    defaults : Mapping[str, Mapping[str, object]]
        Per phase: ``batch_per_chip``, ``seq_len`` and ``precision``.
    sources : Mapping[str, Provenance]
    """
    name: str
    description: str
    layers: int
    dense_layers: int
    hidden_size: int
    vocab_size: int
    heads: int
    attention: str
    kv_heads: int
    head_dim: int
    q_lora_rank: int
    kv_lora_rank: int
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int
    ffn_intermediate: int
    moe_intermediate: int
    routed_experts: int
    shared_experts: int
    active_experts: int
    published_params: float
    published_active_params: float
    defaults: MappingProxyType = field(repr=False, compare=False)
    sources: MappingProxyType = field(repr=False, compare=False)
    path: Path = field(repr=False, compare=False, default=None)

    kind = "llm"

    @property
    def is_moe(self) -> bool:
        return self.routed_experts > 0

    @property
    def moe_layers(self) -> int:
        return self.layers - self.dense_layers

    # parameters, from the shapes -------------------------------------------------------
    def attention_params(self) -> int:
        """Parameters of one attention block (projections only)."""
        h = self.hidden_size
        if self.attention == "gqa":
            return h * self.heads * self.head_dim * 2 + h * self.kv_heads * self.head_dim * 2
        qk = self.qk_nope_head_dim + self.qk_rope_head_dim
        return (h * self.q_lora_rank + self.q_lora_rank * self.heads * qk
                + h * (self.kv_lora_rank + self.qk_rope_head_dim)
                + self.kv_lora_rank * self.heads * (self.qk_nope_head_dim + self.v_head_dim)
                + self.heads * self.v_head_dim * h)

    def expert_params(self) -> int:
        """One routed or shared expert (SwiGLU)."""
        return 3 * self.hidden_size * self.moe_intermediate

    def dense_ffn_params(self) -> int:
        return 3 * self.hidden_size * self.ffn_intermediate

    def embedding_params(self) -> int:
        """Input embedding and output head (untied)."""
        return 2 * self.vocab_size * self.hidden_size

    def params(self) -> float:
        """All parameters, from the layer shapes (norms left out: < 0.01 %)."""
        moe = self.moe_layers * ((self.routed_experts + self.shared_experts)
                                 * self.expert_params()
                                 + self.hidden_size * self.routed_experts)
        return (self.layers * self.attention_params()
                + self.dense_layers * self.dense_ffn_params() + moe + self.embedding_params())

    def active_params(self) -> float:
        """Parameters a token touches."""
        moe = self.moe_layers * ((self.active_experts + self.shared_experts)
                                 * self.expert_params()
                                 + self.hidden_size * self.routed_experts)
        return (self.layers * self.attention_params()
                + self.dense_layers * self.dense_ffn_params() + moe + self.embedding_params())

    def kv_elements_per_token(self) -> int:
        """KV-cache elements one token keeps per layer."""
        if self.attention == "gqa":
            return 2 * self.kv_heads * self.head_dim
        return self.kv_lora_rank + self.qk_rope_head_dim

    def settings(self, *, phase: str, batch=None, seq_len=None, precision=None,
                 chips: int = 1) -> RunSettings:
        """Run settings, taking the model's per-phase defaults for what is not given."""
        if phase not in PHASES:
            raise UserError(f"phase {phase!r} is not accepted; accepted: {', '.join(PHASES)}")
        default = self.defaults[phase]
        if batch is None:
            batch = int(default["batch_per_chip"] * chips)
        return RunSettings(phase=phase, batch=batch,
                           seq_len=default["seq_len"] if seq_len is None else seq_len,
                           precision=default["precision"] if precision is None else precision)


@dataclass(frozen=True)
class GemmWorkload:
    """One GEMM ``C[m, n] = A[m, k] @ B[k, n]``, optionally split over ``n`` on a group.

    Members
    -------
    name : str
    m, k, n : int
    precision : str
    """
    name: str
    m: int
    k: int
    n: int
    precision: str = "bf16"
    kind = "gemm"


@dataclass(frozen=True)
class CollectiveWorkload:
    """One collective of ``size_bytes`` per package over a group of packages."""
    name: str
    op: str
    size_bytes: float
    group: int
    kind = "collective"


def gemm_workload(m: int, k: int, n: int, *, precision: str = "bf16") -> GemmWorkload:
    """A GEMM workload, checking its shape."""
    for label, value in (("m", m), ("k", k), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(f"GEMM dimension {label} must be a positive whole number, "
                            f"not {value!r}")
    if precision not in PRECISIONS + (EIGHT_BIT,):
        raise UserError(f"precision {precision!r} is not accepted; accepted: "
                        f"{', '.join(PRECISIONS + (EIGHT_BIT,))}")
    return GemmWorkload(name=f"gemm-{m}x{k}x{n}", m=m, k=k, n=n, precision=precision)


def collective_workload(op: str, size_bytes: float, group: int) -> CollectiveWorkload:
    """A collective workload, checking its arguments."""
    if op not in COLLECTIVES:
        raise UserError(f"collective {op!r} is not accepted; accepted: {', '.join(COLLECTIVES)}")
    if not size_bytes > 0:
        raise UserError(f"collective size must be a positive number of bytes, not {size_bytes!r}")
    if isinstance(group, bool) or not isinstance(group, int) or group < 2:
        raise UserError(f"collective group must be a whole number of at least 2 packages, "
                        f"not {group!r}")
    return CollectiveWorkload(name=f"{op} of {size_bytes / 1e6:g} MB over {group}", op=op,
                              size_bytes=float(size_bytes), group=group)


_LLM_INTS = ("layers", "dense_layers", "hidden_size", "vocab_size", "heads", "ffn_intermediate")
_GQA_INTS = ("kv_heads", "head_dim")
_MLA_INTS = ("q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim",
             "v_head_dim")
_MOE_INTS = ("moe_intermediate", "routed_experts", "shared_experts", "active_experts")


def load_workload(name_or_path):
    """Load a workload file (``"deepseek-r1"``, ``"llama3-70b"`` or a path to a TOML file).

    Raises
    ------
    UserError
        Naming the file, key and value of any missing, unknown or invalid entry.
    """
    path = find_config("workloads", str(name_or_path))
    top = Table(read_toml(path), path=path, section="")
    kind = top.text("kind", choices=("llm", "gemm", "collective"))
    name = top.text("name")
    description = top.text("description")
    if kind == "gemm":
        t = top.sub("gemm")
        w = gemm_workload(t.number("m", sourced=False, integer=True),
                          t.number("k", sourced=False, integer=True),
                          t.number("n", sourced=False, integer=True),
                          precision=t.text("precision", choices=PRECISIONS + (EIGHT_BIT,)))
        t.finish()
        top.finish()
        return GemmWorkload(name=name, m=w.m, k=w.k, n=w.n, precision=w.precision)
    if kind == "collective":
        t = top.sub("collective")
        w = collective_workload(t.text("op", choices=COLLECTIVES),
                                t.number("size_bytes", sourced=False),
                                t.number("group", sourced=False, integer=True))
        t.finish()
        top.finish()
        return CollectiveWorkload(name=name, op=w.op, size_bytes=w.size_bytes, group=w.group)
    model = top.sub("model")
    attention = model.text("attention", choices=ATTENTIONS)
    ints = list(_LLM_INTS) + list(_GQA_INTS if attention == "gqa" else _MLA_INTS)
    is_moe = model.has("routed_experts")
    if is_moe:
        ints += _MOE_INTS
    values = {key: model.number(key, integer=True, strict=key not in ("dense_layers",
                                                                       "shared_experts"))
              for key in ints}
    for key in _GQA_INTS + _MLA_INTS + _MOE_INTS:
        values.setdefault(key, 0)
    values["published_params"] = model.number("published_params")
    values["published_active_params"] = model.number("published_active_params")
    model.finish()
    if values["dense_layers"] > values["layers"]:
        raise UserError(f"{model.where}: dense_layers = {values['dense_layers']} exceeds "
                        f"layers = {values['layers']}")
    if not is_moe and values["dense_layers"] != values["layers"]:
        raise UserError(f"{model.where}: a dense model needs dense_layers = layers "
                        f"({values['layers']}), not {values['dense_layers']}")
    if is_moe and values["active_experts"] > values["routed_experts"]:
        raise UserError(f"{model.where}: active_experts = {values['active_experts']} exceeds "
                        f"routed_experts = {values['routed_experts']}")
    defaults_t = top.sub("defaults")
    defaults = {}
    for phase in PHASES:
        t = defaults_t.sub(phase)
        defaults[phase] = MappingProxyType({
            "batch_per_chip": t.number("batch_per_chip", sourced=False),
            "seq_len": t.number("seq_len", sourced=False, integer=True),
            "precision": t.text("precision", choices=PRECISIONS + (EIGHT_BIT,))})
        t.finish()
    defaults_t.finish()
    top.finish()
    return LlmModel(name=name, description=description, attention=attention,
                    defaults=MappingProxyType(defaults), sources=MappingProxyType(model.sources),
                    path=path, **values)


# --- LLM step programs -----------------------------------------------------------------

def _ceil_div(a: float, b: float) -> int:
    return max(1, math.ceil(a / b - 1e-9))


def llm_program(model: LlmModel, run: RunSettings, mapping, system) -> Program:
    """The step program of one package for an LLM step under ``mapping`` on ``system``.

    Model of the work (all per package, for its share of the batch):

    * attention and dense FFN weights are split ``tp`` ways (heads / intermediate columns),
      each tensor-parallel layer ends in an all-reduce of its activations over ``tp``;
    * MoE layers spread the routed experts over ``ep`` packages; tokens are routed
      uniformly (each expert gets ``tokens x active / experts``), dispatched and combined
      with two all-to-alls over ``ep``; the shared expert runs where the token is;
    * pipeline stages hold ``layers / pp`` layers and pass activations with a send;
    * decode reads the whole KV cache of its sequences every step; prefill attention is
      causal (half the score matrix on average); attention is fused (the score matrix
      stays on chip).
    """
    chip = system.chip
    precision = chip.resolve_precision(run.precision)
    tp, pp, dp, ep = mapping.tp, mapping.pp, mapping.dp, mapping.ep
    chips = tp * pp * dp
    if chips > system.chips:
        raise UserError(f"mapping uses tp x pp x dp = {tp} x {pp} x {dp} = {chips} packages but "
                        f"{system.name} has {system.chips}")
    if model.is_moe and ep > tp * dp:
        raise UserError(f"expert-parallel degree ep = {ep} exceeds the packages of one pipeline "
                        f"stage (tp x dp = {tp * dp})")
    h = model.hidden_size
    wbytes = PRECISION_BYTES[precision]
    kv_bytes = wbytes
    attn_precision = precision
    decode = run.phase == "decode"
    q_len = 1 if decode else run.seq_len
    ctx = run.seq_len if decode else (run.seq_len + 1) / 2.0
    micro = mapping.microbatches if pp > 1 else 1
    seqs = _ceil_div(run.batch, dp * micro)         # sequences per replica per microbatch
    t = seqs * q_len                                 # tokens per package per microbatch
    heads = _ceil_div(model.heads, tp)
    notes = []
    if run.batch < dp * micro:
        notes.append(f"batch {run.batch} is smaller than dp x microbatches = {dp * micro}: "
                     f"some replicas idle")
    tp_tier = mapping.tier_for("tp", tp, system)
    ep_tier = mapping.tier_for("ep", ep, system) if model.is_moe else None
    pp_tier = mapping.tier_for("pp", pp, system)

    def weight_gemm(name, m, k, n, batch=1.0):
        return Gemm(name, m=int(m), k=int(k), n=int(n), batch=batch, precision=precision,
                    a_bytes=ACT_BYTES, b_bytes=wbytes, c_bytes=ACT_BYTES, b_is_weight=True)

    def act_gemm(name, m, k, n, batch, *, a_bytes=ACT_BYTES, b_bytes=kv_bytes,
                 c_bytes=ACT_BYTES):
        # Attention on activations and the KV cache: 8-bit when the run is 8-bit. An
        # operand of 0 bytes stays on chip (fused attention: the score matrix is never
        # written out; the latent read for the scores is reused for the values).
        return Gemm(name, m=int(m), k=int(k), n=max(1, int(round(n))), batch=batch,
                    precision=attn_precision, a_bytes=a_bytes, b_bytes=b_bytes,
                    c_bytes=c_bytes, b_is_weight=False)

    def tp_all_reduce(name):
        if tp == 1:
            return []
        return [Comm(name, "all_reduce", t * h * ACT_BYTES, tp, tp_tier.name,
                     mapping.overlap["tp"])]

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
            attn.append(weight_gemm("absorb W_UK", t, nope, lat, batch=heads))
            attn.append(act_gemm("latent attention scores", q_len * heads, lat + rope, ctx, seqs,
                                 c_bytes=0))
            attn.append(act_gemm("latent attention x V", q_len * heads, max(1, round(ctx)), lat,
                                 seqs, a_bytes=0, b_bytes=0))
            attn.append(weight_gemm("absorb W_UV", t, lat, v, batch=heads))
        else:
            attn.append(weight_gemm("kv up-projection", t, lat, heads * (nope + v)))
            attn.append(act_gemm("attention scores", q_len, nope + rope, ctx, seqs * heads,
                                 c_bytes=0))
            attn.append(act_gemm("attention x V", q_len, max(1, round(ctx)), v, seqs * heads,
                                 a_bytes=0))
        attn.append(weight_gemm("output projection", t, heads * v, h))
    attn.append(Vector("softmax and norms", 5.0 * seqs * heads * q_len * ctx + 10.0 * t * h))
    attn += tp_all_reduce("attention all-reduce (tp)")

    # FFN -----------------------------------------------------------------------------------
    def dense_ffn(inter):
        cols = _ceil_div(inter, tp)
        return [weight_gemm("ffn gate+up", t, h, 2 * cols), Vector("swiglu", 4.0 * t * cols),
                weight_gemm("ffn down", t, cols, h)] + tp_all_reduce("ffn all-reduce (tp)")

    blocks = []
    layers_per_stage = _ceil_div(model.layers, pp)
    # The slowest stage: as many MoE layers as a stage holds, the rest dense.
    moe_share = min(model.moe_layers, layers_per_stage)
    dense_share = layers_per_stage - moe_share
    if dense_share:
        blocks.append(Block("dense layer", tuple(attn + dense_ffn(model.ffn_intermediate)),
                            dense_share))
    expert_weight_bytes = 0.0
    if model.is_moe and moe_share:
        E, k_act = model.routed_experts, model.active_experts
        # Tokens of the whole EP group, spread evenly over the experts (uniform routing).
        group_tokens = t * ep
        experts_here = max(1.0, E / ep)            # > 1 experts per package, or one replica
        per_copy = group_tokens * k_act / max(E, ep)
        touched = 1.0 - math.exp(-per_copy)         # chance a hosted expert gets any token
        n_experts = math.ceil(experts_here - 1e-9)
        inter = model.moe_intermediate
        moe = [weight_gemm("router", t, h, E)]
        moe.append(Comm("moe dispatch (ep)", "all_to_all", t * k_act * h * wbytes, ep,
                        ep_tier.name, mapping.overlap["ep"]))
        m_exp = _ceil_div(per_copy, 1)
        moe.append(weight_gemm("routed experts gate+up", m_exp, h, 2 * inter,
                               batch=n_experts * touched))
        moe.append(Vector("routed swiglu", 4.0 * per_copy * n_experts * inter))
        moe.append(weight_gemm("routed experts down", m_exp, inter, h, batch=n_experts * touched))
        if model.shared_experts:
            moe.append(weight_gemm("shared expert gate+up", t, h,
                                   2 * inter * model.shared_experts))
            moe.append(weight_gemm("shared expert down", t, inter * model.shared_experts, h))
        moe.append(Comm("moe combine (ep)", "all_to_all", t * k_act * h * ACT_BYTES, ep,
                        ep_tier.name, mapping.overlap["ep"]))
        if ep == 1:
            moe = [op for op in moe if not isinstance(op, Comm)]
        blocks.append(Block("moe layer", tuple(attn + moe), moe_share))
        expert_weight_bytes = moe_share * n_experts * model.expert_params() * wbytes
        notes.append(f"MoE: {E} routed experts over ep = {ep} packages, {experts_here:.2f} "
                     f"per package, {per_copy:.2f} tokens per expert copy, uniform routing")
    head_tokens = seqs
    blocks.append(Block("lm head", (weight_gemm("lm head", head_tokens, h,
                                                _ceil_div(model.vocab_size, tp)),), 1))
    if pp > 1:
        blocks.append(Block("pipeline send", (Comm("stage send (pp)", "send", t * h * ACT_BYTES,
                                                    2, pp_tier.name, mapping.overlap["pp"]),), 1))
    # Resident memory of one package.
    dense_params = (layers_per_stage * model.attention_params()
                    + dense_share * model.dense_ffn_params() + model.embedding_params())
    weight_bytes = dense_params * wbytes / tp + expert_weight_bytes
    if model.is_moe and model.shared_experts:
        weight_bytes += moe_share * model.shared_experts * model.expert_params() * wbytes
    kv = seqs * micro * run.seq_len * layers_per_stage * model.kv_elements_per_token() * kv_bytes
    kv /= tp if model.attention == "gqa" else 1
    tokens_per_step = run.batch * q_len
    return Program(blocks=tuple(blocks), chips=chips, tokens=tokens_per_step,
                   output_tokens=run.batch, pipeline_stages=pp, microbatches=micro,
                   weight_bytes=weight_bytes, kv_cache_bytes=kv, notes=tuple(notes))


def gemm_program(work: GemmWorkload, mapping, system) -> Program:
    """One GEMM on ``tp`` packages: ``n`` split ``tp`` ways, then an all-gather of ``C``."""
    precision = system.chip.resolve_precision(work.precision)
    tp = mapping.tp
    wbytes = PRECISION_BYTES[precision]
    cols = _ceil_div(work.n, tp)
    ops = [Gemm("gemm", m=work.m, k=work.k, n=cols, precision=precision, a_bytes=wbytes,
                b_bytes=wbytes, c_bytes=ACT_BYTES, b_is_weight=True)]
    if tp > 1:
        ops.append(Comm("output all-gather", "all_gather", work.m * work.n * ACT_BYTES, tp,
                        mapping.tier_for("tp", tp, system).name, mapping.overlap["tp"]))
    return Program(blocks=(Block("gemm", tuple(ops)),), chips=tp, tokens=work.m,
                   output_tokens=work.m, weight_bytes=work.k * cols * wbytes)


def collective_program(work: CollectiveWorkload, mapping, system) -> Program:
    """One collective over ``group`` packages on the smallest tier that holds them."""
    tier = mapping.tier_for("collective", work.group, system)
    op = Comm(work.op.replace("_", "-"), work.op, work.size_bytes, work.group, tier.name, 0.0)
    return Program(blocks=(Block("collective", (op,)),), chips=work.group, tokens=0.0,
                   output_tokens=0.0)
