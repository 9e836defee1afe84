"""``summary``: ``model.summary()`` with FLOPs and MACs columns; ``attach``
makes a model's own ``model.summary()`` show them.

The table is our own (:mod:`keras_flops.render.summary_table`), drawn in
Keras's look from each layer's cells (:class:`SummaryCounts`, read from the
report and the layer tree): no Keras module is patched,
so two threads can print summaries at once.
"""

from __future__ import annotations

import functools
from typing import Callable, List, Optional, Sequence

from keras_flops import _compat
from keras_flops.core import layers
from keras_flops.core.report import FlopsReport
from keras_flops.profiling import profile
from keras_flops.core import hardware
from keras_flops.core.records import BACKWARD, OUTSIDE, within
from keras_flops.render.summary_table import OPTION_NAMES, Options, plain_summary, rich_summary
from keras_flops.render.text import count_text, totals

_ATTACHED = "_keras_flops_report"


# fmt: off
COLUMNS = {"flops": "FLOPs", "macs": "MACs", "bytes": "Bytes", "min_bytes": "MinBytes", "bound": "Bound",
           "saved_bytes": "Saved"}
# fmt: on


class SummaryCounts:
    """What the table needs of a report: each layer's cells (its inclusive
    counts, in ``columns``), and the footer. ``"bound"`` needs a ``device``."""

    def __init__(
        self, report, paths: dict, raw: bool, columns: Sequence[str] = ("flops", "macs"), device=None
    ):
        unknown = [c for c in columns if c not in COLUMNS]
        if unknown or not columns:
            raise ValueError(f"columns must be some of {tuple(COLUMNS)}, got {tuple(columns)!r}.")
        if "bound" in columns and device is None:
            raise ValueError("the 'bound' column needs device=, a GPU name or a keras_flops.Device.")
        if "saved_bytes" in columns and not report.training:
            raise ValueError(
                "the 'saved_bytes' column needs a training report: keras_flops.profile(model, training=True)."
            )
        self.report, self.paths, self.raw, self.columns = report, paths, raw, tuple(columns)
        self.device = (
            hardware.device(device, report.compute_dtype, report.tensor_float_32)
            if device is not None
            else None
        )
        self.headers = [COLUMNS[c] for c in self.columns]

    def cells(self, layer) -> List[str]:
        path = self.paths.get(id(layer))
        flops, macs, n_bytes, n_min = self.report.inclusive(path) if path is not None else (0, 0, 0, 0)
        values = {
            "flops": count_text(flops, self.raw),
            "macs": count_text(macs, self.raw),
            "bytes": count_text(n_bytes, self.raw),
            "min_bytes": count_text(n_min, self.raw),
        }
        if "saved_bytes" in self.columns:
            saved = sum(
                n for layer, n in self.report.activations.saved if path is not None and within(layer, path)
            )
            values["saved_bytes"] = count_text(saved, self.raw)
        if self.device is not None:  # compulsory traffic, as the roofline's default
            values["bound"] = self.device.bound(flops, n_min) if flops or n_min else "-"
        return [values[c] for c in self.columns]

    def footer(self) -> List[str]:
        lines = [totals(self.report, "footer", raw=self.raw)]
        outside = sum(op.flops for op in self.report.ops if op.layer == OUTSIDE and op.phase != BACKWARD)
        if outside:
            lines.append(f"FLOPs outside any layer: {count_text(outside, self.raw)}")
        if self.report.uncounted:
            lines.append(f"Uncounted ops: {len(self.report.uncounted)} (see report.uncounted)")
        return lines


def summary(
    model,
    batch_size: int = 1,
    *,
    report: Optional[FlopsReport] = None,
    input_shape=None,
    raw_counts: bool = False,
    line_length: Optional[int] = None,
    positions: Optional[Sequence[float]] = None,
    print_fn: Optional[Callable] = None,
    expand_nested: bool = False,
    show_trainable: bool = False,
    layer_range=None,
    columns: Sequence[str] = ("flops", "macs"),
    device=None,
) -> FlopsReport:
    """Print ``model.summary()`` with FLOPs and MACs columns and a FLOPs footer.

    Each row's FLOPs and MACs include everything the layer runs, its
    sublayers too (an LSTM's cell, a nested model when not expanded), as its
    Param # does. Counts are for one batch of ``batch_size``, in K, M, G, T
    with 3 significant digits, or exact with ``raw_counts=True``. The other
    options are ``model.summary()``'s. ``columns`` picks the added columns from
    "flops", "macs", "bytes" (moved, inclusive, unfused), "min_bytes" (the
    compulsory traffic: inputs, outputs and weights once) and "bound"
    ("compute" or "memory" by the compulsory traffic, on ``device``, a GPU
    name or a ``keras_flops.Device``) and "saved_bytes" (the activations the
    layer keeps for the backward pass of a training step: the model is then
    profiled with ``training=True``, and the FLOPs columns stay the forward
    pass's). Returns the report it printed.
    """
    if report is None:
        report = profile(
            model, batch_size=batch_size, input_shape=input_shape, training="saved_bytes" in columns
        )
    paths = {id(layer): path for path, layer in layers.layer_tree(model)}
    render = plain_summary if _compat.is_tf_keras(model) else rich_summary
    options = Options(line_length, positions, print_fn, expand_nested, show_trainable, layer_range)
    render(model, SummaryCounts(report, paths, raw_counts, columns, device), options)
    return report


def attach(model, batch_size: int = 1, *, report: Optional[FlopsReport] = None, input_shape=None):
    """Make this model's own ``model.summary()`` show FLOPs and MACs columns.

    Only this instance changes (an instance attribute; no class is patched),
    and nothing of it is saved: the model saves and reloads as before, without
    the attachment. A model that is not built yet is profiled when
    ``model.summary()`` is first called. ``detach(model)`` undoes it.
    """
    if report is None and getattr(model, "built", False):
        report = profile(model, batch_size=batch_size, input_shape=input_shape)
    state = {"report": report, "batch_size": batch_size, "input_shape": input_shape}
    original = type(model).summary

    @functools.wraps(original)
    def summary_with_flops(*args, **kwargs):
        if state["report"] is None:
            if not getattr(model, "built", False):
                return original(model, *args, **kwargs)
            state["report"] = profile(model, state["batch_size"], state["input_shape"])
        options = dict(zip(OPTION_NAMES, args), **kwargs)
        return summary(model, report=state["report"], **options)

    object.__setattr__(model, "summary", summary_with_flops)
    object.__setattr__(model, _ATTACHED, state)
    return model


def detach(model) -> None:
    """Undo ``attach``: ``model.summary()`` is Keras's own again."""
    for name in ("summary", _ATTACHED):
        vars(model).pop(name, None)
