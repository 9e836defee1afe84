"""The walk's adapter over a traced TensorFlow graph, and its formula table.

Nodes are the graph's ops; bodies are graphs (the traced function's, and the
function graphs its ops call); values, for liveness, are op names. Every
op's owner was found while tracing (:mod:`.trace`); here it is looked up.
"""

from __future__ import annotations

from typing import Any, Optional

import tensorflow as tf

from keras_flops.backends.tensorflow import _compat as compat
from keras_flops.backends.tensorflow import formulas, graph, statistics
from keras_flops.backends.tensorflow.loops import trip_count
from keras_flops.core import walk
from keras_flops.formulas.registry import OpSpec, Table

TABLE = Table(
    builtin=formulas.BUILTIN,
    zero=formulas.ZERO_COST_OPS,
    exact=formulas.EXACT,
    statistic=statistics.STATISTIC,
    mac_ops=formulas.MAC_OPS,
)


# Ops that compute each result element from the same element of their
# inputs: their kernels write into an input buffer they are the last to read
# (TensorFlow's forward_input_or_allocate_output).
# fmt: off
ELEMENTWISE = frozenset(formulas.UNARY) | frozenset(formulas.BINARY) | frozenset(formulas.ACTIVATION_GRADIENTS) | {
    "Add", "AddV2", "Sub", "Mul", "RealDiv", "Div", "Maximum", "Minimum", "Neg", "Square", "Log", "Rsqrt",
    "Reciprocal", "Pow", "SquaredDifference", "Cast", "Select", "SelectV2", "BiasAdd", "Equal", "NotEqual",
    "Greater", "GreaterEqual", "Less", "LessEqual", "LogicalAnd", "LogicalOr", "LogicalNot", "RsqrtGrad",
    "ClipByValue", "AddN",
}
# fmt: on


def count(trace, counting: str = "full", formulas=None, memory: bool = False, given=None) -> walk.Counted:
    """Count ``trace``'s graph in ``counting``, with ``formulas`` formulas
    first; with ``memory``, read what it keeps too."""
    with compat.quiet_tf_formulas():
        return walk.count(GraphProgram(trace), counting, formulas, memory, given)


class GraphProgram:
    """A traced TensorFlow graph, as :class:`keras_flops.core.walk.Program`."""

    table = TABLE
    views = graph.VIEW_OPS
    loads = graph.LOAD_OPS
    # fmt: off
    parts = frozenset({"StridedSlice", "Slice", "GatherV2", "Gather", "GatherNd", "Split", "SplitV", "Unpack",
                       "BroadcastTo", "Tile", "ResourceGather"})  # ResourceGather: also a load
    # fmt: on
    updates = {"XlaDynamicUpdateSlice": 1, "DynamicUpdateSlice": 1, "TensorScatterUpdate": 2}
    stacks = frozenset({"Pack", "ConcatV2", "Concat"})
    elementwise = ELEMENTWISE

    def __init__(self, trace):
        self.trace = trace
        self.arguments = getattr(trace, "arguments", ())
        self.returns = getattr(trace, "returns", ())
        self._operands: dict = {}

    def top(self):
        return self.trace.graph

    def nodes(self, body):
        return body.get_operations()

    # Values are keyed by the tensors' identities (a graph hands out one Python
    # tensor per output), and an op's own identity for a control dependency on it.
    def results(self, body):
        return [id(t) for t in body.outputs] + [id(op) for op in body.control_outputs]

    def produces(self, op):
        return [id(t) for t in op.outputs] + [id(op)]

    def consumes(self, op):
        return [id(t) for t in op.inputs] + [id(c) for c in op.control_inputs]

    def has_effects(self, op) -> bool:
        return False

    def owner(self, op, caller):
        return self.trace.owner(op)

    def called(self, op, owner, used):
        if op.type not in graph.FUNCTION_OPS:
            return None
        called = graph.called_graphs(op)
        if called is None:
            return "a called function's graph is not available"
        if op.type in graph.CALLS:
            return walk.Called("call", tuple(called))
        if op.type in graph.LOOPS:
            bodies = dict(called)
            trips, exact = trip_count(op, bodies["cond"], bodies["body"])
            return walk.Called("loop", tuple(called), trips, exact)
        return walk.Called("branches", tuple(called))

    def interface(self, op, body):
        return [id(t) for t in body.inputs], [id(t) for t in body.outputs]

    def name(self, op) -> str:
        return op.name

    def op_type(self, op) -> str:
        return op.type

    def spec(self, op) -> OpSpec:
        return op_spec(op)

    def operands(self, op):
        found = self._operands.get(id(op))  # read by the walk and by the activations alike
        if found is None:
            found = self._operands[id(op)] = (
                [(None if graph.immediate(t) else id(t), graph.tensor_bytes(t)) for t in op.inputs],
                [(id(t), graph.tensor_bytes(t)) for t in op.outputs],
            )
        return found

    def dtype(self, op) -> str:
        return op.inputs[0].dtype.name if op.inputs else ""

    def skip(self, op) -> bool:
        """Ops on strings are text processing (TextVectorization,
        StringLookup), not floating-point arithmetic."""
        return any(t.dtype == tf.string for t in op.inputs)


def op_spec(op) -> OpSpec:
    """What a formula sees of a ``tf.Operation``."""
    attrs = {}
    for key in op.node_def.attr:
        try:
            attrs[key] = op.get_attr(key)
        except (ValueError, TypeError):  # pragma: no cover - exotic attr kinds
            continue
    forward = _forward_type(op)
    if forward is not None:
        attrs["forward_op_type"] = forward
    return OpSpec(
        type=op.type,
        name=op.name,
        inputs=tuple(_shape_tuple(t.shape) for t in op.inputs),
        outputs=tuple(_shape_tuple(t.shape) for t in op.outputs),
        attrs=attrs,
        values=tuple(_small_constant(t) for t in op.inputs),
    )


def _forward_type(op) -> Optional[str]:
    """The type of the forward op a gradient op is the gradient of, when its
    name says ("gradient_tape/<forward op>/..."): a transposed convolution's
    kernel gradient is counted as the transposed convolution, not as an
    ordinary one's."""
    if not op.name.startswith(graph.GRADIENT_PREFIX):
        return None
    forward = op.name[len(graph.GRADIENT_PREFIX) :].rsplit("/", 1)[0]
    try:
        return op.graph.get_operation_by_name(forward).type
    except (KeyError, ValueError):
        return None


def _small_constant(tensor) -> Any:
    """The constant value of a small integer tensor (an axis, a size), else None."""
    if not tensor.dtype.is_integer or tensor.shape.num_elements() not in range(0, 65):
        return None
    value = tf.get_static_value(tensor)
    return None if value is None else value.tolist()


def _shape_tuple(shape):
    if shape.rank is None:
        return None
    return tuple(shape.as_list())
