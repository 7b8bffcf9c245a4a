"""Deployment as data: parallel degrees in ranks, the fabric tier each group spans, micro-batching, expert placement and multi-token prediction."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from supernode.rtl.errors import UserError

from .config import CONFIG_DIR, Table, find_config, read_toml

if TYPE_CHECKING:     # annotations only: hardware and workload do not import mappings
    from .hardware import ChipSpec, FabricTier, SystemSpec
    from .workload import Workload

__all__ = ["Mapping", "GROUPS", "SHARED_EXPERT_PLACEMENTS", "PIPELINES", "HBM_SHARING",
           "STREAMS", "load_mapping", "default_mapping"]

#: Parallel groups a mapping sets a degree and a tier for.
GROUPS = ("tp", "ep", "dp", "pp")
#: Where the shared expert runs: on every rank for its own tokens (``local``), or on ranks
#: of its own in the expert-parallel group, reached by dispatch like a routed expert
#: (``routed``).
SHARED_EXPERT_PLACEMENTS = ("local", "routed")
#: How a rank's cores run a step: every op on the whole rank (``none``; two-batch overlap
#: is then a separate choice), or split between an attention and a MoE stream that two
#: micro-batches alternate through (``spatial``).
PIPELINES = ("none", "spatial")
#: How the streams of a spatial pipeline share the rank's HBM bandwidth, on-chip buffer
#: and on-chip bandwidth: each in proportion to its cores (``cores``), or each the whole
#: of it (``full``: no contention).
HBM_SHARING = ("cores", "full")
#: The streams of a spatial pipeline, in the order of a layer's ops.
STREAMS = ("attention", "moe")


@dataclass(frozen=True)
class Mapping:
    """How a workload is deployed on a system: one serving instance.

    Members
    -------
    name : str
    tp, ep, dp, pp : int
        Tensor, expert, data and pipeline parallel degrees, in ranks (devices seen by
        software: a 910C package is two). ``tp x dp x pp`` ranks make the instance; the
        experts of a stage are spread over ``ep`` of its ``tp x dp``.
    microbatches : int
        Micro-batches in flight when ``pp > 1``.
    two_batch_overlap : bool
        Each step runs as two micro-batches of half the sequences, one's expert
        dispatch and combine on the fabric while the other computes; every weight is
        then read once per micro-batch.
    redundant_experts : int
        Extra copies of the most loaded routed experts, spread over the expert group.
    expert_balancer : bool
        Experts (and their copies) are placed by load (heaviest first onto the least
        loaded rank) instead of in index order.
    perfect_balance : bool
        Every rank of the expert group carries exactly the mean expert load (the
        "simulated perfect EPLB" of published ablations): an upper bound on balancing.
    shared_expert : str
        One of :data:`SHARED_EXPERT_PLACEMENTS`.
    shared_expert_ranks : int
        With ``shared_expert = "routed"``: ranks of the expert group that host it.
    mtp_tokens : int
        Draft tokens of multi-token prediction per step (0: none).
    mtp_acceptance : float
        Share of draft tokens accepted.
    pipeline : str
        One of :data:`PIPELINES`. ``spatial``: each step runs as two micro-batches of
        half the sequences through two streams on disjoint cores of each rank, the
        attention stream (attention, its projections, the LM head) and the MoE stream
        (router, dispatch, experts, combine, dense FFN), so that one micro-batch's
        attention runs while the other's MoE layer does.
    attention_cube_cores, attention_vector_cores : int
        With ``pipeline = "spatial"``: the rank's matrix (cube) and vector cores the
        attention stream runs on; the MoE stream has the rest.
    hbm_sharing : str
        One of :data:`HBM_SHARING`, for a spatial pipeline.
    tiers : Mapping[str, str]
        Fabric tier a group spans, when set; otherwise the smallest tier holding it.
    sources : Mapping[str, Provenance]
        Why each choice was made, when the file says so.
    path : Path or None
    """
    name: str
    tp: int = 1
    ep: int = 1
    dp: int = 1
    pp: int = 1
    microbatches: int = 1
    two_batch_overlap: bool = False
    redundant_experts: int = 0
    expert_balancer: bool = False
    perfect_balance: bool = False
    shared_expert: str = "local"
    shared_expert_ranks: int = 0
    mtp_tokens: int = 0
    mtp_acceptance: float = 0.0
    pipeline: str = "none"
    attention_cube_cores: int = 0
    attention_vector_cores: int = 0
    hbm_sharing: str = "cores"
    tiers: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    sources: MappingProxyType = field(repr=False, compare=False,
                                      default_factory=lambda: MappingProxyType({}))
    path: Path = field(repr=False, compare=False, default=None)

    def __post_init__(self):
        for name in GROUPS + ("microbatches",):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"mapping {self.name!r}: {name} must be a positive whole "
                                f"number, not {value!r}")
        for name in ("redundant_experts", "shared_expert_ranks", "mtp_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise UserError(f"mapping {self.name!r}: {name} must be a whole number of "
                                f"at least 0, not {value!r}")
        if self.shared_expert not in SHARED_EXPERT_PLACEMENTS:
            raise UserError(f"mapping {self.name!r}: shared_expert = {self.shared_expert!r} is "
                            f"not accepted; accepted: {', '.join(SHARED_EXPERT_PLACEMENTS)}")
        if (self.shared_expert == "routed") != (self.shared_expert_ranks > 0):
            raise UserError(f"mapping {self.name!r}: shared_expert_ranks = "
                            f"{self.shared_expert_ranks} must be positive exactly when "
                            f"shared_expert = \"routed\"")
        if self.shared_expert_ranks >= self.ep and self.shared_expert_ranks:
            raise UserError(f"mapping {self.name!r}: shared_expert_ranks = "
                            f"{self.shared_expert_ranks} leaves no rank of ep = {self.ep} for "
                            f"the routed experts")
        a = self.mtp_acceptance
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not 0.0 <= a <= 1.0:
            raise UserError(f"mapping {self.name!r}: mtp_acceptance = {a!r} must be a fraction "
                            f"from 0 to 1")
        for name in ("two_batch_overlap", "expert_balancer", "perfect_balance"):
            if not isinstance(getattr(self, name), bool):
                raise UserError(f"mapping {self.name!r}: {name} must be true or false, not "
                                f"{getattr(self, name)!r}")
        self._check_pipeline()

    def _check_pipeline(self):
        if self.pipeline not in PIPELINES:
            raise UserError(f"mapping {self.name!r}: pipeline = {self.pipeline!r} is not "
                            f"accepted; accepted: {', '.join(PIPELINES)}")
        if self.hbm_sharing not in HBM_SHARING:
            raise UserError(f"mapping {self.name!r}: hbm_sharing = {self.hbm_sharing!r} is "
                            f"not accepted; accepted: {', '.join(HBM_SHARING)}")
        for name in ("attention_cube_cores", "attention_vector_cores"):
            value = getattr(self, name)
            if self.pipeline == "spatial":
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise UserError(f"mapping {self.name!r}: {name} = {value!r} must be a "
                                    f"positive whole number of cores with pipeline = "
                                    f"\"spatial\"")
            elif value != 0:
                raise UserError(f"mapping {self.name!r}: {name} = {value!r} applies only to "
                                f"pipeline = \"spatial\"; accepted here: 0 or leaving it out")
        if self.pipeline == "spatial" and self.two_batch_overlap:
            raise UserError(f"mapping {self.name!r}: pipeline = \"spatial\" cannot be "
                            f"combined with two_batch_overlap = true; accepted: one of the two")

    def streams(self, chip: ChipSpec) -> tuple:
        """The streams of a spatial pipeline on one rank's ``chip``, as ``(name, cube
        cores, vector cores, memory share)``; empty without one.

        Raises :class:`UserError` when the chip does not count vector cores apart from its
        matrix cores, or when the attention stream's cores leave the MoE stream none.
        """
        if self.pipeline != "spatial":
            return ()
        cube, vector = chip.cores, chip.vector_cores
        if not vector:
            raise UserError(f"mapping {self.name!r}: pipeline = \"spatial\" splits a rank's "
                            f"cube and vector cores between two streams, but {chip.name} does "
                            f"not count vector cores apart from its matrix cores; accepted: a "
                            f"chip with vector_cores_per_die, or two_batch_overlap")
        for name, value, total, kind in (
                ("attention_cube_cores", self.attention_cube_cores, cube, "cube"),
                ("attention_vector_cores", self.attention_vector_cores, vector, "vector")):
            if value >= total:
                raise UserError(f"mapping {self.name!r}: {name} = {value} leaves the MoE "
                                f"stream none of the {total} {kind} cores of one {chip.name} "
                                f"rank; accepted: 1 to {total - 1}")
        a_cube, a_vec = self.attention_cube_cores, self.attention_vector_cores
        parts = (("attention", a_cube, a_vec), ("moe", cube - a_cube, vector - a_vec))
        return tuple((name, c, v, (c + v) / (cube + vector) if self.hbm_sharing == "cores"
                      else 1.0) for name, c, v in parts)

    def without_overlap(self) -> "Mapping":
        """The same deployment with every op in series on the whole rank: no two-batch
        overlap and no spatial pipeline."""
        return replace(self, two_batch_overlap=False, pipeline="none", attention_cube_cores=0,
                       attention_vector_cores=0)

    @property
    def ranks(self) -> int:
        """Ranks of the instance."""
        return self.tp * self.dp * self.pp

    @property
    def chips(self) -> int:
        """Ranks of the instance (kept for callers that count one rank per package)."""
        return self.ranks

    def tier_for(self, group: str, size: int, system: SystemSpec) -> FabricTier:
        """The fabric tier a group of ``size`` ranks spans on ``system`` (seen per rank)."""
        name = self.tiers.get(group)
        if name is None:
            return system.smallest_tier(size)
        tier = system.tier(name)
        if tier.span_chips < size:
            raise UserError(f"mapping {self.name!r}: the {group} group of {size} ranks does "
                            f"not fit tier {name!r}, which spans {tier.span_chips}")
        return tier

    def with_degrees(self, **degrees: int) -> "Mapping":
        """The same mapping with some fields replaced (``tp=8``); ``None`` keeps a value.

        ``two_batch_overlap`` (on or off) names the whole overlap scheme: given without a
        ``pipeline``, it replaces a spatial pipeline the mapping runs.
        """
        given = {k: v for k, v in degrees.items() if v is not None}
        unknown = (set(given) - set(GROUPS) - set(_OPTIONS) - set(_PIPELINE)
                   - {"microbatches"})
        if unknown:
            accepted = GROUPS + ("microbatches",) + tuple(_OPTIONS) + _PIPELINE
            raise UserError(f"unknown deployment setting {sorted(unknown)[0]!r}; accepted: "
                            f"{', '.join(accepted)}")
        base = (self.without_overlap() if "two_batch_overlap" in given
                and "pipeline" not in given else self)
        return replace(base, **given) if given else self


#: Deployment settings of ``[deployment]`` and how each is read.
_OPTIONS = {"two_batch_overlap": "flag", "redundant_experts": "int", "expert_balancer": "flag",
            "perfect_balance": "flag",
            "shared_expert": "text", "shared_expert_ranks": "int", "mtp_tokens": "int",
            "mtp_acceptance": "fraction"}
#: Settings of ``[pipeline]`` (``kind`` there is the field ``pipeline``).
_PIPELINE = ("pipeline", "attention_cube_cores", "attention_vector_cores", "hbm_sharing")


def load_mapping(name_or_path: str | Path) -> Mapping:
    """Load a mapping file (a shipped name such as ``"cloudmatrix384-moe"`` or a path).

    Raises
    ------
    UserError
        Naming the file, key and value of any missing, unknown or invalid entry.
    """
    path = find_config("mappings", str(name_or_path))
    top = Table(read_toml(path), path=path, section="")
    name = top.text("name")
    top.text("description")
    par = top.sub("parallel")
    degrees = {g: par.number(g, integer=True, sourced="optional") for g in GROUPS}
    micro = par.number("microbatches", integer=True, required=False, default=1,
                       sourced="optional")
    par.finish()
    tiers_t = top.sub("tier", required=False)
    tiers = {}
    if tiers_t is not None:
        for key in tiers_t.keys():
            if key not in GROUPS:
                raise UserError(f"{tiers_t.where}: unknown group {key!r}; accepted: "
                                f"{', '.join(GROUPS)}")
            tiers[key] = tiers_t.text(key)
        tiers_t.finish()
    sources = dict(par.sources)
    options = {}
    dep = top.sub("deployment", required=False)
    if dep is not None:
        for key in dep.keys():
            kind = _OPTIONS.get(key)
            if kind is None:
                raise UserError(f"{dep.where}: unknown key {key!r}; accepted: "
                                f"{', '.join(_OPTIONS)}")
            if kind == "flag":
                raw = dep.data[key]
                value = raw.get("value") if isinstance(raw, dict) else raw
                if isinstance(raw, dict):
                    dep._provenance(key, raw)
                dep.mark_used(key)
                if not isinstance(value, bool):
                    raise UserError(f"{dep.where}: {key} = {value!r} must be true or false")
                options[key] = value
            elif kind == "text":
                options[key] = dep.text(key, choices=SHARED_EXPERT_PLACEMENTS)
            elif kind == "int":
                options[key] = dep.number(key, integer=True, strict=False, sourced="optional")
            else:
                options[key] = dep.number(key, strict=False, sourced="optional")
                if options[key] > 1:
                    raise UserError(f"{dep.where}: {key} = {options[key]!r} must be a "
                                    f"fraction from 0 to 1")
        dep.finish()
        sources.update({f"deployment.{k}": v for k, v in dep.sources.items()})
    pipe = top.sub("pipeline", required=False)
    if pipe is not None:
        options["pipeline"] = pipe.text("kind", choices=PIPELINES)
        for key in ("attention_cube_cores", "attention_vector_cores"):
            options[key] = int(pipe.number(key, integer=True, required=False, default=0))
        options["hbm_sharing"] = pipe.text("hbm_sharing", choices=HBM_SHARING,
                                           required=False, default="cores")
        pipe.finish()
        sources.update({f"pipeline.{k}": v for k, v in pipe.sources.items()})
    top.finish()
    return Mapping(name=name, microbatches=micro, tiers=MappingProxyType(tiers),
                   sources=MappingProxyType(sources), path=path, **degrees, **options)


def default_mapping(system: SystemSpec, workload: Workload,
                    phase: str | None = None) -> Mapping:
    """The shipped mapping for ``system`` and the workload's kind.

    Looks for ``mappings/<system>-<kind>-<phase>.toml`` then ``<system>-<kind>.toml``,
    where kind is ``moe`` or ``dense`` for LLMs; GEMMs and collectives run on one package
    (or their own group) with no mapping file.
    """
    kind = getattr(workload, "kind", "llm")
    if kind != "llm":
        return Mapping(name="single")
    family = "moe" if workload.is_moe else "dense"
    for stem in (f"{system.name}-{family}-{phase}", f"{system.name}-{family}"):
        if (CONFIG_DIR / "mappings" / f"{stem}.toml").is_file():
            return load_mapping(stem)
    # A system with no shipped mapping: data parallel over every rank, experts too.
    ranks = system.ranks
    return Mapping(name=f"{system.name}-data-parallel", dp=ranks,
                   ep=ranks if workload.is_moe else 1)
