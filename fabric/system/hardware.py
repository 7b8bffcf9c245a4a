"""Hardware as data: AI core -> chip -> node -> supernode, loaded from TOML into frozen dataclasses."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

from supernode.rtl.errors import UserError
from supernode.rtl.tile_params import DATAFLOWS

from .config import Table, find_config, read_toml

__all__ = [
    "PRECISIONS", "EIGHT_BIT", "PRECISION_BYTES", "DATAFLOWS", "CoreSpec", "KernelSpec",
    "ChipSpec", "NodeSpec", "FabricTier", "PublishedFigure", "SystemSpec", "load_chip",
    "load_system", "chip_totals", "system_totals", "describe_sources",
]

#: Matrix precisions a workload may ask for; each chip lists the ones it runs and at what rate.
PRECISIONS = ("bf16", "fp8", "int8", "fp4")
#: Bytes per element of each precision (4-bit formats pack two elements per byte; their
#: block scales are counted in :data:`SCALE_BYTES_PER_ELEMENT`).
PRECISION_BYTES = MappingProxyType({"bf16": 2, "fp8": 1, "int8": 1, "fp4": 0.5})
#: Workload precision meaning "the chip's 8-bit format": FP8 where it has one, else INT8.
EIGHT_BIT = "8bit"
#: The plane name of a scale-out tier (kept out of the scale-up tier chain).
SCALE_OUT_PLANE = "rdma"


def _frozen(mapping: dict) -> MappingProxyType:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class CoreSpec:
    """One AI core: a group of systolic tiles, a vector unit and a local buffer on one clock.

    Members
    -------
    tile_rows, tile_cols : int
        Shape of one systolic tile (MACs), the unit the RTL-checked tile model predicts.
    tile_dataflow : str
        ``"os"`` (output stationary) or ``"ws"`` (weight stationary).
    tiles_per_core : int
        Tiles that together give the core's published MACs per cycle.
    clock_hz : float
        Core clock.
    vector_flops_per_cycle : float
        Vector-unit throughput for element-wise work (norms, softmax, activations).
    local_buffer_bytes : float
        Core-local operand buffer; sets operand reuse in the on-chip traffic model.
    precision_rate : Mapping[str, float]
        MAC rate of each supported precision relative to BF16 (``{"bf16": 1, "int8": 2}``).
    sources : Mapping[str, Provenance]
        Provenance of every field above.
    """
    tile_rows: int
    tile_cols: int
    tile_dataflow: str
    tiles_per_core: int
    clock_hz: float
    vector_flops_per_cycle: float
    local_buffer_bytes: float
    precision_rate: MappingProxyType
    sources: MappingProxyType = field(repr=False, compare=False)

    @property
    def macs_per_cycle(self) -> int:
        """BF16 MACs per cycle of the whole core (all tiles)."""
        return self.tile_rows * self.tile_cols * self.tiles_per_core

    def peak_flops(self, precision: str = "bf16") -> float:
        """Dense peak FLOP/s of the core at ``precision`` (one MAC = 2 FLOP)."""
        return 2.0 * self.macs_per_cycle * self.clock_hz * self.precision_rate[precision]


@dataclass(frozen=True)
class KernelSpec:
    """What serving kernels achieve on a package, beside what its units could do.

    Members
    -------
    matrix_efficiency : float
        Sustained share of the tile model's cycle rate in large GEMM kernels (operand
        feed into the matrix units, pipeline bubbles, scheduling), from published
        GEMM-kernel measurements where there are any.
    hbm_efficiency : float
        Achieved share of the HBM bandwidth in streaming kernels.
    attention_compute_efficiency, attention_memory_efficiency : float
        Achieved share of peak compute (compute-bound) and of HBM bandwidth
        (memory-bound) in the attention kernel.
    reduction_overhead : float
        Fixed cost of each output block of a weight GEMM kernel (filling the operand
        pipeline, scaling and storing the block), in steps of the reduction: a GEMM of
        reduction length ``K`` takes ``(K + reduction_overhead) / K`` times its
        multiply-accumulates' cycles, so short reductions reach less of the peak.
    kernel_launch_ns : float
        Cost of one kernel on the critical path (launch, gap to the next, tail).
    step_overhead_ns : float
        Fixed cost of one serving step outside the kernels (scheduling, sampling, the
        host's synchronisation).
    hbm_reserve_fraction : float
        Share of HBM kept for activations, workspace and the runtime; weights and the
        KV cache must fit in the rest.
    sources : Mapping[str, Provenance]
    """
    matrix_efficiency: float
    hbm_efficiency: float
    attention_compute_efficiency: float
    attention_memory_efficiency: float
    reduction_overhead: float
    kernel_launch_ns: float
    step_overhead_ns: float
    hbm_reserve_fraction: float
    sources: MappingProxyType = field(repr=False, compare=False)


@dataclass(frozen=True)
class ChipSpec:
    """One accelerator package: dies of AI cores with HBM and fabric ports.

    Members
    -------
    name : str
        Config name (``"ascend-910c"``).
    description : str
        One line for tables.
    core : CoreSpec
        The AI core every die is built of.
    dies : int
        Compute dies per package.
    ranks : int
        Devices the package shows to software (the 910C's two dies are two ranks; a
        B200 is one): the unit a deployment's parallel degrees count.
    cores_per_die : int
        Matrix (cube / tensor) cores per die.
    vector_cores_per_die : int
        Vector cores per die where the chip has them apart from its matrix cores (the
        910C's AIV beside its AIC); 0 where each matrix core carries its own vector unit.
        The vector rate is ``core.vector_flops_per_cycle`` per matrix core either way.
    hbm_capacity_bytes, hbm_bandwidth_bytes_per_s : float
        Package HBM capacity and bandwidth.
    onchip_buffer_bytes, onchip_bandwidth_bytes_per_s : float
        Shared on-chip buffer (L2) per package and its bandwidth into the cores.
    die_to_die_bandwidth_bytes_per_s : float
        Between the dies of one package. Reported; no estimate puts it on a critical
        path, since a package is one rank of every mapping.
    scale_up_bandwidth_bytes_per_s : float
        Scale-up fabric (UB / NVLink) bandwidth per package, one direction.
    scale_out_bandwidth_bytes_per_s : float
        Scale-out (RDMA) bandwidth per package, one direction.
    kernels : KernelSpec
        What serving kernels achieve on this package.
    published : Mapping[str, PublishedFigure]
        Published package figures that the derived ones are checked against.
    sources : Mapping[str, Provenance]
        Provenance of every field above.
    path : Path
        File it was loaded from.
    """
    name: str
    description: str
    core: CoreSpec
    dies: int
    ranks: int
    cores_per_die: int
    hbm_capacity_bytes: float
    hbm_bandwidth_bytes_per_s: float
    onchip_buffer_bytes: float
    onchip_bandwidth_bytes_per_s: float
    die_to_die_bandwidth_bytes_per_s: float
    scale_up_bandwidth_bytes_per_s: float
    scale_out_bandwidth_bytes_per_s: float
    kernels: KernelSpec
    published: MappingProxyType = field(repr=False, compare=False)
    sources: MappingProxyType = field(repr=False, compare=False)
    path: Path = field(repr=False, compare=False)
    vector_cores_per_die: int = 0

    def per_rank(self) -> "ChipSpec":
        """One rank of the package: its share of the dies, cores, memory and links."""
        if self.ranks == 1:
            return self
        r = self.ranks
        return replace(self, dies=self.dies // r, ranks=1,
                       hbm_capacity_bytes=self.hbm_capacity_bytes / r,
                       hbm_bandwidth_bytes_per_s=self.hbm_bandwidth_bytes_per_s / r,
                       onchip_buffer_bytes=self.onchip_buffer_bytes / r,
                       onchip_bandwidth_bytes_per_s=self.onchip_bandwidth_bytes_per_s / r,
                       scale_up_bandwidth_bytes_per_s=self.scale_up_bandwidth_bytes_per_s / r,
                       scale_out_bandwidth_bytes_per_s=self.scale_out_bandwidth_bytes_per_s / r)

    def share(self, cube_cores: int, vector_cores: int, memory_share: float) -> "ChipSpec":
        """Part of this chip as a chip of its own: ``cube_cores`` of its matrix cores,
        ``vector_cores`` of its vector cores and ``memory_share`` of its HBM bandwidth,
        on-chip buffer and on-chip bandwidth (a stream of a spatial pipeline).

        GEMMs on the share are cut over its tiles only (the tile model's fold over fewer
        tiles); vector work runs at the rate of the vector cores it has.
        """
        if not self.vector_cores_per_die:
            raise UserError(f"{self.name} does not count vector cores apart from its matrix "
                            f"cores; accepted: a chip with vector_cores_per_die")
        if not (0 < cube_cores <= self.cores and 0 < vector_cores <= self.vector_cores):
            raise UserError(f"a share of {cube_cores} cube and {vector_cores} vector cores "
                            f"does not fit {self.name}'s {self.cores} and {self.vector_cores}; "
                            f"accepted: 1 to {self.cores} and 1 to {self.vector_cores}")
        vector_rate = self.cores * self.core.vector_flops_per_cycle / self.vector_cores
        core = replace(self.core,
                       vector_flops_per_cycle=vector_rate * vector_cores / cube_cores)
        return replace(self, core=core, dies=1, ranks=1, cores_per_die=cube_cores,
                       vector_cores_per_die=vector_cores,
                       hbm_bandwidth_bytes_per_s=self.hbm_bandwidth_bytes_per_s * memory_share,
                       onchip_buffer_bytes=self.onchip_buffer_bytes * memory_share,
                       onchip_bandwidth_bytes_per_s=(self.onchip_bandwidth_bytes_per_s
                                                     * memory_share))

    @property
    def usable_hbm_bytes(self) -> float:
        """HBM left for weights and the KV cache after the reserve."""
        return self.hbm_capacity_bytes * (1.0 - self.kernels.hbm_reserve_fraction)

    @property
    def cores(self) -> int:
        """Matrix cores in the package."""
        return self.dies * self.cores_per_die

    @property
    def vector_cores(self) -> int:
        """Vector cores counted apart from the matrix cores (0 where there are none)."""
        return self.dies * self.vector_cores_per_die

    @property
    def precisions(self) -> tuple:
        return tuple(p for p in PRECISIONS if p in self.core.precision_rate)

    def peak_flops(self, precision: str = "bf16") -> float:
        """Dense peak FLOP/s of the package: cores x MACs/cycle x 2 x clock x precision rate."""
        return self.cores * self.core.peak_flops(precision)

    def resolve_precision(self, precision: str) -> str:
        """``precision`` itself, or for ``"8bit"`` the chip's 8-bit format (FP8, else INT8)."""
        if precision == EIGHT_BIT:
            for candidate in ("fp8", "int8"):
                if candidate in self.core.precision_rate:
                    return candidate
            raise UserError(f"precision {precision!r} needs an 8-bit matrix format but "
                            f"{self.name} has none; accepted: {', '.join(self.precisions)}")
        self.check_precision(precision)
        return precision

    def check_precision(self, precision: str) -> None:
        """Raise :class:`UserError` unless the chip runs matrices at ``precision``."""
        if precision not in self.core.precision_rate:
            raise UserError(f"precision {precision!r} is not supported by {self.name}; "
                            f"accepted: {', '.join(self.precisions)}")


@dataclass(frozen=True)
class NodeSpec:
    """One server node: packages sharing first-tier switches.

    Members
    -------
    chips_per_node : int
    cpus_per_node : int
    l1_switches_per_node : int
        First-tier fabric switch chips in the node (0 when the node has none).
    sources : Mapping[str, Provenance]
    """
    chips_per_node: int
    cpus_per_node: int
    l1_switches_per_node: int
    sources: MappingProxyType = field(repr=False, compare=False)


@dataclass(frozen=True)
class FabricTier:
    """One level of the scale-up (or scale-out) fabric, as seen from one package.

    Members
    -------
    name : str
        ``"node"``, ``"supernode"``, ``"scale_out"`` ...
    plane : str
        Which network the tier uses (``"ub"``, ``"nvlink"``, ``"rdma"``).
    span_chips : int
        Packages reachable inside this tier.
    switch_hops : int
        Switch chips a flit crosses between two packages of this tier (worst pair).
    bandwidth_bytes_per_s : float
        Injection bandwidth of one package into this tier, one direction.
    oversubscription : float
        Downlink : uplink ratio on the way up to this tier (1 = non-blocking).
    efficiency : float
        Share of the line rate end points achieve in bulk transfers (protocol, packet
        headers, DMA): 1 when the file gives none.
    sources : Mapping[str, Provenance]
    """
    name: str
    plane: str
    span_chips: int
    switch_hops: int
    bandwidth_bytes_per_s: float
    oversubscription: float
    sources: MappingProxyType = field(repr=False, compare=False)
    efficiency: float = 1.0


@dataclass(frozen=True)
class PublishedFigure:
    """A published total that a derived figure is checked against.

    Members
    -------
    value : float
        In the unit of its key.
    text : str
        As written in the file (``"752 TFLOPS"``), which sets the rounding.
    source : str
    rounding : float
        Half a unit in the last written digit of ``text``.
    tolerance_reason : str
        Empty, or why the derived figure may differ by up to ``rel_tolerance``.
    rel_tolerance : float
    """
    value: float
    text: str
    source: str
    rounding: float
    tolerance_reason: str = ""
    rel_tolerance: float = 0.0

    def matches(self, derived: float) -> bool:
        """Whether ``derived`` agrees within rounding (or the stated tolerance)."""
        allowed = max(self.rounding, self.rel_tolerance * abs(self.value))
        return abs(derived - self.value) <= allowed * (1 + 1e-9)


@dataclass(frozen=True)
class SystemSpec:
    """A whole supernode: nodes of packages on a switched fabric.

    Members
    -------
    name, description : str
    chip : ChipSpec
    node : NodeSpec
    nodes : int
    l2_switches : int
        Second-tier switch chips (0 when there is a single tier).
    power_w : float
        All-in power of the supernode.
    switch_clock_hz : float
        Clock of the fabric switch, which turns network-model cycles into seconds.
    endpoint_latency_ns : float
        Fixed cost of one message at the end points (software, DMA set-up, SerDes).
    dispatch_latency_ns, combine_latency_ns : float
        Fixed cost of one expert dispatch / combine kernel, whatever it carries
        (synchronisation of the group, layout, kernel start), from microbenchmarks.
    peer_latency_ns : float
        Added cost of each further rank an expert dispatch or combine reaches.
    bulk_core_share : float
        Share of the compute cores the bulk (prefill) dispatch and combine kernels occupy
        while they run.
    low_latency_scale_out : bool
        The low-latency (decode) dispatch and combine kernels send every pair over the
        scale-out plane, also between ranks of one node.
    bulk_bandwidth : tuple of (int, float, float)
        Measured bandwidth per rank of the bulk (prefill) dispatch and combine kernels,
        ``(ranks in the group, dispatch bytes/s, combine bytes/s)``, by growing group; empty
        when none is published. See :meth:`bulk_rate`.
    tiers : tuple of FabricTier
        From the smallest span to the largest.
    router : Mapping[str, object]
        Parameters of the RTL router the network figures are taken from.
    published : Mapping[str, PublishedFigure]
    sources : Mapping[str, Provenance]
    path : Path
    """
    name: str
    description: str
    chip: ChipSpec
    node: NodeSpec
    nodes: int
    l2_switches: int
    power_w: float
    switch_clock_hz: float
    endpoint_latency_ns: float
    dispatch_latency_ns: float
    combine_latency_ns: float
    peer_latency_ns: float
    bulk_core_share: float
    low_latency_scale_out: bool
    bulk_bandwidth: tuple
    tiers: tuple
    router: MappingProxyType = field(repr=False, compare=False)
    published: MappingProxyType = field(repr=False, compare=False)
    sources: MappingProxyType = field(repr=False, compare=False)
    path: Path = field(repr=False, compare=False)

    @property
    def chips(self) -> int:
        """Packages in the supernode."""
        return self.nodes * self.node.chips_per_node

    def tier(self, name: str) -> FabricTier:
        """The tier called ``name``."""
        for tier in self.tiers:
            if tier.name == name:
                return tier
        raise UserError(f"fabric tier {name!r} is not part of {self.name}; accepted: "
                        f"{', '.join(t.name for t in self.tiers)}")

    def bulk_rate(self, kind: str, group: int) -> float | None:
        """Bytes per second per package of a bulk ``kind`` (``"dispatch"`` or
        ``"combine"``) kernel over ``group`` packages, from :attr:`bulk_bandwidth`:
        interpolated linearly in the logarithm of the group between the measured sizes,
        held at the first and last of them outside; ``None`` without a table.
        """
        if not self.bulk_bandwidth:
            return None
        r = self.chip.ranks        # the table counts ranks; a package holds r of them
        column = 1 if kind == "dispatch" else 2
        sizes = [math.log(row[0]) for row in self.bulk_bandwidth]
        rates = [row[column] for row in self.bulk_bandwidth]
        at = math.log(max(group * r, 1))
        if at <= sizes[0]:
            return rates[0] * r
        for (x0, y0), (x1, y1) in zip(zip(sizes, rates), zip(sizes[1:], rates[1:])):
            if at <= x1:
                return (y0 + (y1 - y0) * (at - x0) / (x1 - x0)) * r
        return rates[-1] * r

    @property
    def scale_up_tiers(self) -> tuple:
        """The scale-up tiers (not the RDMA plane), smallest span first."""
        return tuple(t for t in self.tiers if t.plane != SCALE_OUT_PLANE)

    def smallest_tier(self, group: int) -> FabricTier:
        """The smallest scale-up tier whose span holds a group of ``group`` packages, else
        the smallest scale-out tier that does (a cluster of scale-up nodes)."""
        for tier in self.scale_up_tiers + tuple(t for t in self.tiers
                                                if t.plane == SCALE_OUT_PLANE):
            if tier.span_chips >= group:
                return tier
        largest = max(self.tiers, key=lambda t: t.span_chips)
        raise UserError(f"a group of {group} packages does not fit {self.name}: its largest "
                        f"tier {largest.name!r} spans {largest.span_chips}")

    def with_chip(self, chip: ChipSpec) -> "SystemSpec":
        """The same system built from another package (for what-if sweeps)."""
        return replace(self, chip=chip)

    @property
    def ranks(self) -> int:
        """Ranks (devices seen by software) in the system."""
        return self.chips * self.chip.ranks

    def per_rank(self) -> "SystemSpec":
        """The system seen rank by rank: a package of several ranks becomes that many
        packages of one, each with its share of the package and of every link."""
        r = self.chip.ranks
        if r == 1:
            return self
        tiers = tuple(replace(t, span_chips=t.span_chips * r,
                              bandwidth_bytes_per_s=t.bandwidth_bytes_per_s / r)
                      for t in self.tiers)
        node = replace(self.node, chips_per_node=self.node.chips_per_node * r)
        return replace(self, chip=self.chip.per_rank(), node=node, tiers=tiers)


# --- loading ------------------------------------------------------------------------

_DIGITS = re.compile(r"^\s*[-+]?([0-9]*)\.?([0-9]*)")


def _rounding(text: str, value: float) -> float:
    """Half a unit in the last written digit of ``text``, in the unit of ``value``."""
    match = _DIGITS.match(text)
    decimals = len(match.group(2)) if match else 0
    words = text.split()
    try:
        mantissa = float(words[0]) if words else value
    except ValueError:
        mantissa = value
    scale = value / mantissa if mantissa else 1.0
    return 0.5 * 10.0 ** (-decimals) * abs(scale)


def _published(table: Table | None) -> MappingProxyType:
    if table is None:
        return _frozen({})
    figures = {}
    for key in table.keys():
        entry = table.sub(key)
        value = entry.number("value", sourced=False, unit_key=key)
        raw = entry.data["value"]
        text = raw if isinstance(raw, str) else repr(raw)
        source = entry.text("source")
        reason = entry.text("tolerance_reason", required=False, default="")
        rel = entry.number("rel_tolerance", sourced=False, required=False, default=0.0,
                           strict=False)
        if rel and not reason:
            raise UserError(f"{entry.where}: rel_tolerance needs a tolerance_reason saying why "
                            f"the derived figure differs from the published one")
        entry.finish()
        figures[key] = PublishedFigure(value=value, text=text, source=source,
                                       rounding=_rounding(text, value),
                                       tolerance_reason=reason, rel_tolerance=rel)
    table.finish()
    return _frozen(figures)


def _core(table: Table) -> CoreSpec:
    rows = table.number("tile_rows", integer=True)
    cols = table.number("tile_cols", integer=True)
    dataflow = table.text("tile_dataflow", choices=DATAFLOWS)
    tiles = table.number("tiles_per_core", integer=True)
    clock = table.number("clock_hz")
    vector = table.number("vector_flops_per_cycle")
    local = table.number("local_buffer_bytes")
    rates_table = table.sub("precision_rate")
    rates = {}
    for key in rates_table.keys():
        if key not in PRECISIONS:
            raise UserError(f"{rates_table.where}: unknown precision {key!r}; accepted: "
                            f"{', '.join(PRECISIONS)}")
        rates[key] = rates_table.number(key)
    if "bf16" not in rates:
        raise UserError(f"{rates_table.where}: missing key 'bf16' (the rate every other "
                        f"precision is relative to)")
    rates_table.finish()
    table.finish()
    sources = dict(table.sources)
    sources.update({f"precision_rate.{k}": v for k, v in rates_table.sources.items()})
    return CoreSpec(tile_rows=rows, tile_cols=cols, tile_dataflow=dataflow, tiles_per_core=tiles,
                    clock_hz=clock, vector_flops_per_cycle=vector, local_buffer_bytes=local,
                    precision_rate=_frozen(rates), sources=_frozen(sources))


def load_chip(name_or_path: str | Path) -> ChipSpec:
    """Load a package description (``"ascend-910c"``, ``"b200"`` or a path to a TOML file).

    Raises
    ------
    UserError
        Naming the file, key and value of any missing, unknown or invalid entry.
    """
    path = find_config("hardware", str(name_or_path))
    top = Table(read_toml(path), path=path, section="")
    kind = top.text("kind", choices=("chip", "system"))
    if kind != "chip":
        raise UserError(f"{path} describes a {kind}, not a chip; accepted here: a file with "
                        f"kind = \"chip\"")
    name = top.text("name")
    description = top.text("description")
    core = _core(top.sub("core"))
    chip = top.sub("chip")
    values = {key: chip.number(key, integer=key in ("dies", "ranks", "cores_per_die"),
                               strict=key != "die_to_die_bandwidth_bytes_per_s")
              for key in (
        "dies", "ranks", "cores_per_die", "hbm_capacity_bytes", "hbm_bandwidth_bytes_per_s",
        "onchip_buffer_bytes", "onchip_bandwidth_bytes_per_s",
        "die_to_die_bandwidth_bytes_per_s", "scale_up_bandwidth_bytes_per_s",
        "scale_out_bandwidth_bytes_per_s")}
    values["vector_cores_per_die"] = int(chip.number("vector_cores_per_die", integer=True,
                                                     required=False, default=0))
    chip.finish()
    if values["dies"] % values["ranks"]:
        raise UserError(f"{chip.where}: ranks = {values['ranks']} must divide dies = "
                        f"{values['dies']} (each rank is a whole number of dies)")
    kernels = _kernels(top.sub("kernels"))
    published = _published(top.sub("published", required=False))
    top.finish()
    return ChipSpec(name=name, description=description, core=core, kernels=kernels,
                    published=published, sources=_frozen(chip.sources), path=path, **values)


_FRACTIONS = ("matrix_efficiency", "hbm_efficiency", "attention_compute_efficiency",
              "attention_memory_efficiency")


def _kernels(table: Table) -> KernelSpec:
    values = {}
    for key in _FRACTIONS + ("hbm_reserve_fraction",):
        values[key] = table.number(key, strict=key != "hbm_reserve_fraction")
        if values[key] > 1 or (key == "hbm_reserve_fraction" and values[key] >= 1):
            raise UserError(f"{table.where}: {key} = {values[key]!r} must be a fraction "
                            f"{'below' if key == 'hbm_reserve_fraction' else 'at most'} 1")
    for key in ("reduction_overhead", "kernel_launch_ns", "step_overhead_ns"):
        values[key] = table.number(key, strict=False)
    table.finish()
    return KernelSpec(sources=_frozen(table.sources), **values)


def _tiers(top: Table, path: Path) -> tuple:
    if not top.has("tier"):
        raise UserError(f"{path}: missing [[tier]] entries (the fabric levels)")
    raw = top.data["tier"]
    top.mark_used("tier")
    if not isinstance(raw, list) or not raw:
        raise UserError(f"{path}: tier must be a list of [[tier]] tables")
    tiers = []
    for i, entry in enumerate(raw):
        table = Table(entry, path=path, section=f"tier {i}")
        tier = FabricTier(
            name=table.text("name"),
            plane=table.text("plane"),
            span_chips=table.number("span_chips", integer=True),
            switch_hops=table.number("switch_hops", integer=True, strict=False),
            bandwidth_bytes_per_s=table.number("bandwidth_bytes_per_s"),
            oversubscription=table.number("oversubscription", minimum=1.0, strict=False),
            efficiency=table.number("efficiency", required=False, default=1.0),
            sources=_frozen(table.sources))
        if tier.efficiency > 1:
            raise UserError(f"{table.where}: efficiency = {tier.efficiency!r} must be a "
                            f"fraction of at most 1")
        table.finish()
        if any(t.name == tier.name for t in tiers):
            raise UserError(f"{table.where}: tier name {tier.name!r} is used twice")
        scale_up = [t for t in tiers if t.plane != SCALE_OUT_PLANE]
        if (tier.plane != SCALE_OUT_PLANE and scale_up
                and tier.span_chips <= scale_up[-1].span_chips):
            raise UserError(f"{table.where}: span_chips = {tier.span_chips} must be larger than "
                            f"the previous tier's {scale_up[-1].span_chips} (list tiers smallest "
                            f"first)")
        tiers.append(tier)
    return tuple(tiers)


def _bulk_bandwidth(moe: Table) -> tuple:
    """The ``[[moe.bulk]]`` rows: ``ep`` (ranks) and the measured ``dispatch_bytes_per_s``
    and ``combine_bytes_per_s`` per rank of the bulk kernels at that size."""
    rows = moe.data.get("bulk", [])
    moe.mark_used("bulk")
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise UserError(f"{moe.where}: bulk must be written as [[moe.bulk]] tables, one per "
                        f"group size")
    out = []
    for i, data in enumerate(rows):
        row = Table(data, path=moe.path, section=f"{moe.section}.bulk, row {i + 1}")
        ep = row.number("ep", integer=True, minimum=1)
        rates = [row.number(key, unit_key=key) for key in ("dispatch_bytes_per_s",
                                                            "combine_bytes_per_s")]
        row.finish()
        if out and ep <= out[-1][0]:
            raise UserError(f"{row.where}: ep = {ep} must be larger than the row before's "
                            f"{out[-1][0]}; accepted: rows by growing group size")
        for key, prov in row.sources.items():
            moe.sources[f"bulk.ep{ep}.{key}"] = prov
        out.append((ep, *rates))
    return tuple(out)


def load_system(name_or_path: str | Path, *, chip: ChipSpec | None = None) -> SystemSpec:
    """Load a supernode description (``"cloudmatrix384"``, ``"gb200-nvl72"`` or a path).

    The system file names its package (``chip = "ascend-910c"``), which is loaded too;
    pass ``chip`` to build the system from another package instead.

    Raises
    ------
    UserError
        Naming the file, key and value of any missing, unknown or invalid entry.
    """
    path = find_config("hardware", str(name_or_path))
    top = Table(read_toml(path), path=path, section="")
    kind = top.text("kind", choices=("chip", "system"))
    if kind != "system":
        raise UserError(f"{path} describes a {kind}, not a system; accepted here: a file "
                        f"with kind = \"system\"")
    name = top.text("name")
    description = top.text("description")
    chip_name = top.text("chip")
    if chip is None:
        chip_path = Path(chip_name)
        if chip_name.endswith(".toml") and not chip_path.is_absolute():
            chip_path = path.parent / chip_path
        chip = load_chip(chip_path if chip_name.endswith(".toml") else chip_name)
    node_t = top.sub("node")
    node = NodeSpec(chips_per_node=node_t.number("chips_per_node", integer=True),
                    cpus_per_node=node_t.number("cpus_per_node", integer=True, strict=False),
                    l1_switches_per_node=node_t.number("l1_switches_per_node", integer=True,
                                                       strict=False),
                    sources=_frozen(node_t.sources))
    node_t.finish()
    sn = top.sub("supernode")
    nodes = sn.number("nodes", integer=True)
    l2 = sn.number("l2_switches", integer=True, strict=False)
    power = sn.number("power_w")
    switch_clock = sn.number("switch_clock_hz")
    endpoint = sn.number("endpoint_latency_ns", strict=False)
    sn.finish()
    moe = top.sub("moe")
    dispatch = moe.number("dispatch_latency_ns", strict=False)
    combine = moe.number("combine_latency_ns", strict=False)
    peer = moe.number("peer_latency_ns", strict=False)
    share = moe.number("bulk_core_share", strict=False)
    scale_out = moe.data.get("low_latency_scale_out", False)
    if isinstance(scale_out, dict):
        moe._provenance("low_latency_scale_out", scale_out)
        scale_out = scale_out.get("value")
    moe.mark_used("low_latency_scale_out")
    if not isinstance(scale_out, bool):
        raise UserError(f"{moe.where}: low_latency_scale_out = {scale_out!r} must be true or "
                        f"false")
    bulk = _bulk_bandwidth(moe)
    moe.finish()
    if share >= 1:
        raise UserError(f"{moe.where}: bulk_core_share = {share!r} must be a fraction below 1")
    tiers = _tiers(top, path)
    chips = nodes * node.chips_per_node
    if max(t.span_chips for t in tiers) < chips:
        raise UserError(f"{path}: the largest tier must span all {chips} packages "
                        f"(nodes x chips_per_node)")
    router_t = top.sub("router", required=False)
    router, sources = {}, dict(sn.sources)
    sources.update({f"moe.{k}": v for k, v in moe.sources.items()})
    if router_t is not None:
        # Passed to the network model, which validates its own parameters; each may be
        # written bare or with its source / assumption beside it.
        for key in router_t.keys():
            raw = router_t.data[key]
            if isinstance(raw, dict):
                router_t._provenance(key, raw)
                raw = raw.get("value")
            router[key] = raw
            router_t.mark_used(key)
        router_t.finish()
        sources.update({f"router.{k}": v for k, v in router_t.sources.items()})
    published = _published(top.sub("published", required=False))
    top.finish()
    return SystemSpec(name=name, description=description, chip=chip, node=node, nodes=nodes,
                      l2_switches=l2, power_w=power, switch_clock_hz=switch_clock,
                      endpoint_latency_ns=endpoint, dispatch_latency_ns=dispatch,
                      combine_latency_ns=combine, peer_latency_ns=peer,
                      bulk_core_share=share, low_latency_scale_out=scale_out,
                      bulk_bandwidth=bulk, tiers=tiers, router=_frozen(router),
                      published=published, sources=_frozen(sources), path=path)


# --- derived totals -------------------------------------------------------------------

def chip_totals(chip: ChipSpec) -> dict:
    """Derived package figures, named as in the ``[published]`` tables."""
    totals = {
        "bf16_dense_flops": chip.peak_flops("bf16"),
        "hbm_capacity_bytes": chip.hbm_capacity_bytes,
        "hbm_bandwidth_bytes_per_s": chip.hbm_bandwidth_bytes_per_s,
        "scale_up_bandwidth_bytes_per_s": chip.scale_up_bandwidth_bytes_per_s,
    }
    for precision in chip.precisions:
        if precision != "bf16":
            totals[f"{precision}_dense_flops"] = chip.peak_flops(precision)
    return totals


def system_totals(system: SystemSpec) -> dict:
    """Derived supernode totals: package figures times packages, plus power and fabric."""
    per_chip = chip_totals(system.chip)
    totals = {key: value * system.chips for key, value in per_chip.items()}
    totals["chips"] = system.chips
    totals["power_w"] = system.power_w
    totals["scale_out_bandwidth_bytes_per_s"] = (system.chip.scale_out_bandwidth_bytes_per_s
                                                 * system.chips)
    totals["l1_switches"] = system.node.l1_switches_per_node * system.nodes
    totals["l2_switches"] = system.l2_switches
    return totals


def describe_sources(system: SystemSpec) -> list:
    """``(level, key, value, Provenance)`` for every sourced number of a system, in order."""
    rows = []
    chip = system.chip
    for key, prov in chip.core.sources.items():
        value = (chip.core.precision_rate[key.split(".", 1)[1]] if key.startswith("precision_rate.")
                 else getattr(chip.core, key))
        rows.append(("core", key, value, prov))
    for key, prov in chip.sources.items():
        rows.append(("chip", key, getattr(chip, key), prov))
    for key, prov in chip.kernels.sources.items():
        rows.append(("kernels", key, getattr(chip.kernels, key), prov))
    for key, prov in system.node.sources.items():
        rows.append(("node", key, getattr(system.node, key), prov))
    for key, prov in system.sources.items():
        if key.startswith("router."):
            rows.append(("router", key[len("router."):], system.router[key[len("router."):]],
                         prov))
        elif key.startswith("moe.bulk."):
            # moe.bulk.ep<N>.<field>: one row of the bulk kernels' table.
            size, name = key[len("moe.bulk.ep"):].split(".", 1)
            row = next(r for r in system.bulk_bandwidth if r[0] == int(size))
            value = {"ep": row[0], "dispatch_bytes_per_s": row[1],
                     "combine_bytes_per_s": row[2]}[name]
            rows.append(("moe", f"bulk EP{size} {name}", value, prov))
        elif key.startswith("moe."):
            rows.append(("moe", key[len("moe."):], getattr(system, key[len("moe."):]), prov))
        else:
            rows.append(("supernode", key, getattr(system, key), prov))
    for tier in system.tiers:
        for key, prov in tier.sources.items():
            rows.append((f"tier {tier.name}", key, getattr(tier, key), prov))
    return rows
