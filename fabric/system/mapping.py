"""Deployment as data: parallel degrees in ranks, the fabric tier each group spans, micro-batching, expert placement and multi-token prediction."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

from supernode.rtl.errors import UserError

from .config import CONFIG_DIR, Table, find_config, read_toml

__all__ = ["Mapping", "GROUPS", "SHARED_EXPERT_PLACEMENTS", "load_mapping", "default_mapping"]

#: Parallel groups a mapping sets a degree and a tier for.
GROUPS = ("tp", "ep", "dp", "pp")
#: Where the shared expert runs: on every rank for its own tokens (``local``), or on ranks
#: of its own in the expert-parallel group, reached by dispatch like a routed expert
#: (``routed``).
SHARED_EXPERT_PLACEMENTS = ("local", "routed")


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

    @property
    def ranks(self) -> int:
        """Ranks of the instance."""
        return self.tp * self.dp * self.pp

    @property
    def chips(self) -> int:
        """Ranks of the instance (kept for callers that count one rank per package)."""
        return self.ranks

    def tier_for(self, group: str, size: int, system):
        """The fabric tier a group of ``size`` ranks spans on ``system`` (seen per rank)."""
        name = self.tiers.get(group)
        if name is None:
            return system.smallest_tier(size)
        tier = system.tier(name)
        if tier.span_chips < size:
            raise UserError(f"mapping {self.name!r}: the {group} group of {size} ranks does "
                            f"not fit tier {name!r}, which spans {tier.span_chips}")
        return tier

    def with_degrees(self, **degrees) -> "Mapping":
        """The same mapping with some fields replaced (``tp=8``); ``None`` keeps a value."""
        given = {k: v for k, v in degrees.items() if v is not None}
        unknown = set(given) - set(GROUPS) - set(_OPTIONS) - {"microbatches"}
        if unknown:
            raise UserError(f"unknown deployment setting {sorted(unknown)[0]!r}; accepted: "
                            f"{', '.join(GROUPS + ('microbatches',) + tuple(_OPTIONS))}")
        return replace(self, **given) if given else self


#: Deployment settings of ``[deployment]`` and how each is read.
_OPTIONS = {"two_batch_overlap": "flag", "redundant_experts": "int", "expert_balancer": "flag",
            "perfect_balance": "flag",
            "shared_expert": "text", "shared_expert_ranks": "int", "mtp_tokens": "int",
            "mtp_acceptance": "fraction"}


def load_mapping(name_or_path) -> Mapping:
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
    top.finish()
    return Mapping(name=name, microbatches=micro, tiers=MappingProxyType(tiers),
                   sources=MappingProxyType(sources), path=path, **degrees, **options)


def default_mapping(system, workload, phase: str | None = None) -> Mapping:
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
