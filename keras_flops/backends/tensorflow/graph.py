"""TensorFlow graphs: which ops call functions and the function graphs they
call, and the bytes an op moves.

Shared by tracing (which attributes the ops inside called functions) and
the walk's adapter (which enters them).
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from keras_flops.backends.tensorflow import _compat as compat

LOOPS = frozenset({"While", "StatelessWhile"})
BRANCHES = frozenset({"If", "StatelessIf", "Case", "StatelessCase"})
CALLS = frozenset({"PartitionedCall", "StatefulPartitionedCall"})
FUNCTION_OPS = LOOPS | BRANCHES | CALLS

# TensorFlow names a gradient op "gradient_tape/<scope of its forward op>/..."
GRADIENT_PREFIX = "gradient_tape/"


def function_graph(op, attr: str):
    """The FuncGraph of the function an op's attribute names, if it is at hand."""
    return compat.function_graph(op.graph, op.get_attr(attr).name)


def called_graphs(op) -> Optional[List[Tuple[str, object]]]:
    """``[(label, graph), ...]`` of the functions a function op calls: a
    call's ``f``; a loop's ``body`` and ``cond``; an If's ``then`` and
    ``else``; a Case's ``branch i``. None when one of them is not at hand;
    [] for an op that calls nothing."""
    if op.type in CALLS:
        pairs = [("f", function_graph(op, "f"))]
    elif op.type in LOOPS:
        pairs = [("body", function_graph(op, "body")), ("cond", function_graph(op, "cond"))]
    elif op.type in ("If", "StatelessIf"):
        pairs = [("then", function_graph(op, "then_branch")), ("else", function_graph(op, "else_branch"))]
    elif op.type in BRANCHES:
        pairs = [
            (f"branch {i}", compat.function_graph(op.graph, a.name))
            for i, a in enumerate(op.get_attr("branches"))
        ]
    else:
        return []
    return None if any(g is None for _, g in pairs) else pairs


def num_ops(graph) -> int:
    """How many ops a graph has, in constant time: positions in
    get_operations() grow by one per op, so a count marks a position."""
    count = getattr(graph, "num_operations", None)
    return count() if callable(count) else len(graph.get_operations())


# --------------------------------------------------------------------------
# Bytes an op moves: every input and output tensor, unfused.
#
# The upper bound XLA calls bytes accessed per operation before fusion: each
# input read once and each output written once, elements x dtype size. Ops
# that only rename or view a tensor (Identity, Reshape, a variable read, a
# constant) move nothing; ops that copy (Transpose, ConcatV2, Pad, GatherV2,
# Tile, ...) move their inputs and outputs like any other.

# fmt: off
VIEW_OPS = frozenset({
    "Placeholder", "PlaceholderWithDefault", "Const", "Identity", "IdentityN", "NoOp",
    "StopGradient", "PreventGradient", "Snapshot", "EnsureShape", "CheckNumerics", "Assert",
    "ReadVariableOp", "VarHandleOp", "VariableV2", "VarIsInitializedOp", "DestroyResourceOp",
    "Reshape", "Squeeze", "ExpandDims", "Bitcast", "Shape", "ShapeN", "Size", "Rank",
    "BroadcastGradientArgs", "BroadcastArgs", "VariableShape",
    "TensorListReserve", "TensorListLength", "TensorListElementShape", "EmptyTensorList",
})
# fmt: on


# Ops whose results are read from memory: a variable's value, an input, a constant.
LOAD_OPS = frozenset({"ReadVariableOp", "ResourceGather", "Placeholder", "PlaceholderWithDefault", "Const"})


def tensor_bytes(tensor) -> int:
    """Elements x dtype size of a tensor with a known shape; 0 for handles,
    variants and strings (no fixed size) and for unknown shapes."""
    dtype = tensor.dtype
    if dtype.is_floating or dtype.is_integer or dtype.is_bool or dtype.is_complex:
        n = tensor.shape.num_elements()
        return 0 if n is None else n * dtype.size
    return 0


def immediate(tensor) -> bool:
    """A small constant (an axis, a permutation, a scalar): written into the
    op, as JAX writes literals and parameters, not read from memory."""
    return tensor.op.type == "Const" and tensor.shape.num_elements() in range(0, 65)


def constant_result(tensor) -> bool:
    """Whether a function's result is such a constant, through the
    ``Identity`` ops a ``tf.function`` puts on its results."""
    while tensor.op.type == "Identity":
        tensor = tensor.op.inputs[0]
    return immediate(tensor)
