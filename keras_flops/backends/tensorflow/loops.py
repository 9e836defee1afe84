"""How many times a TensorFlow While loop runs: its counter's start, step and
limit read from the loop's condition and body graphs, with constant folding
for limits computed from constants (the arithmetic is :mod:`keras_flops.core.loops`)."""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import tensorflow as tf

from keras_flops.backends.tensorflow.graph import LOOPS, function_graph
from keras_flops.core.loops import iterations


def trip_count(op, cond, body) -> Tuple[Optional[int], bool]:
    """How many times a While loop runs its body, if the graph fixes it: (trips, exact).

    The loop condition is read as a conjunction of comparisons ``counter <
    limit`` (or <=, >, >=), each counter a loop variable with a constant start
    that the body steps by a constant, each limit a constant or a loop
    variable the body never changes. tf.while_loop's own loop counter and
    ``maximum_iterations`` are one such pair. (In Keras's RNN the limit
    arrives as ``Max(steps, range(rank))``, so constants are folded.) The
    loop runs the fewest times any comparison allows; if a conjunct cannot be
    read the count is an upper bound and ``exact`` is False.
    """
    bounds, exact = [], True
    for comparison in _conjuncts(cond.outputs[0]):
        bound = _comparison_bound(op, cond, body, comparison)
        if bound is None:
            exact = False
        else:
            bounds.append(bound)
    if not bounds:
        return None, False
    return max(0, min(bounds)), exact


_FLIP = {"Less": "Greater", "LessEqual": "GreaterEqual", "Greater": "Less", "GreaterEqual": "LessEqual"}
_COMPARISON = {"Less": "lt", "LessEqual": "le", "Greater": "gt", "GreaterEqual": "ge"}


def _through_identity(tensor):
    while tensor.op.type in ("Identity", "Snapshot") and tensor.op.inputs:
        tensor = tensor.op.inputs[0]
    return tensor


def _conjuncts(tensor) -> list:
    tensor = _through_identity(tensor)
    if tensor.op.type == "LogicalAnd":
        return _conjuncts(tensor.op.inputs[0]) + _conjuncts(tensor.op.inputs[1])
    return [tensor.op]


def _comparison_bound(loop, cond, body, comparison) -> Optional[int]:
    if comparison.type not in _FLIP:
        return None
    a, b = (_through_identity(t) for t in comparison.inputs)
    for kind, counter, limit in ((comparison.type, a, b), (_FLIP[comparison.type], b, a)):
        i = _loop_var_index(cond, counter, len(loop.inputs))
        if i is None:
            continue
        start = static_value(loop.inputs[i])
        step = _body_step(body, i)
        end = _invariant_value(loop, cond, body, limit)
        if start is None or step is None or end is None or step == 0:
            return None
        return iterations(_COMPARISON[kind], int(start), int(step), int(end))
    return None


def _loop_var_index(graph, tensor, n_vars) -> Optional[int]:
    for i, placeholder in enumerate(graph.inputs[:n_vars]):
        if placeholder is tensor:
            return i
    return None


def _body_step(body, i) -> Optional[int]:
    out = _through_identity(body.outputs[i])
    if out.op.type not in ("AddV2", "Add", "Sub"):
        return None
    x, y = (_through_identity(t) for t in out.op.inputs)
    if x is body.inputs[i]:
        step = _static_in(body, y)
    elif y is body.inputs[i] and out.op.type != "Sub":
        step = _static_in(body, x)
    else:
        return None
    if step is None or np.ndim(step) != 0:
        return None
    return -int(step) if out.op.type == "Sub" else int(step)


def _invariant_value(loop, cond, body, tensor):
    j = _loop_var_index(cond, tensor, len(loop.inputs))
    if j is None:
        value = _static_in(cond, tensor)
    elif _through_identity(body.outputs[j]) is body.inputs[j]:
        value = static_value(loop.inputs[j])
    else:
        return None
    return None if value is None or np.ndim(value) != 0 else value


def _static_in(graph, tensor):
    """Static value of a tensor of a function graph, looking through its captures."""
    if tensor.op.type == "Placeholder":
        for external, internal in getattr(graph, "captures", ()):
            if internal is tensor:
                return static_value(external)
    return static_value(tensor)


_FOLD_BINARY = {
    "AddV2": np.add,
    "Add": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "Maximum": np.maximum,
    "Minimum": np.minimum,
    "FloorDiv": np.floor_divide,
}
_FOLD_REDUCE = {"Max": np.max, "Min": np.min, "Sum": np.sum, "Prod": np.prod}


def static_value(tensor, depth: int = 0):
    """The value of a small tensor computed only from constants, or None."""
    value = tf.get_static_value(tensor)
    if value is not None or depth > 16:
        return value
    op = tensor.op
    if op.type in LOOPS:
        return _loop_output_value(tensor, depth)
    args = [static_value(t, depth + 1) for t in op.inputs]
    if any(a is None for a in args):
        return None
    if op.type in _FOLD_REDUCE:
        x, axis = args
        return _FOLD_REDUCE[op.type](
            x, axis=tuple(np.atleast_1d(axis).tolist()), keepdims=op.get_attr("keep_dims")
        )
    if op.type in _FOLD_BINARY:
        return _FOLD_BINARY[op.type](*args)
    if op.type == "Range":
        return np.arange(*args)
    if op.type in ("Identity", "Cast"):
        return args[0]
    return None


def _loop_output_value(tensor, depth: int):
    """A While output that the graph fixes: a counter's start + step x trips, or
    an unchanged loop variable. The gradient of a loop runs as many times as
    the loop, and learns that count from the loop's own counter output."""
    op = tensor.op
    body, cond = function_graph(op, "body"), function_graph(op, "cond")
    if body is None or cond is None:
        return None
    i = tensor.value_index
    if _through_identity(body.outputs[i]) is body.inputs[i]:
        return static_value(op.inputs[i], depth + 1)
    step, start = _body_step(body, i), static_value(op.inputs[i], depth + 1)
    trips, exact = trip_count(op, cond, body)
    if step is None or start is None or trips is None or not exact:
        return None
    return np.asarray(int(start) + step * trips)
