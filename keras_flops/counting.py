"""Counting: walk a traced graph and its function bodies, and price every op.

The default walk counts only what runs: it starts from the function's
outputs and control outputs and goes back through data and control inputs,
so ops that feed nothing (the cell step Keras's RNN traces outside its loop
to learn shapes) are pruned. It enters functions: a While body counts times
its trip count, an If or Case counts its costlier branch, a PartitionedCall
counts its body. ``mode="tfprof"`` instead reproduces tf.profiler: every op
of the top graph, TensorFlow's formulas only, no functions entered.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np
import tensorflow as tf

from keras_flops import formulas
from keras_flops.formulas import tensorflow as tf_formulas
from keras_flops.tracing import LOSS, OUTSIDE, Trace

MODES = ("full", "tfprof")


@dataclasses.dataclass(frozen=True)
class OpCount:
    """One counted op: where it is, what it costs, and whose formula said so.

    ``flops`` and ``macs`` include ``repeat``, the number of times the op runs
    (a loop body's trip count, 1 elsewhere); ``formula`` shows the arithmetic
    of one run.
    """

    node: str
    op_type: str
    layer: str
    flops: int
    macs: int
    source: str  # "tensorflow", "keras_flops" or "user"
    formula: str = ""
    repeat: int = 1
    phase: str = "forward"  # "forward", "loss" or "backward" (training traces)

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
class UncountedOp:
    """An op that may cost FLOPs but was not counted, and why."""

    node: str
    op_type: str
    layer: str
    reason: str


LOOPS = frozenset({"While", "StatelessWhile"})
BRANCHES = frozenset({"If", "StatelessIf", "Case", "StatelessCase"})
CALLS = frozenset({"PartitionedCall", "StatefulPartitionedCall"})


def count(
    trace: Trace, formulas_: Optional[Mapping] = None, mode: str = "full"
) -> Tuple[List[OpCount], List[UncountedOp], List[str]]:
    """Count ``trace``'s graph: (counted ops, uncounted ops, notes)."""
    if mode not in MODES:
        raise ValueError(f"counting must be one of {MODES}, got {mode!r}.")
    walker = _Walker(trace, formulas_, tfprof=(mode == "tfprof"))
    walker.walk(trace.function.graph, repeat=1, default_layer=OUTSIDE)
    return walker.counted, walker.uncounted, list(trace.notes) + walker.notes


class _Walker:
    def __init__(self, trace: Trace, formulas_: Optional[Mapping], tfprof: bool):
        self.trace = trace
        self.formulas = formulas_
        self.tfprof = tfprof
        self.counted: List[OpCount] = []
        self.uncounted: List[UncountedOp] = []
        self.notes: List[str] = []

    def walk(self, graph, repeat: int, default_layer: str, phase: Optional[str] = None) -> None:
        """Count ``graph``'s ops ``repeat`` times; ``phase`` is the calling op's
        (None at the top, where each op's own phase is known)."""
        ops = graph.get_operations() if self.tfprof else live_ops(graph)
        for op in ops:
            op_phase = phase or self.trace.phase_of(op)
            fallback = LOSS if op_phase == "loss" else default_layer
            layer = self.trace.layer_of(op)
            if layer is None and op_phase == "backward":
                layer = self._backward_owner(op)
            layer = layer or fallback
            if not self.tfprof and op.type in LOOPS | BRANCHES | CALLS:
                self._function_op(op, repeat, layer, op_phase)
                continue
            result = count_op(op, self.formulas, self.tfprof)
            if isinstance(result, str):
                self.uncounted.append(UncountedOp(op.name, op.type, layer, result))
            elif result is not None:
                cost, source = result
                self.counted.append(
                    OpCount(op.name, op.type, layer, cost.flops * repeat, cost.macs * repeat,
                            source, cost.text, repeat, op_phase)
                )

    def _backward_owner(self, op) -> Optional[str]:
        """A gradient op with no forward name to go by (the AddN summing a
        shared weight's gradients, a loss's gradient at the root scope): the
        loss's if the loss or the labels feed it, else its inputs' layer."""
        sources = [t.op for t in op.inputs]
        if any(self.trace.phase_of(s, "") == "loss" for s in sources):
            return LOSS
        return next(filter(None, (self.trace.layer_of(s) for s in sources)), None)

    def _function_op(self, op, repeat: int, layer: str, phase: str) -> None:
        def missing(reason):
            self.uncounted.append(UncountedOp(op.name, op.type, layer, reason))

        if op.type in CALLS:
            body = function_graph(op, "f")
            if body is None:
                return missing("the called function's graph is not available")
            return self.walk(body, repeat, layer, phase)
        if op.type in LOOPS:
            body, cond = function_graph(op, "body"), function_graph(op, "cond")
            if body is None or cond is None:
                return missing("the loop's body is not available")
            trips, exact = trip_count(op, cond, body)
            if trips is None:
                return missing(
                    "the loop's trip count is not fixed by the graph (its condition is "
                    "not a counter against a constant limit), so its body cannot be counted"
                )
            if not exact:
                self.notes.append(
                    f"{op.type} {op.name} (layer {layer!r}): counted {trips} iterations, an "
                    "upper bound; the loop condition may end it sooner."
                )
            self.walk(body, repeat * trips, layer, phase)
            self.walk(cond, repeat * (trips + 1), layer, phase)  # the test runs once more
            return None
        # If / Case: count the costlier branch, and say so.
        names = ["then_branch", "else_branch"] if "If" in op.type else None
        branches = _branch_graphs(op, names)
        if branches is None:
            return missing("a branch's graph is not available")
        costs = []
        for label, graph in branches:
            sub = _Walker(self.trace, self.formulas, self.tfprof)
            sub.walk(graph, repeat, layer, phase)
            costs.append((sum(c.flops for c in sub.counted), label, sub))
        flops, label, best = max(costs, key=lambda c: c[0])
        self.counted += best.counted
        self.uncounted += best.uncounted
        self.notes += best.notes
        others = ", ".join(f"{lab} {f:,}" for f, lab, _ in costs if lab != label)
        self.notes.append(
            f"{op.type} {op.name} (layer {layer!r}): counted its costlier branch, "
            f"{label} with {flops:,} FLOPs (others: {others})."
        )
        return None


def count_op(op, formulas_: Optional[Mapping] = None, tfprof: bool = False):
    """Cost of one op: ``(Cost, source)``, ``None`` for a zero-cost op, or the
    reason (a string) it could not be counted."""
    resolution = formulas.resolve(op.type, formulas_, tfprof=tfprof)
    if not tfprof and formulas.on_strings(op) and (resolution is None or resolution.source != "user"):
        return None
    if resolution is None:
        if tfprof and formulas.resolve(op.type, formulas_) is not None:
            return "tf.profiler has no formula for it (counting='tfprof')"
        return f"no formula for op type {op.type}"
    if resolution.source == "zero":
        return None
    if resolution.source == "tensorflow":
        try:
            flops = tf_formulas.count(op)
        except ValueError as err:
            fallback = None if tfprof else formulas.builtin_formula(op.type)
            if fallback is None:
                return f"TensorFlow's {op.type} formula failed: {err}"
            resolution = formulas.Resolution("keras_flops", fallback)
        else:
            text = tf_formulas.explain(op)
            return formulas.with_macs(op.type, flops, text), "tensorflow"
    spec = formulas.OpSpec.from_op(op)
    try:
        cost = formulas.apply(resolution.formula, spec)
    except Exception as err:  # a formula's failure is reported, never fatal
        return f"{resolution.source} formula for {op.type} failed: {type(err).__name__}: {err}"
    return cost, resolution.source


# --------------------------------------------------------------------------
# Graph helpers


def live_ops(graph) -> list:
    """Ops that the graph's outputs or control outputs depend on, in graph order."""
    stack = [t.op for t in graph.outputs] + list(graph.control_outputs)
    live = set()
    while stack:
        op = stack.pop()
        if op.name in live:
            continue
        live.add(op.name)
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return [op for op in graph.get_operations() if op.name in live]


def function_graph(op, attr: str):
    """The FuncGraph of the function an op's attribute names, if it is at hand."""
    return _graph_named(op.graph, op.get_attr(attr).name)


def _graph_named(graph, name: str):
    while graph is not None:
        fn = getattr(graph, "_functions", {}).get(name)
        if fn is not None:
            return getattr(fn, "graph", None)
        graph = getattr(graph, "outer_graph", None)
    return None


def _branch_graphs(op, names):
    if names:
        pairs = [(n.split("_")[0], function_graph(op, n)) for n in names]
    else:
        attrs = op.get_attr("branches")
        pairs = [(f"branch {i}", _graph_named(op.graph, a.name)) for i, a in enumerate(attrs)]
    return None if any(g is None for _, g in pairs) else pairs


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
        return _iterations(kind, int(start), int(step), int(end))
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


def _iterations(kind: str, start: int, step: int, end: int) -> Optional[int]:
    if kind in ("Less", "LessEqual"):
        if step < 0:
            return None
        span = end - start + (1 if kind == "LessEqual" else 0)
        return max(0, -(-span // step))
    if step > 0:
        return None
    span = start - end + (1 if kind == "GreaterEqual" else 0)
    return max(0, -(-span // -step))


_FOLD_BINARY = {
    "AddV2": np.add, "Add": np.add, "Sub": np.subtract, "Mul": np.multiply,
    "Maximum": np.maximum, "Minimum": np.minimum, "FloorDiv": np.floor_divide,
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
