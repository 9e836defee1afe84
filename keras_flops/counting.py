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
from keras_flops.tracing import OUTSIDE, Trace

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
    return walker.counted, walker.uncounted, walker.notes


class _Walker:
    def __init__(self, trace: Trace, formulas_: Optional[Mapping], tfprof: bool):
        self.trace = trace
        self.formulas = formulas_
        self.tfprof = tfprof
        self.counted: List[OpCount] = []
        self.uncounted: List[UncountedOp] = []
        self.notes: List[str] = []

    def walk(self, graph, repeat: int, default_layer: str) -> None:
        ops = graph.get_operations() if self.tfprof else live_ops(graph)
        for op in ops:
            layer = self.trace.layer_of(op) or default_layer
            if not self.tfprof and op.type in LOOPS | BRANCHES | CALLS:
                self._function_op(op, repeat, layer)
                continue
            result = count_op(op, self.formulas, self.tfprof)
            if isinstance(result, str):
                self.uncounted.append(UncountedOp(op.name, op.type, layer, result))
            elif result is not None:
                cost, source = result
                self.counted.append(
                    OpCount(op.name, op.type, layer, cost.flops * repeat, cost.macs * repeat,
                            source, cost.text, repeat)
                )

    def _function_op(self, op, repeat: int, layer: str) -> None:
        def missing(reason):
            self.uncounted.append(UncountedOp(op.name, op.type, layer, reason))

        if op.type in CALLS:
            body = function_graph(op, "f")
            if body is None:
                return missing("the called function's graph is not available")
            return self.walk(body, repeat, layer)
        if op.type in LOOPS:
            body, cond = function_graph(op, "body"), function_graph(op, "cond")
            if body is None or cond is None:
                return missing("the loop's body is not available")
            trips = trip_count(op)
            if trips is None:
                return missing(
                    "the loop's trip count is not a constant of the graph, so its body "
                    "cannot be counted"
                )
            self.walk(body, repeat * trips, layer)
            self.walk(cond, repeat * (trips + 1), layer)  # the test runs once more
            return None
        # If / Case: count the costlier branch, and say so.
        names = ["then_branch", "else_branch"] if "If" in op.type else None
        branches = _branch_graphs(op, names)
        if branches is None:
            return missing("a branch's graph is not available")
        costs = []
        for label, graph in branches:
            sub = _Walker(self.trace, self.formulas, self.tfprof)
            sub.walk(graph, repeat, layer)
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


def trip_count(op) -> Optional[int]:
    """How many times a While loop (from tf.while_loop) runs its body, if static.

    tf.while_loop passes the loop counter and ``maximum_iterations`` as the
    first two loop variables. Keras's RNN sets ``maximum_iterations`` to the
    number of time steps, computed as ``Max(steps, range(rank))``, which is
    why this folds small reductions and arithmetic on constants.
    """
    if len(op.inputs) < 2:
        return None
    value = static_value(op.inputs[1])
    if value is None or np.ndim(value) != 0 or int(value) < 0:
        return None
    return int(value)


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
