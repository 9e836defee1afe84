"""Plain records that counting produces and reports read: no TensorFlow, no pandas.

Layer paths are relative to the profiled model ("block1/conv"); ops outside
every layer belong to :data:`OUTSIDE`, the loss and its gradient to :data:`LOSS`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

OUTSIDE = "(model)"  # the row for ops created outside every sublayer
LOSS = "(loss)"  # the row for the loss and its gradient, in a training trace
FORWARD, LOSS_PHASE, BACKWARD = "forward", "loss", "backward"
PHASES = (FORWARD, LOSS_PHASE, BACKWARD)  # of an op in a training trace


@dataclasses.dataclass(frozen=True)
class OpCount:
    """One counted op: where it is, what it costs, and whose formula said so.

    ``flops``, ``macs`` and ``bytes`` include ``repeat``, the number of times
    the op runs (a loop body's trip count, 1 elsewhere); ``formula`` shows the
    arithmetic of one run. An op that moves data and does no arithmetic (a
    Transpose, a ConcatV2) is here with 0 FLOPs and its bytes.
    """

    node: str
    op_type: str
    layer: str
    flops: int
    macs: int
    source: str  # "tensorflow", "keras_flops", "user", or "zero" for a copy
    formula: str = ""
    repeat: int = 1
    phase: str = "forward"  # "forward", "loss" or "backward" (training traces)
    bytes: int = 0  # every input and output tensor, unfused (0 for views)
    min_bytes: int = 0  # what crosses its layer's boundary: read from or written for another layer
    mac_dtype: str = ""  # the dtype its MACs run in (its first input's), for ops with MACs
    recompute: bool = False  # a forward op the backward pass runs again (rematerialization)

    def explain(self) -> str:
        """``Conv2D conv/convolution: 2 x 1 output x (1x1 kernel x 1 in-channel) = 2 FLOPs = 1 MAC``"""
        text = f"{self.op_type} {self.node}: {self.formula}"
        if self.repeat != 1:
            text = f"{text}, x {self.repeat} runs"
        text += f" = {self.flops:,} FLOP{'s' if self.flops != 1 else ''}"
        if self.macs:
            text += f" = {self.macs:,} MAC{'s' if self.macs != 1 else ''}"
        return f"{text} [{self.source}]"


@dataclasses.dataclass(frozen=True)
class Collective:
    """One collective of a device's partitioned program (XLA inserted it):
    its kind ("all-reduce", "all-gather", "reduce-scatter", "all-to-all",
    "collective-permute"), the devices of each group, and one device's
    operand and result bytes; ``repeat`` as :class:`OpCount`'s."""

    node: str
    kind: str
    layer: str
    phase: str
    group_size: int
    operand_bytes: int
    result_bytes: int
    repeat: int = 1

    def row(self) -> dict:
        """Its row of ``report.collectives`` and of the JSON report: bytes and
        ``count`` with ``repeat`` in them."""
        return {
            "layer": self.layer, "phase": self.phase, "kind": self.kind, "group_size": self.group_size,
            "operand_bytes": self.operand_bytes * self.repeat, "result_bytes": self.result_bytes * self.repeat,
            "count": self.repeat, "bus_bytes": self.bus_bytes,
        }  # fmt: skip

    @property
    def bus_bytes(self) -> float:
        """The bytes a device's link carries, by the ring formulas of
        nccl-tests' PERFORMANCE.md: an all-reduce of S bytes 2(n-1)/n x S;
        an all-gather of S bytes gathered, and a reduce-scatter or all-to-all
        of S bytes given, (n-1)/n x S; a collective-permute its S bytes.
        Times ``repeat``."""
        n = self.group_size
        if n <= 1:
            return 0.0
        if self.kind == "all-reduce":
            carried = 2 * (n - 1) / n * self.result_bytes
        elif self.kind == "all-gather":
            carried = (n - 1) / n * self.result_bytes
        elif self.kind in ("reduce-scatter", "all-to-all"):
            carried = (n - 1) / n * self.operand_bytes
        else:
            carried = float(self.result_bytes)
        return carried * self.repeat


@dataclasses.dataclass(frozen=True)
class Partitioned:
    """A device's program under a ``keras.distribution``, as XLA partitioned
    it: the mesh ``{axis: size}``, its ops and collectives, what it could not
    count, the compiled program's memory (``argument_bytes``,
    ``output_bytes``, ``temp_bytes``, ``alias_bytes``), each variable's shard
    ``(path, bytes)``, and notes."""

    mesh: Any
    ops: tuple
    uncounted: tuple
    collectives: tuple
    memory: Any
    weights: tuple
    notes: tuple = ()


@dataclasses.dataclass(frozen=True)
class UncountedOp:
    """An op that may cost FLOPs but was not counted, and why."""

    node: str
    op_type: str
    layer: str
    reason: str


@dataclasses.dataclass(frozen=True)
class LayerRow:
    """A layer (or Keras op) of the profiled model that was called while tracing."""

    path: str  # relative to the model: "backbone/block1_conv"
    class_name: str
    output_shape: Any  # of its first call: a tuple, or a list of tuples
    params: int  # weights the layer holds itself, not through sublayers
    calls: int


@dataclasses.dataclass(frozen=True)
class ExpertsLayer:
    """A mixture-of-experts layer that computes all its experts on every token
    (densely) while its router picks ``top_k`` of them: the experts' share of
    the count is scaled by ``top_k / num_experts`` in the "active" figures."""

    path: str  # the mixture-of-experts layer
    experts: str  # its sublayer that computes every expert
    num_experts: int
    top_k: int

    def active(self, count: int):
        """``count`` scaled by top_k / num_experts: an int when exact."""
        scaled = count * self.top_k
        return scaled // self.num_experts if scaled % self.num_experts == 0 else scaled / self.num_experts

    def note(self) -> str:
        return (
            f"Layer {self.path!r} is a mixture of experts: {self.experts!r} computes all "
            f"{self.num_experts} experts on every token and the router keeps {self.top_k} "
            f"(top_k). The counts are what runs, every expert included; active_flops and "
            f"active_macs scale the experts' share by {self.top_k}/{self.num_experts}, as "
            "papers quote a sparse model's compute."
        )


def within(path: str, ancestor: Optional[str]) -> bool:
    """Whether ``path`` is the layer ``ancestor`` or nested in it (None: any)."""
    return ancestor is None or path == ancestor or path.startswith(ancestor + "/")


def ancestor(path: str, depth: int) -> str:
    """The first ``depth`` parts of a layer path: ``ancestor("a/b/c", 1) == "a"``."""
    return "/".join(path.split("/")[:depth])
