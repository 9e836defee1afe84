"""Counting: apply the formula registry to every op of a traced graph."""

from __future__ import annotations

import dataclasses
from typing import List, Mapping, Optional, Tuple

from keras_flops import formulas
from keras_flops.tracing import OUTSIDE, Trace


@dataclasses.dataclass(frozen=True)
class OpCount:
    """One counted op: where it is, what it costs, and whose formula said so."""

    node: str
    op_type: str
    layer: str
    flops: int
    macs: int
    source: str  # "tensorflow", "keras_flops" or "user"


@dataclasses.dataclass(frozen=True)
class UncountedOp:
    """An op that may cost FLOPs but was not counted, and why."""

    node: str
    op_type: str
    layer: str
    reason: str


# Ops that run a function (a loop body, a branch, a call). Their cost is the
# cost of the function they run, which this flat walk does not enter.
FUNCTION_OPS = frozenset(
    {
        "While", "StatelessWhile", "If", "StatelessIf", "Case", "StatelessCase",
        "PartitionedCall", "StatefulPartitionedCall",
    }
)


def count(trace: Trace, formulas_: Optional[Mapping] = None) -> Tuple[List[OpCount], List[UncountedOp]]:
    """Count every op of ``trace``'s graph, attributing each to its layer."""
    counted: List[OpCount] = []
    uncounted: List[UncountedOp] = []
    for op in trace.function.graph.get_operations():
        layer = trace.layer_of(op) or OUTSIDE
        result = count_op(op, formulas_)
        if isinstance(result, str):
            uncounted.append(UncountedOp(op.name, op.type, layer, result))
        elif result is not None:
            cost, source = result
            counted.append(OpCount(op.name, op.type, layer, cost.flops, cost.macs, source))
    return counted, uncounted


def count_op(op, formulas_: Optional[Mapping] = None):
    """Cost of one op: ``(Cost, source)``, ``None`` for a zero-cost op, or the
    reason (a string) it could not be counted."""
    resolution = formulas.resolve(op.type, formulas_)
    if resolution is None:
        if op.type in FUNCTION_OPS:
            return f"{op.type} runs a function whose ops are not counted"
        return f"no formula for op type {op.type}"
    if resolution.source == "zero":
        return None
    if resolution.source == "tensorflow":
        try:
            flops = formulas.tensorflow_flops(op)
        except ValueError as err:
            fallback = formulas._BUILTIN.get(op.type)
            if fallback is None:
                return f"TensorFlow's {op.type} formula failed: {err}"
            resolution = formulas.Resolution("keras_flops", fallback)
        else:
            return formulas.with_macs(op.type, flops), "tensorflow"
    spec = formulas.OpSpec.from_op(op)
    try:
        cost = formulas.apply(resolution.formula, spec)
    except Exception as err:  # a formula's failure is reported, never fatal
        return f"{resolution.source} formula for {op.type} failed: {type(err).__name__}: {err}"
    return cost, resolution.source
