"""Mapping as data: parallel degrees, the fabric tier each group spans, and what may overlap."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

from rtl.errors import UserError

from .config import CONFIG_DIR, Table, find_config, read_toml

__all__ = ["Mapping", "GROUPS", "load_mapping", "default_mapping"]

#: Parallel groups a mapping sets a degree, a tier and an overlap for.
GROUPS = ("tp", "ep", "dp", "pp")


@dataclass(frozen=True)
class Mapping:
    """How a workload is laid out on a system.

    Members
    -------
    name : str
    tp, ep, dp, pp : int
        Tensor, expert, data and pipeline parallel degrees. ``tp x dp x pp`` packages
        are used; the experts of a stage are spread over ``ep`` of its ``tp x dp``.
    microbatches : int
        Micro-batches in flight when ``pp > 1``.
    tiers : Mapping[str, str]
        Fabric tier a group spans, when set; otherwise the smallest tier holding it.
    overlap : Mapping[str, float]
        Fraction (0..1) of each group's communication that may run under compute.
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
    tiers: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    overlap: MappingProxyType = field(
        default_factory=lambda: MappingProxyType({g: 0.0 for g in GROUPS}))
    sources: MappingProxyType = field(repr=False, compare=False,
                                      default_factory=lambda: MappingProxyType({}))
    path: Path = field(repr=False, compare=False, default=None)

    def __post_init__(self):
        for name in GROUPS + ("microbatches",):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"mapping {self.name!r}: {name} must be a positive whole "
                                f"number, not {value!r}")
        for group, value in self.overlap.items():
            if group not in GROUPS or not 0.0 <= value <= 1.0:
                raise UserError(f"mapping {self.name!r}: overlap {group} = {value!r} must be "
                                f"a fraction between 0 and 1 for one of {', '.join(GROUPS)}")

    @property
    def chips(self) -> int:
        return self.tp * self.dp * self.pp

    def tier_for(self, group: str, size: int, system):
        """The fabric tier a group of ``size`` packages spans on ``system``."""
        name = self.tiers.get(group)
        if name is None:
            return system.smallest_tier(size)
        tier = system.tier(name)
        if tier.span_chips < size:
            raise UserError(f"mapping {self.name!r}: the {group} group of {size} packages does "
                            f"not fit tier {name!r}, which spans {tier.span_chips}")
        return tier

    def with_degrees(self, **degrees) -> "Mapping":
        """The same mapping with some degrees replaced (``tp=8``); ``None`` keeps a value."""
        given = {k: v for k, v in degrees.items() if v is not None}
        unknown = set(given) - set(GROUPS) - {"microbatches"}
        if unknown:
            raise UserError(f"unknown parallel degree {sorted(unknown)[0]!r}; accepted: "
                            f"{', '.join(GROUPS)}, microbatches")
        return replace(self, **given) if given else self


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
    over_t = top.sub("overlap", required=False)
    overlap = {g: 0.0 for g in GROUPS}
    sources = dict(par.sources)
    if over_t is not None:
        for key in over_t.keys():
            if key not in GROUPS:
                raise UserError(f"{over_t.where}: unknown group {key!r}; accepted: "
                                f"{', '.join(GROUPS)}")
            overlap[key] = over_t.number(key, strict=False, sourced="optional")
            if overlap[key] > 1:
                raise UserError(f"{over_t.where}: {key} = {overlap[key]!r} must be a fraction "
                                f"between 0 and 1")
        over_t.finish()
        sources.update({f"overlap.{k}": v for k, v in over_t.sources.items()})
    top.finish()
    return Mapping(name=name, microbatches=micro, tiers=MappingProxyType(tiers),
                   overlap=MappingProxyType(overlap), sources=MappingProxyType(sources),
                   path=path, **degrees)


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
    # A system with no shipped mapping: data parallel over every package, experts too.
    chips = system.chips
    return Mapping(name=f"{system.name}-data-parallel", dp=chips,
                   ep=chips if workload.is_moe else 1)
