"""``summary``: ``model.summary()`` with FLOPs and MACs columns; ``attach``
makes a model's own ``model.summary()`` show them.

The table is our own (:mod:`keras_flops.render.summary_table`), drawn in
Keras's look from the report and the layer tree: no Keras module is patched,
so two threads can print summaries at once.
"""

from __future__ import annotations

import functools
from typing import Callable, Optional, Sequence

from keras_flops import _compat
from keras_flops.core import layers
from keras_flops.core.report import FlopsReport
from keras_flops.profiling import profile
from keras_flops.render.summary_table import SummaryCounts, plain_summary, rich_summary

_ATTACHED = "_keras_flops_report"
_OPTIONS = ("line_length", "positions", "print_fn", "expand_nested", "show_trainable", "layer_range")


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
        report = profile(model, batch_size=batch_size, input_shape=input_shape,
                         training="saved_bytes" in columns)
    paths = {id(layer): path for path, layer in layers.layer_tree(model)}
    render = plain_summary if _compat.is_tf_keras(model) else rich_summary
    render(model, SummaryCounts(report, paths, raw_counts, columns, device), line_length=line_length,
           positions=positions, print_fn=print_fn, expand_nested=expand_nested,
           show_trainable=show_trainable, layer_range=layer_range)
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
        options = dict(zip(_OPTIONS, args), **kwargs)
        return summary(model, report=state["report"], **options)

    object.__setattr__(model, "summary", summary_with_flops)
    object.__setattr__(model, _ATTACHED, state)
    return model


def detach(model) -> None:
    """Undo ``attach``: ``model.summary()`` is Keras's own again."""
    for name in ("summary", _ATTACHED):
        vars(model).pop(name, None)
