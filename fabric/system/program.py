"""The step program: the GEMMs, vector work and collectives one package does in one step."""

from __future__ import annotations

from dataclasses import dataclass

from .hardware import PRECISION_BYTES

__all__ = ["ACT_BYTES", "MOE_COMMS", "Gemm", "Vector", "Comm", "Parallel", "Block", "Program"]

#: The all-to-all of mixture-of-experts layers, as serving kernels run it.
MOE_COMMS = ("dispatch", "combine")

#: Bytes of an activation element moved or kept in BF16.
ACT_BYTES = PRECISION_BYTES["bf16"]


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
    stream : str
        The stream of a spatial pipeline that runs it (``"attention"`` or ``"moe"``);
        empty outside one.
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
    stream: str = ""

    @property
    def flops(self) -> float:
        return 2.0 * self.m * self.k * self.n * self.batch


@dataclass(frozen=True)
class Vector:
    """Element-wise work (norms, softmax, activations, quantisation, token permutes) on the
    vector units: ``flops`` of arithmetic and ``bytes`` read and written in HBM; ``stream``
    as for :class:`Gemm`."""
    name: str
    flops: float
    bytes: float = 0.0
    stream: str = ""


@dataclass(frozen=True)
class Comm:
    """One collective over a group of packages on one fabric tier.

    Members
    -------
    name : str
    kind : str
        One of :data:`~supernode.fabric.system.workload.COLLECTIVES`, or of :data:`MOE_COMMS` for
        expert dispatch and combine.
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
    stream : str
        As for :class:`Gemm`: in a spatial pipeline a collective runs on its stream, in
        series with that stream's compute.
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
    stream: str = ""


@dataclass(frozen=True)
class Parallel:
    """Work that different ranks of a group do at once; the slowest branch sets the time
    (routed experts on some ranks, the shared expert on others); ``stream`` as for
    :class:`Gemm`."""
    name: str
    branches: tuple
    stream: str = ""


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
        Micro-batches that share each stage (2 with two-batch overlap or a spatial
        pipeline): the blocks' ops are those of one of them, scheduled on a compute and a
        fabric stream, or on the streams of ``stream_cores``.
    weight_bytes, kv_cache_bytes : float
        Resident in one rank's HBM.
    tokens_per_sequence : float
        Tokens each decoding sequence gains per step (1 + accepted drafts).
    bulk_comm : bool
        Expert all-to-alls run as bulk (prefill) kernels, which take compute cores while
        they run (the system's ``moe.bulk_core_share``); decode's low-latency kernels do
        not.
    stream_cores : tuple
        A spatial pipeline's streams as ``(name, cube cores, vector cores, memory
        share)`` of the rank (:meth:`~supernode.fabric.system.mapping.Mapping.streams`);
        empty otherwise. Each op then runs on the share of its ``stream``.
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
    stream_cores: tuple = ()
    notes: tuple = ()

    @property
    def pipeline(self) -> str:
        """``"spatial"`` when the ops run on the streams of ``stream_cores``, else ``"none"``."""
        return "spatial" if self.stream_cores else "none"
