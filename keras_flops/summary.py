"""``summary``: Keras's own model.summary() table, plus FLOPs and MACs columns.

Keras 3 prints its summary in ``keras.src.utils.summary_utils.print_summary``,
with fixed columns. Rather than copy it, ``summary`` runs it unchanged while
that module's ``rich`` name points at a small namespace whose ``Table`` adds
two columns and whose ``Console`` adds the FLOPs footer. The look, the options
(``expand_nested``, ``show_trainable``, ``layer_range``, ``print_fn``,
``line_length``, ``positions``) and nested expansion stay Keras's own.

``attach`` makes a model's own ``model.summary()`` do the same, for that
instance only.
"""

from __future__ import annotations

import contextlib
import functools
import types
from typing import Callable, List, Optional, Sequence, Tuple

import rich.console
import rich.markup
import rich.table

from keras_flops import tracing
from keras_flops.profiling import profile
from keras_flops.report import FlopsReport, format_count

_COLUMN_WIDTH = 10
_ATTACHED = "_keras_flops_report"


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
) -> FlopsReport:
    """Print ``model.summary()`` with FLOPs and MACs columns and a FLOPs footer.

    Each row's FLOPs and MACs include everything the layer runs, its
    sublayers too (an LSTM's cell, a nested model when not expanded), as its
    Param # does. Counts are for one batch of ``batch_size``, in K, M, G, T
    with 3 significant digits, or exact with ``raw_counts=True``. The other
    options are ``model.summary()``'s. Returns the report it printed.
    """
    if report is None:
        report = profile(model, batch_size=batch_size, input_shape=input_shape)
    paths = {id(layer): path for path, layer in tracing.layer_tree(model)}

    def cells(layers):
        counts = [_inclusive(report, paths.get(id(layer))) for layer in layers]
        return [(layer.name, _fmt(f, raw_counts), _fmt(m, raw_counts)) for layer, (f, m) in zip(layers, counts)]

    if not _is_keras3(model):
        _tf_keras_summary(model, cells, _footer(report, raw_counts), print_fn=print_fn,
                          line_length=line_length, positions=positions,
                          expand_nested=expand_nested, show_trainable=show_trainable,
                          layer_range=layer_range)
        return report
    from keras.src.utils import summary_utils

    cells = cells(_rows(model, expand_nested, layer_range))
    with _extended(summary_utils, cells, _footer(report, raw_counts)):
        summary_utils.print_summary(
            model,
            line_length=line_length,
            positions=list(positions) if positions else None,
            print_fn=print_fn,
            expand_nested=expand_nested,
            show_trainable=show_trainable,
            layer_range=layer_range,
        )
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
        return summary(model, report=state["report"], **_summary_kwargs(args, kwargs))

    object.__setattr__(model, "summary", summary_with_flops)
    object.__setattr__(model, _ATTACHED, state)
    return model


def detach(model) -> None:
    """Undo ``attach``: ``model.summary()`` is Keras's own again."""
    for name in ("summary", _ATTACHED):
        vars(model).pop(name, None)


def attached_report(model) -> Optional[FlopsReport]:
    state = vars(model).get(_ATTACHED)
    return state["report"] if state else None


def _summary_kwargs(args, kwargs) -> dict:
    names = ("line_length", "positions", "print_fn", "expand_nested", "show_trainable", "layer_range")
    merged = dict(zip(names, args))
    merged.update(kwargs)
    return merged


def _is_keras3(model) -> bool:
    return type(model).__module__.startswith("keras.") or any(
        c.__module__.startswith("keras.src") for c in type(model).__mro__
    )


def _rows(model, expand_nested: bool, layer_range) -> List:
    """The layers Keras's summary prints a row for, in its order."""
    from keras.src.models import Functional, Sequential
    from keras.src.utils import summary_utils

    if isinstance(model, Sequential) or not isinstance(model, Functional):
        layers = model.layers
    else:
        layers = model._operations
    lo, hi = summary_utils.get_layer_index_bound_by_layer_name(layers, layer_range)

    def visit(layer):
        yield layer
        if expand_nested and getattr(layer, "layers", None):
            for inner in layer.layers:
                yield from visit(inner)

    return [row for layer in layers[lo:hi] for row in visit(layer)]


def _tf_keras_summary(model, cells, footer, print_fn=None, expand_nested=False, **options):
    """tf_keras prints its summary as plain lines through print_fn: add the
    FLOPs and MACs columns to the header, each layer's first line and the
    rules, and the footer after the parameter counts."""
    print_fn = print_fn or print

    def visit(layer):
        yield layer
        if expand_nested and getattr(layer, "layers", None):
            for inner in layer.layers:
                yield from visit(inner)

    rows = [row for layer in model.layers for row in visit(layer)]
    expected = iter(zip(rows, cells(rows)))
    pending = next(expected, None)
    width = _COLUMN_WIDTH + 2

    def emit(line, *args, **kwargs):
        nonlocal pending
        text = str(line)
        core = text.strip().lstrip("|").strip()
        if "Layer (type)" in text:
            text += "FLOPs".rjust(width) + "MACs".rjust(width)
        elif text and set(text.strip()) <= set("_=¯|") and text.strip():
            text += text.strip()[-1] * (2 * width) if text.strip()[-1] != "|" else ""
        elif pending is not None and core.startswith(f"{pending[0].name} ({type(pending[0]).__name__})"):
            _, flops, macs = pending[1]
            text += flops.rjust(width) + macs.rjust(width)
            pending = next(expected, None)
        print_fn(text)
        if text.startswith("Non-trainable params"):
            for extra in footer:
                print_fn(extra.strip())

    model.summary(print_fn=emit, expand_nested=expand_nested, **options)


def _inclusive(report: FlopsReport, path: Optional[str]) -> Tuple[int, int]:
    if path is None:
        return 0, 0
    flops = macs = 0
    for op in report.ops:
        if op.layer == path or op.layer.startswith(path + "/"):
            flops += op.flops
            macs += op.macs
    return flops, macs


def _fmt(n: int, raw: bool) -> str:
    return f"{n:,}" if raw else format_count(n)


def _footer(report: FlopsReport, raw: bool) -> List[str]:
    lines = [
        f" Total FLOPs: {_fmt(report.flops, raw)} ({_fmt(report.macs, raw)} MACs) "
        f"for a batch of {report.batch_size}"
    ]
    outside = sum(op.flops for op in report.ops if op.layer == tracing.OUTSIDE)
    if outside:
        lines.append(f" FLOPs outside any layer: {_fmt(outside, raw)}")
    if report.uncounted:
        lines.append(f" Uncounted ops: {len(report.uncounted)} (see report.uncounted)")
    return lines


@contextlib.contextmanager
def _extended(summary_utils, cells, footer):
    """Point ``summary_utils.rich`` at Table and Console classes that add our
    columns and footer, for one call of print_summary."""
    from keras.src.utils.summary_utils import bold_text, highlight_number

    state = {"row": 0, "width": None, "consoles": []}

    class Table(rich.table.Table):
        def __init__(self, *columns, width=None, **kwargs):
            extra = [
                rich.table.Column(name, justify="right", width=_COLUMN_WIDTH)
                for name in ("FLOPs", "MACs")
            ]
            state["width"] = (width or 0) + 2 * (_COLUMN_WIDTH + 3)
            super().__init__(*columns, *extra, width=state["width"], **kwargs)

        def add_row(self, *fields, **kwargs):
            i = state["row"]
            state["row"] += 1
            name, flops, macs = cells[i] if i < len(cells) else ("", "?", "?")
            if rich.markup.escape(name) not in str(fields[0]):
                flops = macs = "?"  # Keras printed rows we did not expect
            super().add_row(*fields, highlight_number(flops), highlight_number(macs), **kwargs)

    class Console(rich.console.Console):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            if state["width"] and self.width < state["width"] + 1:
                self.width = state["width"] + 1
            self.footer_done = False
            state["consoles"].append(self)

        def print_footer(self):
            if not self.footer_done:
                self.footer_done = True
                for line in footer:
                    label, _, value = line.partition(": ")
                    super().print(bold_text(label + ": ") + highlight_number(value))

        def end_capture(self):
            self.print_footer()
            return super().end_capture()

    namespace = types.SimpleNamespace(
        table=types.SimpleNamespace(Table=Table, Column=rich.table.Column),
        console=types.SimpleNamespace(Console=Console),
        markup=rich.markup,
    )
    saved = summary_utils.rich
    summary_utils.rich = namespace
    try:
        yield
        for console in state["consoles"]:
            console.print_footer()
    finally:
        summary_utils.rich = saved
