"""The summary table: ``model.summary()``'s look, plus FLOPs and MACs columns.

A table of our own, drawn from the layer tree and each layer's cells; Keras's modules
are never patched. Keras 3 models get Keras 3's rich table (the same columns,
widths, nested expansion, ``show_trainable``, ``layer_range`` and footer);
tf_keras models get tf_keras's plain-text table. Each row's FLOPs and MACs
include everything the layer runs, its sublayers too, as its Param # does.
"""

from __future__ import annotations

import io
import re
import shutil
from typing import Any, Callable, List, NamedTuple, Optional, Protocol, Sequence

import rich.console
import rich.markup
import rich.table

from keras_flops import _compat
from keras_flops.formulas.compute import num_elements

COLUMN_WIDTH = 8  # of the FLOPs and MACs columns (Keras 3), at least
PLAIN_WIDTH = 12  # the same, in tf_keras's plain text


class Cells(Protocol):
    """What the table shows beside Keras's columns: their ``headers``, each
    layer's ``cells`` (text) and the ``footer`` lines
    (:class:`keras_flops.model_summary.SummaryCounts`)."""

    headers: List[str]

    def cells(self, layer) -> List[str]: ...

    def footer(self) -> List[str]: ...


def layer_range_bounds(layers, layer_range) -> List[int]:
    """``[first, last + 1]`` of the layers ``layer_range`` (two name regexes) selects,
    as Keras's summary reads it."""
    if layer_range is None:
        return [0, len(layers)]
    if len(layer_range) != 2:
        raise ValueError(
            "layer_range must be a list or tuple of length 2. Received: "
            f"layer_range = {layer_range} of length {len(layer_range)}"
        )
    if not all(isinstance(x, str) for x in layer_range):
        raise ValueError(f"layer_range should contain string type only. Received: {layer_range}")
    lower = [i for i, layer in enumerate(layers) if re.match(layer_range[0], layer.name)]
    upper = [i for i, layer in enumerate(layers) if re.match(layer_range[1], layer.name)]
    if not lower or not upper:
        raise ValueError(
            f"Passed layer_names do not match the layer names in the model. Received: {layer_range}"
        )
    if min(lower) > max(upper):
        return [min(upper), max(lower) + 1]
    return [min(lower), max(upper) + 1]


def _nested(layer, expand_nested: bool, level: int = 0):
    """``(layer, nesting level)`` of a row and, expanded, of its sublayers' rows."""
    yield layer, level
    if expand_nested and getattr(layer, "layers", None):
        for inner in layer.layers:
            yield from _nested(inner, expand_nested, level + 1)


def _memory(weights, bits: Callable) -> float:
    unique = {id(w): w for w in weights}.values()
    return sum(num_elements(w.shape) * bits(w.dtype) for w in unique) / 8


def _readable_bytes(size: float, units=("B", "KB", "MB", "GB", "TB", "PB")) -> str:
    """Keras 3's memory sizes; tf_keras names its first unit "Byte"."""
    for unit in units:
        if size / 1024 < 1:
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} {units[-1]}"


# --------------------------------------------------------------------------
# Keras 3: a rich table


def _number(x) -> str:
    return f"[color({45 if x is None else 34})]{x}[/]"


def _bold(x, color=None) -> str:
    return f"[bold][color({color})]{x}[/][/]" if color else f"[bold]{x}[/]"


def _shape_cell(layer) -> str:
    import keras

    shapes = _compat.output_shapes(layer, lambda shape: f"({', '.join(_number(d) for d in shape)})")
    if shapes is None:
        return "?"
    flat = keras.tree.flatten(shapes)
    return flat[0] if len(flat) == 1 else str(shapes).replace("'", "")


def _fitted_widths(header, align, widths, line_length) -> List[int]:
    """The column widths rich gives Keras's own table, which asks for
    ``widths`` but must fit in ``line_length`` and so shrinks some of them:
    read off the top border of that table, drawn with its header only."""
    columns = [rich.table.Column(h, justify=a, width=w) for h, a, w in zip(header, align, widths)]
    text = io.StringIO()
    console = rich.console.Console(
        file=text, width=10 * line_length, color_system=None, force_terminal=False, force_jupyter=False
    )
    console.print(rich.table.Table(*columns, width=line_length, show_lines=True))
    border = text.getvalue().splitlines()[0]
    return [len(part) - 2 for part in border[1:-1].split("┳")]  # less each side's padding


def keras_header(sequential_like: bool, show_trainable: bool) -> List[str]:
    """Keras's own columns, in both Keras 3's table and tf_keras's text."""
    header = ["Layer (type)", "Output Shape", "Param #"] + ([] if sequential_like else ["Connected to"])
    return header + (["Trainable"] if show_trainable else [])


class Options(NamedTuple):
    """``model.summary()``'s options, as Keras's ``print_summary`` takes them."""

    line_length: Optional[int] = None
    positions: Optional[Sequence[float]] = None
    print_fn: Optional[Callable] = None
    expand_nested: bool = False
    show_trainable: bool = False
    layer_range: Any = None


OPTION_NAMES = Options._fields  # model.summary()'s, in its order


def rich_summary(model, counts: Cells, options: Options) -> None:
    """Keras 3's ``print_summary``, with FLOPs and MACs columns and footer lines."""
    line_length, positions, print_fn, expand_nested, show_trainable, layer_range = options
    sequential_like = _compat.is_sequential_like(model)
    header = keras_header(sequential_like, show_trainable)
    widths = _rich_widths(header, sequential_like, show_trainable, line_length, positions)
    layers = _compat.summary_layers(model)
    lo, hi = layer_range_bounds(layers, layer_range)
    rows = [
        (layer, level, counts.cells(layer))
        for top in layers[lo:hi]
        for layer, level in _nested(top, expand_nested)
    ]
    ours = max([COLUMN_WIDTH] + [len(c) for _, _, cells in rows for c in cells])
    columns = [rich.table.Column(h, justify=a, width=w) for h, a, w in zip(header, _align(header), widths)]
    columns += [rich.table.Column(h, justify="right", width=ours) for h in counts.headers]
    table = rich.table.Table(*columns, show_lines=True)
    for layer, level, cells in rows:
        table.add_row(
            *_rich_fields(model, layer, level, sequential_like, show_trainable), *(_number(c) for c in cells)
        )
    table_width = sum(widths) + len(counts.headers) * ours + 3 * len(columns) + 1
    _print_rich(model, table, table_width, counts.footer(), print_fn)


def _align(header: List[str]) -> List[str]:
    return [{"Param #": "right", "Trainable": "center"}.get(h, "left") for h in header]


def _rich_widths(header, sequential_like, show_trainable, line_length, positions) -> List[int]:
    """The widths of Keras's columns, from ``positions`` (fractions of the
    line) as Keras 3 sets them, then fitted as rich fits Keras's table."""
    if sequential_like:
        default_length, positions = 88, positions or [0.45, 0.80, 1.0]
    else:
        default_length, positions = 108, positions or [0.3, 0.56, 0.74, 1.0]
    if show_trainable:
        default_length += 12
        positions = [p * 0.90 for p in positions] + [1.0]
    line_length = line_length or min(default_length, shutil.get_terminal_size().columns - 4)
    widths, current = [], 0
    for pos in positions:
        width = int(pos * line_length) - current
        if width < 4:
            raise ValueError("Insufficient console width to print summary.")
        widths.append(width)
        current += width
    return _fitted_widths(header, _align(header), widths, line_length)


def _param_lines(model) -> list:
    """Keras 3's footer: ``(label, (count, bytes))`` of the trainable,
    non-trainable and (once built) optimizer weights, and their total."""
    trainable, frozen = model.trainable_weights, model.non_trainable_weights
    optimizer = _compat.optimizer_weights(model)
    bits = _compat.dtype_bits
    sizes = [(_count(w), _memory(w, bits)) for w in (trainable, frozen, optimizer)]
    total = (sum(c for c, _ in sizes), sum(m for _, m in sizes))
    lines = [("Total params", total), ("Trainable params", sizes[0]), ("Non-trainable params", sizes[1])]
    if optimizer:
        lines.append(("Optimizer params", sizes[2]))
    return lines


def _print_rich(model, table, table_width: int, footer: List[str], print_fn) -> None:
    """The title, the table, Keras's parameter lines and ours, printed as
    Keras 3 prints them: to the terminal, to ``print_fn``, or to absl's log
    when Keras's interactive logging is off."""
    import keras

    if not print_fn and not keras.config.is_interactive_logging_enabled():
        from absl import logging

        print_fn = logging.info
    width = max(table_width + 1, 0)
    if print_fn:
        console = rich.console.Console(highlight=False, force_terminal=False, color_system=None, width=width)
        console.begin_capture()
    else:
        console = rich.console.Console(highlight=False)
        if console.width < width:
            console.width = width
    console.print(_bold(f'Model: "{rich.markup.escape(model.name)}"'))
    console.print(table)
    for label, (n, size) in _param_lines(model):
        console.print(_bold(f" {label}: ") + _number(f"{n:,}") + f" ({_readable_bytes(size)})")
    for line in footer:
        label, _, value = line.partition(": ")
        console.print(_bold(f" {label}: ") + _number(value))
    if print_fn:
        print_fn(console.end_capture())


def _count(weights) -> int:
    return sum(num_elements(w.shape) for w in weights)


def _rich_fields(model, layer, level, sequential_like, show_trainable) -> List[str]:
    prefix = "   " * level + "└ " if level else ""
    name = rich.markup.escape(f"{prefix}{layer.name}")
    name += f" ([color(33)]{rich.markup.escape(type(layer).__name__)}[/])"
    if not hasattr(layer, "built"):
        params = _number(0)
    elif not layer.built:
        params = f"{_number(0)} (unbuilt)"
    else:
        params = _number(f"{layer.count_params():,}")
    fields = [name, _shape_cell(layer), params]
    if not sequential_like:
        fields.append(", ".join(_link(c) for c in _compat.connections(model, layer)) or "-")
    if show_trainable:
        if getattr(layer, "weights", None):
            fields.append(_bold("Y", 34) if layer.trainable else _bold("N", 9))
        else:
            fields.append(_bold("-"))
    return fields


def _link(connection: str) -> str:
    """``name[0][0]`` with Keras's highlighted node and tensor indices."""
    name, node, tensor = re.fullmatch(r"(.*)\[(\d+)\]\[(\d+)\]", connection).groups()
    return f"{name}[{_number(node)}][{_number(tensor)}]"


# --------------------------------------------------------------------------
# tf_keras: plain text


def plain_summary(model, counts: Cells, options: Options) -> None:
    """tf_keras's ``print_summary`` text, with FLOPs and MACs columns and footer lines."""
    line_length, positions, print_fn, expand_nested, show_trainable, layer_range = options
    print_fn = print_fn or print
    sequential_like = _compat.is_sequential_like(model)
    header = keras_header(sequential_like, show_trainable)
    line_length, positions = _plain_positions(sequential_like, show_trainable, line_length, positions)
    width = line_length + len(counts.headers) * PLAIN_WIDTH

    def emit_row(fields, cells, level=0):
        lines = _plain_row(fields, positions, level)
        for i, line in enumerate(lines):
            print_fn(line + ("".join(c.rjust(PLAIN_WIDTH) for c in cells) if i == 0 else ""))

    def emit_layer(layer, level=0, last=False):
        emit_row(_plain_fields(model, layer, sequential_like, show_trainable), counts.cells(layer), level)
        if expand_nested and getattr(layer, "layers", None):
            print_fn("|" * (level + 1) + "¯" * (width - 2 * level - 2) + "|" * (level + 1))
            inner = layer.layers
            for i, sub in enumerate(inner):
                emit_layer(sub, level + 1, i == len(inner) - 1)
            print_fn("|" * level + "¯" * (width - 2 * level) + "|" * level)
            last = True  # tf_keras prints no spacer line after an expanded block
        if not last:
            print_fn("|" * level + " " * (width - 2 * level) + "|" * level)

    print_fn(f'Model: "{model.name}"')
    print_fn("_" * width)
    emit_row(header, counts.headers)
    print_fn("=" * width)
    lo, hi = layer_range_bounds(model.layers, layer_range)
    for layer in model.layers[lo:hi]:
        emit_layer(layer)
    print_fn("=" * width)
    for line in _plain_params(model) + list(counts.footer()):
        print_fn(line)
    print_fn("_" * width)


def _plain_positions(sequential_like, show_trainable, line_length, positions):
    """``(line length, the columns' right ends)`` as tf_keras sets them."""
    if sequential_like:
        line_length = line_length or 65
        positions = list(positions or [0.45, 0.85, 1.0])
    else:
        line_length = line_length or 98
        positions = list(positions or [0.3, 0.6, 0.70, 1.0])
    if positions[-1] <= 1:
        positions = [int(line_length * p) for p in positions]
    if show_trainable:
        line_length += 11
        positions.append(line_length)
    return line_length, positions


def _plain_fields(model, layer, sequential_like: bool, show_trainable: bool) -> list:
    """A layer's cells in tf_keras's columns."""
    try:
        shape = layer.output_shape
    except AttributeError:
        shape = "multiple"
    except RuntimeError:
        shape = "?"
    if sequential_like:
        unused = not layer.built and not _compat.is_graph_network(layer)
        fields = [
            f"{layer.name} ({type(layer).__name__})",
            shape,
            "0 (unused)" if unused else layer.count_params(),
        ]
    else:
        fields = [
            f"{layer.name} ({type(layer).__name__})",
            shape,
            layer.count_params(),
            _compat.connections(model, layer),
        ]
    if show_trainable:
        fields.append("Y" if layer.trainable else "N")
    return fields


def _plain_params(model) -> List[str]:
    """tf_keras's parameter lines: counts and sizes of the trainable and non-trainable weights."""

    def size(dtype):
        return dtype.size * 8

    trainable, frozen = model.trainable_weights, model.non_trainable_weights
    t_mem, f_mem = _memory(trainable, size), _memory(frozen, size)
    units = ("Byte", "KB", "MB", "GB", "TB", "PB")
    return [
        f"Total params: {_count(trainable) + _count(frozen)} ({_readable_bytes(t_mem + f_mem, units)})",
        f"Trainable params: {_count(trainable)} ({_readable_bytes(t_mem, units)})",
        f"Non-trainable params: {_count(frozen)} ({_readable_bytes(f_mem, units)})",
    ]


def _plain_row(fields: Sequence, positions: Sequence[int], level: int = 0) -> List[str]:
    """One row as tf_keras lays it out: each field cut to its column, long
    ones continued on the next lines, nested rows framed by ``|``."""
    left = [str(x) for x in fields]
    lines = []
    while any(left):
        line = ""
        for col in range(len(left)):
            start = positions[col - 1] if col > 0 else 0
            end = positions[col]
            space = 2 if col != len(positions) - 1 else 0
            cutoff = end - start - space
            if col != len(positions) - 1:
                cutoff -= 1
            if col == 0:
                cutoff -= level
            fit = left[col][:cutoff]
            breaks = [fit.find(x) + len(x) for x in ("),", "},", "],", "',") if fit.find(x) >= 0]
            if breaks:
                cutoff = min(breaks)
                fit = fit[:cutoff]
            if col == 0:
                line += "|" * level + " "
            line += fit + (" " * space if space else "")
            left[col] = left[col][cutoff:]
            if level and col == len(positions) - 1:
                line += " " * (positions[col] - len(line) - level)
            else:
                line += " " * (positions[col] - len(line))
        lines.append(line + "|" * level)
    return lines
