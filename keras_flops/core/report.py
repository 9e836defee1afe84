"""FlopsReport: the immutable result of profiling, its totals and aggregations.

Rendering (text, Markdown, JSON, plots, the summary) lives in :mod:`keras_flops.render`;
the report's methods for it are thin doors into that package, which imports nothing of
the core (the core imports render, never the other way round).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import json
import math
from typing import Any, Dict, List, Optional, Tuple

import pandas as pd

from keras_flops.core import hardware
from keras_flops.core.activations import Activations
from keras_flops.render import export, plot, text
from keras_flops.core.records import (
    BACKWARD,
    Collective,
    FORWARD,
    LOSS_PHASE,
    PHASES,
    ExpertsLayer,
    LayerRow,
    OpCount,
    UncountedOp,
    ancestor,
    within,
)

_LAYER_COLUMNS = ["layer", "class", "output_shape", "params", "calls"]
_BACKWARD = ("backward_flops", "backward_macs", "backward_bytes", "backward_min_bytes")
_ACTIVE = ("active_flops", "active_macs")


@dataclasses.dataclass(frozen=True)
class FlopsReport:
    """FLOPs and MACs of one forward pass of a model on one batch.

    ``flops`` and ``macs`` are exact ints for a batch of ``batch_size``. Every
    op is attributed to the innermost layer whose call created it; ops created
    outside every layer belong to the row ``"(model)"``. Per-layer sums equal
    the totals. ``uncounted`` lists ops that may cost FLOPs but have no
    formula: they are not in the totals.
    """

    model_name: str
    batch_size: int
    input_shapes: Tuple[Tuple[str, Tuple[int, ...]], ...]
    layers: Tuple[LayerRow, ...]
    ops: Tuple[OpCount, ...]
    uncounted: Tuple[UncountedOp, ...]
    notes: Tuple[str, ...] = ()  # e.g. which branch of an If was counted
    counting: str = "full"
    training: bool = False  # a training step: forward, loss and backward
    experts: Tuple[ExpertsLayer, ...] = ()  # mixture-of-experts layers, for the "active" figures
    compute_dtype: str = "float32"  # the dtype the model computes in: a roofline's peak
    tensor_float_32: bool = False  # the backend runs float32 matmuls as TF32 where the GPU can
    time_ms: Optional[float] = None  # measured forward pass (keras_flops.measure), median
    layer_times: Tuple[Tuple[str, float, float], ...] = ()  # (layer, median ms, IQR ms), measured
    activations: Activations = Activations()  # saved for the backward pass, and live at once
    # Under a keras.distribution (JAX): the mesh {axis: size}, and the report of
    # one device's program as XLA partitioned it (its own collectives, memory and
    # weight shards); the totals above stay the global program's.
    mesh: Optional[Dict[str, int]] = None
    per_device: Optional["FlopsReport"] = None
    collective_ops: Tuple[Collective, ...] = ()  # a device's collectives (per_device only)
    device_memory: Optional[Dict[str, int]] = None  # XLA's compiled memory of a device's program
    weight_shards: Tuple[Tuple[str, int], ...] = ()  # (variable path, bytes of a device's shard)

    # ------------------------------------------------------------------ totals
    def _sum(self, field: str, phases: Tuple[str, ...]) -> int:
        return sum(getattr(op, field) for op in self.ops if op.phase in phases)

    @functools.cached_property
    def flops(self) -> int:
        """Forward FLOPs for one batch (a multiply-accumulate counts 2); in a
        training report, the forward pass with training=True and the loss."""
        return self._sum("flops", (FORWARD, LOSS_PHASE))

    @functools.cached_property
    def macs(self) -> int:
        """Forward multiply-accumulates for one batch (FLOPs / 2 of Conv, MatMul, ...)."""
        return self._sum("macs", (FORWARD, LOSS_PHASE))

    @functools.cached_property
    def bytes(self) -> int:
        """Bytes the forward pass (and loss) moves: every op's inputs and outputs,
        unfused, views excluded (see docs/formulas.md)."""
        return self._sum("bytes", (FORWARD, LOSS_PHASE))

    @functools.cached_property
    def min_bytes(self) -> int:
        """Compulsory bytes of the forward pass (and loss): each layer's inputs
        and outputs once, and its weights once at their stored width (int4
        packed, scales included); what a layer makes and uses inside itself
        never counts (see docs/formulas.md). The roofline's default."""
        return self._sum("min_bytes", (FORWARD, LOSS_PHASE))

    @functools.cached_property
    def macs_by_dtype(self) -> Dict[str, int]:
        """Forward MACs by the dtype they run in (their matmul's or
        convolution's inputs): ``{"int8": 16384, "float32": 4096}``."""
        found: collections.Counter = collections.Counter()
        for op in self.ops:
            if op.macs and op.phase != BACKWARD:
                found[op.mac_dtype] += op.macs
        return dict(found.most_common())

    @property
    def intensity(self) -> float:
        """Arithmetic intensity of the forward pass: FLOPs per byte moved."""
        return self.flops / self.bytes if self.bytes else math.nan

    @property
    def active_flops(self):
        """Forward FLOPs with each mixture-of-experts layer's experts counted at
        top_k / num_experts of what runs (papers' "active" compute); ``flops``
        for a model without such layers."""
        return sum(self._active(op, op.flops) for op in self.ops if op.phase != BACKWARD)

    @property
    def active_macs(self):
        """Forward MACs, with experts counted as in ``active_flops``."""
        return sum(self._active(op, op.macs) for op in self.ops if op.phase != BACKWARD)

    def _active(self, op: OpCount, count: int):
        bank = next((e for e in self.experts if within(op.layer, e.experts)), None)
        return bank.active(count) if bank else count

    @property
    def saved_bytes(self) -> int:
        """Bytes of the activations a training step keeps for its backward
        pass: the forward (and loss) values a backward op reads, each buffer
        once (0 for a forward report; per layer, the ``saved_bytes`` column).
        See :mod:`keras_flops.core.activations`."""
        return self.activations.saved_bytes

    @property
    def loss_flops(self) -> int:
        """FLOPs of the loss (training reports; 0 otherwise)."""
        return self._sum("flops", (LOSS_PHASE,))

    @property
    def backward_flops(self) -> int:
        """FLOPs of the gradients, the loss's included (training reports; 0 otherwise)."""
        return self._sum("flops", (BACKWARD,))

    @property
    def backward_macs(self) -> int:
        return self._sum("macs", (BACKWARD,))

    @property
    def train_flops(self) -> int:
        """FLOPs of one training step, forward + loss + backward, without the
        optimizer's update (training reports; for others, the forward FLOPs)."""
        return self._sum("flops", PHASES)

    @functools.cached_property
    def recompute_flops(self) -> int:
        """FLOPs of the forward work the backward pass runs again under
        rematerialization (``keras.RematScope``, ``keras.remat``): part of
        ``backward_flops``, as the step executes it; 0 without."""
        return sum(op.flops for op in self.ops if op.recompute)

    @property
    def recompute_macs(self) -> int:
        return sum(op.macs for op in self.ops if op.recompute)

    @property
    def model_flops(self) -> int:
        """The step's model FLOPs, what MFU divides: ``train_flops`` without
        the recompute (``train_flops`` is what executes: HFU's)."""
        return self.train_flops - self.recompute_flops

    @property
    def train_macs(self) -> int:
        return self._sum("macs", PHASES)

    @property
    def flops_per_sample(self) -> float:
        return self.flops / self.batch_size

    @property
    def macs_per_sample(self) -> float:
        return self.macs / self.batch_size

    @property
    def params(self) -> int:
        return sum(row.params for row in self.layers)

    def inclusive(self, path: str) -> Tuple[int, int, int, int]:
        """Forward ``(flops, macs, bytes, min_bytes)`` of a layer and everything nested in it."""
        flops = macs = n_bytes = n_min = 0
        for op in self.ops:
            if op.phase != BACKWARD and within(op.layer, path):
                flops += op.flops
                macs += op.macs
                n_bytes += op.bytes
                n_min += op.min_bytes
        return flops, macs, n_bytes, n_min

    # ------------------------------------------------------------ aggregations
    def _sums(self, key: str) -> Dict[str, collections.Counter]:
        """{key value: {column: sum}} over the ops, split forward / backward."""
        sums: dict = collections.defaultdict(collections.Counter)
        for op in self.ops:
            row = sums[getattr(op, key)]
            row["count"] += 1
            if op.phase == BACKWARD:
                row["backward_flops"] += op.flops
                row["backward_macs"] += op.macs
                row["backward_bytes"] += op.bytes
                row["backward_min_bytes"] += op.min_bytes
                if op.recompute:
                    row["recompute_flops"] += op.flops
                    row["recompute_macs"] += op.macs
            else:  # the loss counts with the forward pass of its row "(loss)"
                row["flops"] += op.flops
                row["macs"] += op.macs
                row["bytes"] += op.bytes
                row["min_bytes"] += op.min_bytes
                if op.macs:
                    row["mac_dtype:" + op.mac_dtype] += op.macs
                if self.experts:
                    row["active_flops"] += self._active(op, op.flops)
                    row["active_macs"] += self._active(op, op.macs)
        return sums

    def _count_columns(self, by_layer: bool = False) -> List[str]:
        return (
            ["flops", "macs", "bytes", "min_bytes"]
            + (list(_BACKWARD) if self.training else [])
            + (["recompute_flops", "recompute_macs"] if self.recompute_flops else [])
            + (["saved_bytes"] if self.training and by_layer else [])
            + (list(_ACTIVE) if self.experts else [])
        )

    def _finish(self, rows: List[dict]) -> List[dict]:
        """Add ``share`` of total FLOPs and, for training, the train columns."""
        for row in rows:
            row["intensity"] = row["flops"] / row["bytes"] if row["bytes"] else math.nan
            row["share"] = row["flops"] / self.flops if self.flops else 0.0
            if self.training:
                row["train_flops"] = row["flops"] + row["backward_flops"]
                row["train_ratio"] = row["train_flops"] / row["flops"] if row["flops"] > 0 else math.nan
        return rows

    def layer_table(self, depth: Optional[int] = None) -> List[dict]:
        """One dict per layer, in call order: the columns of ``to_dataframe()``."""
        sums = self._sums("layer")
        for layer, n_saved in self.activations.saved:
            sums[layer]["saved_bytes"] += n_saved
        counts = self._count_columns(by_layer=True)
        rows = [dict(zip(_LAYER_COLUMNS, dataclasses.astuple(r))) for r in self.layers]
        known = {r.path for r in self.layers}
        named = list(sums) + [u.layer for u in self.uncounted]
        rows += [
            dict(zip(_LAYER_COLUMNS, (p, "", None, 0, 0))) for p in dict.fromkeys(named) if p not in known
        ]
        for row in rows:
            summed = sums.get(row["layer"], {})
            row.update({c: summed.get(c, 0) for c in counts})
            row.update({k: v for k, v in summed.items() if k.startswith("mac_dtype:")})
        if depth is not None:
            rows = _roll_up(
                rows, depth, counts + sorted({k for r in rows for k in r if k.startswith("mac_dtype:")})
            )
        for row in rows:
            by_dtype = sorted(
                ((v, k[len("mac_dtype:") :]) for k, v in row.items() if k.startswith("mac_dtype:")),
                reverse=True,
            )
            row["mac_dtype"] = "+".join(dtype for _, dtype in by_dtype)
            for _, dtype in by_dtype:
                del row["mac_dtype:" + dtype]
        rows = self._finish(rows)
        if self.layer_times:
            times = {layer: (median, iqr) for layer, median, iqr in self.layer_times}
            if depth is not None:  # summed medians: their spread is not known
                summed = collections.Counter()
                for layer, (median, _) in times.items():
                    summed[ancestor(layer, depth)] += median
                times = {layer: (median, math.nan) for layer, median in summed.items()}
            for row in rows:
                row["time_ms"], row["time_iqr_ms"] = times.get(row["layer"], (0.0, 0.0))
                median = row["time_ms"]
                row["tflops_per_sec"] = row["flops"] / median / 1e9 if median else math.nan
        return rows

    def op_table(self) -> List[dict]:
        """One dict per op type, costliest first: the columns of ``to_dataframe(by="op")``."""
        sums = self._sums("op_type")
        rows = [
            {"op_type": t, "count": s["count"], **{c: s.get(c, 0) for c in self._count_columns()}}
            for t, s in sums.items()
        ]
        rows = self._finish(rows)
        order = "train_flops" if self.training else "flops"
        return sorted(rows, key=lambda r: (r[order], r["count"]), reverse=True)

    def to_dataframe(self, by: str = "layer", depth: Optional[int] = None) -> pd.DataFrame:
        """A pandas table: one row per layer (``by="layer"``) or per op type (``by="op"``).

        By layer, the index is the layer path and the columns are ``class``,
        ``output_shape``, ``params``, ``calls``, ``flops``, ``macs`` and
        ``share`` (of total FLOPs); ``depth=1`` sums nested layers into their
        top-level ancestor. By op, the index is the op type (TensorFlow's, a JAX
        primitive, a PyTorch aten op) and the
        columns are ``count``, ``flops``, ``macs`` and ``share``. Both have
        ``bytes`` (every op's inputs and outputs, unfused) and ``intensity``
        (FLOPs per byte). Training reports add ``backward_flops``,
        ``backward_macs``, ``backward_bytes``, ``saved_bytes`` (by layer: the
        activations kept for the backward pass), ``train_flops`` and
        ``train_ratio``; reports of models with mixtures of experts,
        ``active_flops`` and ``active_macs``.
        """
        if by == "layer":
            rows, index = self.layer_table(depth), "layer"
            counts = self._count_columns(by_layer=True)
            columns = _LAYER_COLUMNS + counts[:2] + ["mac_dtype"] + counts[2:]
            timed = ["time_ms", "time_iqr_ms", "tflops_per_sec"] if self.layer_times else []
        elif by == "op":
            rows, index = self.op_table(), "op_type"
            columns = ["op_type", "count"] + self._count_columns()
            timed = []
        else:
            raise ValueError(f"by must be 'layer' or 'op', got {by!r}.")
        columns += ["intensity", "share"] + (["train_flops", "train_ratio"] if self.training else []) + timed
        return pd.DataFrame.from_records(rows, columns=columns).set_index(index)

    # ---------------------------------------------------------------- roofline
    def roofline(self, device, dtype: Optional[str] = None, traffic: str = "min") -> pd.DataFrame:
        """Per layer: ``flops``, the bytes of ``traffic``, ``intensity`` (FLOPs
        per byte), the peak it runs at, the device's ``ridge`` point at that
        peak, ``bound`` ("compute" or "memory") and ``time_s``, the roofline
        time ``max(flops / peak, bytes / bandwidth)``.

        ``traffic`` is ``"min"`` (``min_bytes``: each layer's inputs, outputs
        and weights once, the compulsory traffic) or ``"unfused"`` (``bytes``:
        every op's inputs and outputs, the upper bound). ``device`` is a GPU
        name ("H100", "A100", ...) or a ``keras_flops.Device``. With a name,
        each layer runs at the peak of the dtype its MACs run in (int8, float8,
        ...) where the GPU has one, else at ``dtype``'s, by default the model's
        compute dtype. ``df.attrs["time_s"]`` is the model's roofline time, the
        sum of its layers', ``df.attrs["device"]`` the device at ``dtype``, and
        ``df.attrs["traffic"]`` the traffic.
        """
        if traffic not in ("min", "unfused"):
            raise ValueError(f"traffic must be 'min' (compulsory bytes) or 'unfused', got {traffic!r}.")
        column = "min_bytes" if traffic == "min" else "bytes"
        dev = hardware.device(device, dtype or self.compute_dtype, self.tensor_float_32)
        table = self.to_dataframe()
        df = table[["class", "flops", column]].copy()
        df["intensity"] = [f / b if b else math.nan for f, b in zip(df["flops"], df[column])]
        devices = [
            hardware.device_for(device, dev, mac_dtype.split("+")[0], self.tensor_float_32)
            for mac_dtype in table["mac_dtype"]
        ]
        df["peak_tflops"] = [d.peak_tflops for d in devices]
        df["ridge"] = [d.ridge for d in devices]
        df["bound"] = [d.bound(f, b) if f or b else "" for d, f, b in zip(devices, df["flops"], df[column])]
        df["time_s"] = [d.time_s(f, b) for d, f, b in zip(devices, df["flops"], df[column])]
        if self.layer_times:  # a measured report: how far each layer is from its roof
            measured = table["time_ms"] / 1e3
            df["measured_s"] = measured
            df["measured_ratio"] = measured / df["time_s"].where(df["time_s"] > 0)
        df.attrs.update(time_s=float(df["time_s"].sum()), device=dev, traffic=traffic)
        return df

    def roofline_time(self, device, dtype: Optional[str] = None, traffic: str = "min") -> float:
        """The model's roofline time on ``device``, in seconds: the sum of its
        layers' ``max(flops / peak, bytes / bandwidth)``, with ``traffic`` as
        in :meth:`roofline`."""
        return self.roofline(device, dtype, traffic).attrs["time_s"]

    # ------------------------------------------------------ a device's program
    @property
    def collectives(self) -> pd.DataFrame:
        """One row per collective of a device's program (``per_device`` under
        a ``keras.distribution``): ``layer``, ``phase``, ``kind``,
        ``group_size``, one device's ``operand_bytes`` and ``result_bytes``,
        ``count`` (the times it runs) and ``bus_bytes``, what the device's
        link carries by the ring formulas of nccl-tests (an all-reduce of S
        bytes 2(n-1)/n x S; an all-gather, reduce-scatter or all-to-all
        (n-1)/n x S; a collective-permute S). Empty without one."""
        columns = [
            "layer",
            "phase",
            "kind",
            "group_size",
            "operand_bytes",
            "result_bytes",
            "count",
            "bus_bytes",
        ]
        return pd.DataFrame([c.row() for c in self.collective_ops], columns=columns)

    @property
    def collective_bytes(self) -> float:
        """Bytes a device's link carries in this program: the sum of the
        collectives' ``bus_bytes``."""
        return float(sum(c.bus_bytes for c in self.collective_ops))

    @property
    def weight_bytes(self) -> int:
        """Bytes of a device's weight shards (``per_device`` under a
        ``keras.distribution``; 0 elsewhere, where :func:`keras_flops.memory`
        gives the weights)."""
        return sum(n for _, n in self.weight_shards)

    def step_bound(self, device, dtype: Optional[str] = None, traffic: str = "min") -> Dict[str, Any]:
        """The program's time on ``device`` by each resource, and the one that
        bounds it: ``compute_s`` (its FLOPs, a training report's backward
        included, at the peak of ``dtype``, by default the compute dtype),
        ``memory_s`` (the bytes of ``traffic`` as :meth:`roofline` reads them,
        over the memory bandwidth), ``communication_s`` (``collective_bytes``
        over the interconnect; 0 without collectives); ``time_s``, the
        largest, as if the others overlapped it, and ``bound``, its name. On
        ``per_device`` under a ``keras.distribution``, a device's step."""
        if traffic not in ("min", "unfused"):
            raise ValueError(f"traffic must be 'min' (compulsory bytes) or 'unfused', got {traffic!r}.")
        dev = hardware.device(device, dtype or self.compute_dtype, self.tensor_float_32)
        flops = self.train_flops if self.training else self.flops
        n_bytes = sum(op.min_bytes if traffic == "min" else op.bytes for op in self.ops)
        times = {
            "compute_s": flops / (dev.peak_tflops * 1e12),
            "memory_s": n_bytes / (dev.bandwidth_gbps * 1e9),
            "communication_s": self.collective_time(dev) if self.collective_ops else 0.0,
        }
        bound = max(times, key=times.get)
        return dict(times, time_s=times[bound], bound=bound[: -len("_s")], device=dev.name)

    def collective_time(self, device) -> float:
        """Seconds a device's collectives take on ``device``'s interconnect
        (a GPU name or a ``keras_flops.Device`` with ``interconnect_gbs``):
        ``collective_bytes`` / its bandwidth."""
        dev = hardware.device(device, self.compute_dtype, self.tensor_float_32)
        if not dev.interconnect_gbs:
            raise ValueError(f"no interconnect bandwidth is known for {dev.name!r}; give a Device with one.")
        return self.collective_bytes / (dev.interconnect_gbs * 1e9)

    # ---------------------------------------------------------------- exports
    def to_dict(self) -> dict:
        """The report as plain JSON types, in the versioned schema of
        docs/report.schema.json (``schema_version`` 2)."""
        return export.as_dict(self)

    def to_json(self, indent: Optional[int] = 2) -> str:
        """``to_dict()`` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent)

    def to_csv(self, path=None, by: str = "layer") -> Optional[str]:
        """The per-layer (or per-op) table as CSV, to ``path`` or returned as a string."""
        return self.to_dataframe(by=by).to_csv(path)

    # ---------------------------------------------------------------- queries
    def explain(self, layer: Optional[str] = None, op_type: Optional[str] = None) -> str:
        """The formula and numbers behind each counted op, one line each.

        ``layer`` selects a layer path and everything nested in it; ``op_type``
        one TensorFlow op type. Uncounted ops of the selection are listed too.
        """

        def selected(item) -> bool:
            return within(item.layer, layer) and (op_type is None or item.op_type == op_type)

        lines = [op.explain() for op in self.ops if selected(op)]
        lines += [f"{u.op_type} {u.node}: not counted: {u.reason}" for u in self.uncounted if selected(u)]
        if not lines:
            known = ", ".join(r.path for r in self.layers[:8])
            raise KeyError(f"no ops for layer={layer!r}, op_type={op_type!r}; layers include: {known}")
        return "\n".join(lines)

    # ------------------------------------------------------- rendering doors
    def readable(
        self, by: str = "layer", top: Optional[int] = None, raw_counts: bool = False
    ) -> pd.DataFrame:
        """``to_dataframe(by)`` for reading: counts in K, M, G, T (or exact with
        ``raw_counts``), shares in percent; ``top`` keeps the N rows with the
        most FLOPs."""
        return text.readable(self, by=by, top=top, raw_counts=raw_counts)

    def to_markdown(
        self, by: str = "layer", top: Optional[int] = None, raw_counts: bool = False, device=None
    ) -> str:
        """The table as Markdown, with the totals below it; ``top`` keeps the
        N rows with the most FLOPs; ``device`` adds each layer's roofline
        ``bound`` on it."""
        return text.markdown(self, by=by, top=top, raw_counts=raw_counts, device=device)

    def plot(self, top: int = 10, path=None, by: str = "layer", ax=None, kind: str = "bars", device=None):
        """A chart of the report, shown or written to ``path`` (a PNG, say):

        - ``kind="bars"``: the ``top`` layers (or op types) by FLOPs, each labelled
          with its share;
        - ``kind="roofline"``: the classic log-log roofline on ``device`` (a GPU
          name or a ``keras_flops.Device``), one point per layer sized by its FLOPs;
        - ``kind="depth"``: FLOPs and bytes along the network, in layer order.

        Counts are labelled in K, M, G, T. Needs matplotlib:
        ``pip install 'keras-flops[plot]'``. Returns the matplotlib Figure.
        """
        if kind == "bars":
            return plot.bars(self, top=top, path=path, by=by, ax=ax)
        if kind == "roofline":
            if device is None:
                raise ValueError("plot(kind='roofline') needs device=, a GPU name or a keras_flops.Device.")
            return plot.roofline(self, device, path=path, ax=ax)
        if kind == "depth":
            return plot.depth(self, path=path, ax=ax)
        raise ValueError(f"kind must be 'bars', 'roofline' or 'depth', got {kind!r}.")

    def uncounted_summary(self) -> str:
        """One paragraph naming the uncounted op types, or "" when there are none."""
        return text.uncounted_summary(self)

    def totals_line(self) -> str:
        """``Total FLOPs: 7.76 G (7,755,299,312) = 3.86 G MACs (3,857,973,248) for a batch of 1``"""
        return text.totals(self, style="line")

    def __str__(self) -> str:
        return text.report_text(self)

    def __repr__(self) -> str:
        return (
            f"FlopsReport(model={self.model_name!r}, batch_size={self.batch_size}, "
            f"flops={self.flops}, macs={self.macs}, layers={len(self.layers)}, "
            f"uncounted={len(self.uncounted)})"
        )


def _roll_up(rows: List[dict], depth: int, counts: List[str]) -> List[dict]:
    """Rows summed into their ancestor at ``depth``, in first-appearance order:
    params and counts add up, calls is the first row's, class and shape the
    ancestor's own row's (if it has one)."""
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}.")
    own = {row["layer"]: row for row in rows}
    groups: Dict[str, dict] = {}
    for row in rows:
        path = ancestor(row["layer"], depth)
        group = groups.get(path)
        if group is None:
            mine = own.get(path, {})
            groups[path] = dict(
                layer=path,
                **{"class": mine.get("class", "")},
                output_shape=mine.get("output_shape"),
                params=row["params"],
                calls=row["calls"],
                **{c: row.get(c, 0) for c in counts},
            )
        else:
            group["params"] += row["params"]
            for c in counts:
                group[c] = group.get(c, 0) + row.get(c, 0)
    return list(groups.values())
