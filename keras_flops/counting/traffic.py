"""Bytes an op moves: every input and output tensor, unfused.

The upper bound XLA calls bytes accessed per operation before fusion: each
input read once and each output written once, elements x dtype size. Ops
that only rename or view a tensor (Identity, Reshape, a variable read, a
constant) move nothing; ops that copy (Transpose, ConcatV2, Pad, GatherV2,
Tile, ...) move their inputs and outputs like any other.
"""

from __future__ import annotations

VIEW_OPS = frozenset({
    "Placeholder", "PlaceholderWithDefault", "Const", "Identity", "IdentityN", "NoOp",
    "StopGradient", "PreventGradient", "Snapshot", "EnsureShape", "CheckNumerics", "Assert",
    "ReadVariableOp", "VarHandleOp", "VariableV2", "VarIsInitializedOp", "DestroyResourceOp",
    "Reshape", "Squeeze", "ExpandDims", "Bitcast", "Shape", "ShapeN", "Size", "Rank",
    "BroadcastGradientArgs", "BroadcastArgs", "VariableShape",
    "TensorListReserve", "TensorListLength", "TensorListElementShape", "EmptyTensorList",
})


def tensor_bytes(tensor) -> int:
    """Elements x dtype size of a tensor with a known shape; 0 for handles,
    variants and strings (no fixed size) and for unknown shapes."""
    dtype = tensor.dtype
    if dtype.is_floating or dtype.is_integer or dtype.is_bool or dtype.is_complex:
        n = tensor.shape.num_elements()
        return 0 if n is None else n * dtype.size
    return 0


def op_bytes(op) -> int:
    """Bytes ``op`` reads and writes, once: 0 for a view."""
    if op.type in VIEW_OPS:
        return 0
    return sum(tensor_bytes(t) for t in op.inputs) + sum(tensor_bytes(t) for t in op.outputs)
