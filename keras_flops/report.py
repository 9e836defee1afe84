"""FlopsReport: the immutable result of profiling, its totals and its views."""

from __future__ import annotations

import collections
import dataclasses
import functools
import json
from typing import Any, Optional, Tuple

import pandas as pd

from keras_flops.counting import OpCount, UncountedOp

_UNITS = ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "K"))
SCHEMA_VERSION = 1


def format_count(n: float) -> str:
    """A count in readable units with 3 significant digits: 7755299312 -> '7.76 G'."""
    for scale, unit in _UNITS:
        if abs(n) >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.3g}" if isinstance(n, float) and n != int(n) else str(int(n))


@dataclasses.dataclass(frozen=True)
class LayerRow:
    """A layer of the profiled model that was called while tracing."""

    path: str  # relative to the model: "backbone/block1_conv"
    class_name: str
    output_shape: Any
    params: int  # weights the layer holds itself, not through sublayers
    calls: int


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

    # ------------------------------------------------------------------ totals
    def _sum(self, field: str, phases: Tuple[str, ...]) -> int:
        return sum(getattr(op, field) for op in self.ops if op.phase in phases)

    @functools.cached_property
    def flops(self) -> int:
        """Forward FLOPs for one batch (a multiply-accumulate counts 2); in a
        training report, the forward pass with training=True and the loss."""
        return self._sum("flops", ("forward", "loss"))

    @functools.cached_property
    def macs(self) -> int:
        """Forward multiply-accumulates for one batch (FLOPs / 2 of Conv, MatMul, ...)."""
        return self._sum("macs", ("forward", "loss"))

    @property
    def loss_flops(self) -> int:
        """FLOPs of the loss (training reports; 0 otherwise)."""
        return self._sum("flops", ("loss",))

    @property
    def backward_flops(self) -> int:
        """FLOPs of the gradients, the loss's included (training reports; 0 otherwise)."""
        return self._sum("flops", ("backward",))

    @property
    def backward_macs(self) -> int:
        return self._sum("macs", ("backward",))

    @property
    def train_flops(self) -> int:
        """FLOPs of one training step, forward + loss + backward, without the
        optimizer's update (training reports; for others, the forward FLOPs)."""
        return self._sum("flops", ("forward", "loss", "backward"))

    @property
    def train_macs(self) -> int:
        return self._sum("macs", ("forward", "loss", "backward"))

    @property
    def flops_per_sample(self) -> float:
        return self.flops / self.batch_size

    @property
    def macs_per_sample(self) -> float:
        return self.macs / self.batch_size

    @property
    def params(self) -> int:
        return sum(row.params for row in self.layers)

    # ------------------------------------------------------------------ tables
    def to_dataframe(self, by: str = "layer", depth: Optional[int] = None) -> pd.DataFrame:
        """A pandas table: one row per layer (``by="layer"``) or per op type (``by="op"``).

        By layer, the index is the layer path and the columns are ``class``,
        ``output_shape``, ``params``, ``calls``, ``flops``, ``macs`` and
        ``share`` (of total FLOPs); ``depth=1`` sums nested layers into their
        top-level ancestor. By op, the index is the TensorFlow op type and the
        columns are ``count``, ``flops``, ``macs`` and ``share``.
        """
        if by == "layer":
            return self._by_layer(depth)
        if by == "op":
            return self._by_op()
        raise ValueError(f"by must be 'layer' or 'op', got {by!r}.")

    def _sums(self, key: str) -> dict:
        """{key value: {column: sum}} over the ops, split forward / backward."""
        sums: dict = collections.defaultdict(collections.Counter)
        for op in self.ops:
            row = sums[getattr(op, key)]
            row["count"] += 1
            if op.phase == "backward":
                row["backward_flops"] += op.flops
                row["backward_macs"] += op.macs
            else:  # the loss counts with the forward pass of its row "(loss)"
                row["flops"] += op.flops
                row["macs"] += op.macs
        return sums

    def _add_columns(self, df: pd.DataFrame, sums: dict, key: str) -> pd.DataFrame:
        columns = ["flops", "macs"] + (["backward_flops", "backward_macs"] if self.training else [])
        for column in columns:
            df[column] = [sums.get(k, {}).get(column, 0) for k in df[key]]
        return df

    def _finish(self, df: pd.DataFrame) -> pd.DataFrame:
        df["share"] = df["flops"] / self.flops if self.flops else 0.0
        if self.training:
            df["train_flops"] = df["flops"] + df["backward_flops"]
            df["train_ratio"] = df["train_flops"] / df["flops"].where(df["flops"] > 0)
        return df

    def _by_layer(self, depth: Optional[int]) -> pd.DataFrame:
        sums = self._sums("layer")
        rows = [dataclasses.astuple(r) for r in self.layers]
        known = {r.path for r in self.layers}
        named = list(sums) + [u.layer for u in self.uncounted]
        rows += [(p, "", None, 0, 0) for p in dict.fromkeys(named) if p not in known]
        df = pd.DataFrame(rows, columns=["layer", "class", "output_shape", "params", "calls"])
        df = self._add_columns(df, sums, "layer")
        if depth is not None:
            df = _roll_up(df, depth)
        return self._finish(df).set_index("layer")

    def _by_op(self) -> pd.DataFrame:
        sums = self._sums("op_type")
        df = pd.DataFrame({"op_type": list(sums), "count": [sums[k]["count"] for k in sums]})
        df = self._finish(self._add_columns(df, sums, "op_type")).set_index("op_type")
        order = "train_flops" if self.training else "flops"
        return df.sort_values([order, "count"], ascending=False)

    # ---------------------------------------------------------------- exports
    def to_dict(self) -> dict:
        """The report as plain JSON types, in the versioned schema of
        docs/report.schema.json (``schema_version`` 1)."""
        layers = self.to_dataframe()
        ops = self.to_dataframe(by="op")
        return {
            "schema": "keras_flops.report",
            "schema_version": SCHEMA_VERSION,
            "model": self.model_name,
            "batch_size": self.batch_size,
            "counting": self.counting,
            "training": self.training,
            "inputs": [{"name": n, "shape": list(s)} for n, s in self.input_shapes],
            "totals": {
                "flops": self.flops,
                "macs": self.macs,
                "params": self.params,
                "flops_per_sample": self.flops_per_sample,
                "macs_per_sample": self.macs_per_sample,
                **({"backward_flops": self.backward_flops, "backward_macs": self.backward_macs,
                    "train_flops": self.train_flops, "train_macs": self.train_macs}
                   if self.training else {}),
            },
            "layers": [
                {
                    "path": path,
                    "class": row["class"],
                    "output_shape": _jsonable(row["output_shape"]),
                    "params": int(row["params"]),
                    "calls": int(row["calls"]),
                    "flops": int(row["flops"]),
                    "macs": int(row["macs"]),
                    "share": float(row["share"]),
                    **({"backward_flops": int(row["backward_flops"]),
                        "backward_macs": int(row["backward_macs"]),
                        "train_flops": int(row["train_flops"])} if self.training else {}),
                }
                for path, row in layers.iterrows()
            ],
            "ops": [
                {
                    "op_type": op_type,
                    "count": int(row["count"]),
                    "flops": int(row["flops"]),
                    "macs": int(row["macs"]),
                    "share": float(row["share"]),
                }
                for op_type, row in ops.iterrows()
            ],
            "uncounted": [dataclasses.asdict(u) for u in self.uncounted],
            "notes": list(self.notes),
        }

    def to_json(self, indent: Optional[int] = 2) -> str:
        """``to_dict()`` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent)

    def to_csv(self, path=None, by: str = "layer") -> Optional[str]:
        """The per-layer (or per-op) table as CSV, to ``path`` or returned as a string."""
        return self.to_dataframe(by=by).to_csv(path)

    def to_markdown(self, by: str = "layer", top: Optional[int] = None, raw_counts: bool = False) -> str:
        """The table as Markdown, with the totals below it; ``top`` keeps the
        N rows with the most FLOPs."""
        table = self.readable(by=by, top=top, raw_counts=raw_counts)
        totals = (
            f"**Total FLOPs:** {format_count(self.flops)} ({self.flops:,}), "
            f"**MACs:** {format_count(self.macs)} ({self.macs:,}), for a batch of {self.batch_size}"
        )
        return table.to_markdown() + "\n\n" + totals + "\n"

    def readable(self, by: str = "layer", top: Optional[int] = None, raw_counts: bool = False) -> pd.DataFrame:
        """``to_dataframe(by)`` for reading: counts in K, M, G, T (or exact with
        ``raw_counts``), shares in percent; ``top`` keeps the N rows with the
        most FLOPs."""
        df = self.to_dataframe(by=by)
        raw = raw_counts
        if top is not None:
            df = df.sort_values("flops", ascending=False, kind="stable").head(top)
        count = (lambda n: f"{n:,}") if raw else format_count
        out = df.copy()
        for column in ("flops", "macs", "params", "count"):
            if column in out:
                out[column] = [count(v) for v in out[column]]
        if "output_shape" in out:
            out["output_shape"] = [_shape_text(s) for s in out["output_shape"]]
        out["share"] = [f"{v:.1%}" for v in df["share"]]
        return out

    def plot(self, top: int = 10, path=None, by: str = "layer", ax=None):
        """Horizontal bars of the ``top`` layers (or op types) by FLOPs, each
        labelled with its share; shown, or written to ``path`` (a PNG, say).

        Needs matplotlib: ``pip install 'keras-flops[plot]'``. Returns the
        matplotlib Figure.
        """
        try:
            import matplotlib

            if path is not None and ax is None:
                matplotlib.use("Agg", force=False)
            import matplotlib.pyplot as plt
        except ImportError as err:
            raise ImportError(
                "report.plot() needs matplotlib: pip install 'keras-flops[plot]'."
            ) from err
        df = self.to_dataframe(by=by).sort_values("flops", ascending=False, kind="stable").head(top)
        df = df.iloc[::-1]  # largest at the top
        if ax is None:
            fig, ax = plt.subplots(figsize=(8, 0.4 * len(df) + 1.2))
        else:
            fig = ax.figure
        labels = [str(i) for i in df.index]
        bars = ax.barh(labels, df["flops"], color="tab:blue")
        for bar, share, flops in zip(bars, df["share"], df["flops"]):
            ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2,
                    f" {format_count(flops)} ({share:.1%})", va="center", fontsize=8)
        ax.set_xlabel(f"FLOPs for a batch of {self.batch_size}")
        ax.set_title(f"{self.model_name}: top {len(df)} {'layers' if by == 'layer' else 'op types'} "
                     f"of {format_count(self.flops)} FLOPs")
        ax.margins(x=0.25)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=120)
            plt.close(fig)
        return fig

    # ---------------------------------------------------------------- explain
    def explain(self, layer: Optional[str] = None, op_type: Optional[str] = None) -> str:
        """The formula and numbers behind each counted op, one line each.

        ``layer`` selects a layer path and everything nested in it; ``op_type``
        one TensorFlow op type. Uncounted ops of the selection are listed too.
        """

        def selected(item) -> bool:
            in_layer = layer is None or item.layer == layer or item.layer.startswith(layer + "/")
            return in_layer and (op_type is None or item.op_type == op_type)

        lines = [op.explain() for op in self.ops if selected(op)]
        lines += [f"{u.op_type} {u.node}: not counted: {u.reason}" for u in self.uncounted if selected(u)]
        if not lines:
            known = ", ".join(r.path for r in self.layers[:8])
            raise KeyError(
                f"no ops for layer={layer!r}, op_type={op_type!r}; layers include: {known}"
            )
        return "\n".join(lines)

    # ---------------------------------------------------------------- messages
    def uncounted_summary(self) -> str:
        """One paragraph naming the uncounted op types, or "" when there are none."""
        if not self.uncounted:
            return ""
        by_type = collections.Counter(u.op_type for u in self.uncounted)
        parts = ", ".join(f"{t} x{n}" for t, n in by_type.most_common())
        first = self.uncounted[0]
        return (
            f"keras_flops: {len(self.uncounted)} op(s) in {self.model_name!r} may cost "
            f"FLOPs but were not counted ({parts}); e.g. {first.node} in layer "
            f"{first.layer!r}: {first.reason}. They are listed in report.uncounted; "
            "keras_flops.register_flops(op_type) adds a formula."
        )

    def __str__(self) -> str:
        df = self.to_dataframe()
        shown = pd.DataFrame(
            {
                "Class": df["class"],
                "Output shape": [_shape_text(s) for s in df["output_shape"]],
                "Params": [f"{p:,}" for p in df["params"]],
                "FLOPs": [f"{f:,}" for f in df["flops"]],
                "MACs": [f"{m:,}" for m in df["macs"]],
                "Share": [f"{s:.1%}" for s in df["share"]],
            },
            index=df.index.rename("Layer"),
        )
        inputs = ", ".join(f"{name} {shape}" for name, shape in self.input_shapes)
        lines = [
            f"Model {self.model_name!r}, a batch of {self.batch_size}, inputs: {inputs}",
            shown.to_string(),
            self.totals_line(),
        ]
        lines += list(self.notes)
        if self.uncounted:
            lines.append(self.uncounted_summary())
        return "\n".join(lines)

    def totals_line(self) -> str:
        """``Total FLOPs: 7.76 G (7,755,299,312) = 3.86 G MACs (3,857,973,248) for a batch of 1``"""
        return (
            f"Total FLOPs: {format_count(self.flops)} ({self.flops:,}) = "
            f"{format_count(self.macs)} MACs ({self.macs:,}) for a batch of {self.batch_size}"
        )

    def __repr__(self) -> str:
        return (
            f"FlopsReport(model={self.model_name!r}, batch_size={self.batch_size}, "
            f"flops={self.flops}, macs={self.macs}, layers={len(self.layers)}, "
            f"uncounted={len(self.uncounted)})"
        )


def _roll_up(df: pd.DataFrame, depth: int) -> pd.DataFrame:
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}.")
    df = df.copy()
    df["group"] = ["/".join(p.split("/")[:depth]) for p in df["layer"]]
    own = df.set_index("layer")
    counts = [c for c in df.columns if c == "params" or c.endswith(("flops", "macs"))]
    grouped = df.groupby("group", sort=False).agg(
        calls=("calls", "first"), **{c: (c, "sum") for c in counts}
    )
    grouped["class"] = [own["class"].get(g, "") for g in grouped.index]
    grouped["output_shape"] = [own["output_shape"].get(g) for g in grouped.index]
    grouped = grouped.reset_index().rename(columns={"group": "layer"})
    rest = [c for c in counts if c != "params"]
    return grouped[["layer", "class", "output_shape", "params", "calls"] + rest]


def _jsonable(shape):
    if shape is None:
        return None
    if isinstance(shape, list):
        return [_jsonable(s) for s in shape]
    return list(shape)


def _shape_text(shape) -> str:
    if shape is None:
        return ""
    if isinstance(shape, list):
        return ", ".join(_shape_text(s) for s in shape)
    return str(tuple(shape))
