"""Workloads as data: model cards, GEMM and collective workloads, run settings, read from TOML."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeAlias

from supernode.rtl.errors import UserError

from .config import Table, find_config, read_toml
from .hardware import EIGHT_BIT, PRECISIONS

__all__ = [
    "PHASES", "COLLECTIVES", "RunSettings", "LlmModel", "GemmWorkload", "CollectiveWorkload",
    "load_workload", "gemm_workload", "collective_workload",
]

PHASES = ("prefill", "decode")
COLLECTIVES = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "send")
ATTENTIONS = ("gqa", "mla")


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

    def settings(self, *, phase: str, batch: int | None = None, seq_len: int | None = None,
                 precision: str | None = None, chips: int = 1, **overrides: Any
                 ) -> RunSettings:
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


#: Any workload a file describes.
Workload: TypeAlias = "LlmModel | GemmWorkload | CollectiveWorkload"


def load_workload(name_or_path: str | os.PathLike[str]) -> Workload:
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
