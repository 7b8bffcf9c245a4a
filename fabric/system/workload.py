"""Workloads as data: GEMMs, collectives and whole LLMs, turned into per-package step programs."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

from rtl.errors import UserError

from .config import Table, find_config, read_toml
from .hardware import EIGHT_BIT, PRECISION_BYTES, PRECISIONS
from .moe import distinct_nodes, expert_load

__all__ = [
    "PHASES", "COLLECTIVES", "MOE_COMMS", "Gemm", "Vector", "Comm", "Parallel", "Block", "Program", "RunSettings",
    "LlmModel", "GemmWorkload", "CollectiveWorkload", "load_workload", "gemm_workload",
    "collective_workload",
]

PHASES = ("prefill", "decode")
COLLECTIVES = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "send")
#: The all-to-all of mixture-of-experts layers, as serving kernels run it.
MOE_COMMS = ("dispatch", "combine")
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
    """Element-wise work (norms, softmax, activations, quantisation, token permutes) on the
    vector units: ``flops`` of arithmetic and ``bytes`` read and written in HBM."""
    name: str
    flops: float
    bytes: float = 0.0


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
    imbalance : float
        For expert dispatch and combine: the busiest rank's traffic over the mean.
    copies : float
        For expert dispatch and combine: (token, expert) pairs per token in
        ``bytes_per_chip``.
    remote_nodes : float
        For expert dispatch and combine across scale-up nodes with node-level
        deduplication: remote nodes each token is sent to once (0: every pair travels
        on its own).
    low_latency : bool
        For expert dispatch and combine: the low-latency (decode) kernels rather than the
        bulk (prefill) ones.
    """
    name: str
    kind: str
    bytes_per_chip: float
    group: int
    tier: str
    imbalance: float = 1.0
    copies: float = 0.0
    remote_nodes: float = 0.0
    low_latency: bool = False


@dataclass(frozen=True)
class Parallel:
    """Work that different ranks of a group do at once; the slowest branch sets the time
    (routed experts on some ranks, the shared expert on others)."""
    name: str
    branches: tuple


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
    overlap_microbatches : int
        Micro-batches that share each stage (2 with two-batch overlap): the blocks'
        ops are those of one of them, scheduled on a compute and a fabric stream.
    weight_bytes, kv_cache_bytes : float
        Resident in one rank's HBM.
    tokens_per_sequence : float
        Tokens each decoding sequence gains per step (1 + accepted drafts).
    bulk_comm : bool
        Expert all-to-alls run as bulk (prefill) kernels, which take compute cores while
        they run (the system's ``moe.bulk_core_share``); decode's low-latency kernels do
        not.
    notes : tuple of str
    """
    blocks: tuple
    chips: int
    tokens: float
    output_tokens: float
    pipeline_stages: int = 1
    microbatches: int = 1
    overlap_microbatches: int = 1
    weight_bytes: float = 0.0
    kv_cache_bytes: float = 0.0
    tokens_per_sequence: float = 1.0
    bulk_comm: bool = False
    notes: tuple = ()


@dataclass(frozen=True)
class RunSettings:
    """The inputs of one LLM step that are neither hardware nor deployment.

    Members
    -------
    phase : str
        ``"prefill"`` or ``"decode"``.
    batch : int
        Sequences in the step (global, over all data-parallel replicas).
    seq_len : int
        Prompt length (prefill) or context length already in the KV cache (decode).
    precision : str
        Weights and matrix precision of the dense layers (``"bf16"``, ``"fp8"``,
        ``"int8"``, ``"fp4"`` or ``"8bit"``).
    expert_precision : str
        Weights and matrix precision of the routed and shared experts (the dispatch is
        sent in 8 bits when this is 8 bits or fewer).
    attention_precision : str
        Precision of the attention kernel's matrix work (scores and values).
    kv_precision : str
        Precision the KV cache is stored in.
    cache_hit_rate : float
        Prefill: share of each prompt already in the KV cache (prefix caching); those
        tokens are attended to but not computed.
    """
    phase: str
    batch: int
    seq_len: int
    precision: str
    expert_precision: str = ""
    attention_precision: str = "bf16"
    kv_precision: str = "bf16"
    cache_hit_rate: float = 0.0

    def __post_init__(self):
        if self.phase not in PHASES:
            raise UserError(f"phase {self.phase!r} is not accepted; accepted: "
                            f"{', '.join(PHASES)}")
        for name in ("batch", "seq_len"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"{name} must be a positive whole number, not {value!r}")
        if not self.expert_precision:
            object.__setattr__(self, "expert_precision", self.precision)
        for name in ("precision", "expert_precision", "attention_precision", "kv_precision"):
            value = getattr(self, name)
            if value not in PRECISIONS + (EIGHT_BIT,):
                raise UserError(f"{name.replace('_', ' ')} {value!r} is not accepted; "
                                f"accepted: {', '.join(PRECISIONS + (EIGHT_BIT,))}")
        h = self.cache_hit_rate
        if isinstance(h, bool) or not isinstance(h, (int, float)) or not 0.0 <= h < 1.0:
            raise UserError(f"cache hit rate must be a fraction from 0 up to (not including) "
                            f"1, not {h!r}")


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
    expert_load_cv : float
        Spread (coefficient of variation) of the routed experts' long-run loads.
    sequence_load_cv : float
        Spread of one sequence's expert loads around the long-run values (the tokens of a
        sequence route alike); a step of ``n`` sequences deviates by ``cv / sqrt(n)``.
    max_nodes_per_token : int
        Node-limited routing: a token's experts lie on at most this many nodes (0: no
        limit).
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
    expert_load_cv: float = 0.0
    sequence_load_cv: float = 0.0
    max_nodes_per_token: int = 0
    defaults: MappingProxyType = field(repr=False, compare=False, default=None)
    sources: MappingProxyType = field(repr=False, compare=False, default=None)
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
                 chips: int = 1, **overrides) -> RunSettings:
        """Run settings, taking the model's per-phase defaults for what is not given.

        ``chips`` is the number of ranks the default per-rank batch is multiplied by;
        ``overrides`` are further :class:`RunSettings` fields (``None`` keeps the default).
        """
        if phase not in PHASES:
            raise UserError(f"phase {phase!r} is not accepted; accepted: {', '.join(PHASES)}")
        default = self.defaults[phase]
        if batch is None:
            batch = max(1, int(default["batch_per_chip"] * chips))
        extra = {k: default[k] for k in _RUN_DEFAULTS if k in default}
        extra.update({k: v for k, v in overrides.items() if v is not None})
        return RunSettings(phase=phase, batch=batch,
                           seq_len=default["seq_len"] if seq_len is None else seq_len,
                           precision=default["precision"] if precision is None else precision,
                           **extra)


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
        entry = {"batch_per_chip": t.number("batch_per_chip", sourced=False),
                 "seq_len": t.number("seq_len", sourced=False, integer=True),
                 "precision": t.text("precision", choices=PRECISIONS + (EIGHT_BIT,))}
        for key in _RUN_DEFAULTS:
            if t.has(key):
                entry[key] = (t.number(key, sourced=False, strict=False) if key ==
                              "cache_hit_rate" else t.text(key, choices=PRECISIONS +
                                                           (EIGHT_BIT,)))
        t.finish()
        defaults[phase] = MappingProxyType(entry)
    defaults_t.finish()
    routing = top.sub("routing", required=False)
    cv = step_cv = node_limit = 0.0
    sources = dict(model.sources)
    if routing is not None:
        cv = routing.number("expert_load_cv", strict=False)
        step_cv = routing.number("sequence_load_cv", strict=False)
        node_limit = routing.number("max_nodes_per_token", integer=True, strict=False,
                                    required=False, default=0)
        routing.finish()
        sources.update({f"routing.{k}": v for k, v in routing.sources.items()})
    elif is_moe:
        raise UserError(f"{path}: a mixture-of-experts model needs a [routing] table "
                        f"(expert_load_cv, sequence_load_cv, and max_nodes_per_token when "
                        f"routing is node-limited)")
    top.finish()
    return LlmModel(name=name, description=description, attention=attention,
                    expert_load_cv=cv, sequence_load_cv=step_cv,
                    max_nodes_per_token=int(node_limit),
                    defaults=MappingProxyType(defaults), sources=MappingProxyType(sources),
                    path=path, **values)


#: Run settings a workload's ``[defaults.<phase>]`` may set besides batch, length and
#: precision.
_RUN_DEFAULTS = ("expert_precision", "attention_precision", "kv_precision", "cache_hit_rate")


# --- LLM step programs -----------------------------------------------------------------

def _ceil_div(a: float, b: float) -> int:
    return max(1, math.ceil(a / b - 1e-9))


def _tokens_produced(mtp: int, acceptance: float) -> float:
    """Tokens a sequence gains per decode step with ``mtp`` drafts accepted in a chain."""
    return 1.0 + sum(acceptance ** i for i in range(1, mtp + 1))


def llm_program(model: LlmModel, run: RunSettings, mapping, system) -> Program:
    """The step program of one rank for an LLM step under ``mapping`` on ``system``.

    ``system`` is seen per rank (:meth:`~fabric.system.hardware.SystemSpec.per_rank`).
    Model of the work (all per rank, for its share of the batch):

    * attention and dense FFN weights are split ``tp`` ways (heads / intermediate columns),
      each tensor-parallel layer ends in an all-reduce of its activations over ``tp``;
    * MoE layers spread the routed experts (and any redundant copies) over the ``ep``
      ranks of the expert group less those hosting the shared expert; the busiest rank's
      share follows the routing skew, the placement and the sampling noise
      (:func:`~fabric.system.moe.expert_load`); tokens are dispatched (8-bit when the
      experts are) and combined (BF16) over ``ep``;
    * with two-batch overlap the blocks hold the ops of one of two micro-batches, and
      the estimator schedules both on a compute and a fabric stream;
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
    halves = 2 if mapping.two_batch_overlap else 1
    seqs_stage = _ceil_div(run.batch, dp * micro)   # sequences per replica per microbatch
    seqs = seqs_stage / halves                       # ... per overlapped half
    t = seqs * q_len                                 # tokens per rank per half
    heads = _ceil_div(model.heads, tp)
    notes = []
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

    attn = attn + quantise([op for op in attn if isinstance(op, Gemm) and op.b_is_weight],
                           precision)
    blocks = []
    layers_per_stage = _ceil_div(model.layers, pp)
    # The slowest stage: as many MoE layers as a stage holds, the rest dense.
    moe_share = min(model.moe_layers, layers_per_stage)
    dense_share = layers_per_stage - moe_share
    if dense_share:
        blocks.append(Block("dense layer", tuple(attn + dense_ffn(model.ffn_intermediate)),
                            dense_share))
    expert_weight_bytes = 0.0
    moe_layer = ()
    if model.is_moe and moe_share:
        moe_layer = _moe_ops(model, mapping, system, ep_tier, t=t, seqs=seqs, decode=decode,
                             exp_precision=exp_precision, weight_gemm=weight_gemm,
                             quantise=quantise, notes=notes)
        blocks.append(Block("moe layer", tuple(attn) + moe_layer.ops, moe_share))
        expert_weight_bytes = moe_share * moe_layer.slots * model.expert_params() * ebytes
        if mapping.shared_expert == "local" and model.shared_experts:
            expert_weight_bytes += (moe_share * model.shared_experts * model.expert_params()
                                    * ebytes)
    head_tokens = seqs * q_len if decode else seqs
    blocks.append(Block("lm head", (weight_gemm("lm head", head_tokens, h,
                                                _ceil_div(model.vocab_size, tp)),), 1))
    if mtp and moe_layer:
        blocks.append(Block("multi-token prediction", tuple(attn) + moe_layer.ops + (
            weight_gemm("mtp head", seqs, h, _ceil_div(model.vocab_size, tp)),), mtp))
    if pp > 1:
        blocks.append(Block("pipeline send", (Comm("stage send (pp)", "send", t * h * ACT_BYTES,
                                                    2, pp_tier.name),), 1))
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
                   tokens_per_sequence=produced, bulk_comm=not decode, notes=tuple(notes))


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
    step_cv = model.sequence_load_cv / math.sqrt(max(1.0, seqs * ep))
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
    notes.append(f"MoE: {E} routed experts + {mapping.redundant_experts} redundant over "
                 f"{routed_ranks} ranks ({load.slots} per rank"
                 f"{', placed by load' if mapping.expert_balancer else ', in index order'}), "
                 f"shared expert {'on ' + str(shared_ranks) + ' ranks of its own' if routed_shared else 'on every rank'}; "
                 f"busiest rank {load.imbalance:.2f} x the mean load ({mean:.1f} pairs)")
    return _MoeOps(ops=tuple(ops), slots=load.slots)


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
                        mapping.tier_for("tp", tp, system).name))
    return Program(blocks=(Block("gemm", tuple(ops)),), chips=tp, tokens=work.m,
                   output_tokens=work.m, weight_bytes=work.k * cols * wbytes)


def collective_program(work: CollectiveWorkload, mapping, system) -> Program:
    """One collective over ``group`` packages on the smallest tier that holds them."""
    tier = mapping.tier_for("collective", work.group, system)
    op = Comm(work.op.replace("_", "-"), work.op, work.size_bytes, work.group, tier.name)
    return Program(blocks=(Block("collective", (op,)),), chips=work.group, tokens=0.0,
                   output_tokens=0.0)
