"""The formula registry: op types' formulas, and the records they return.

A formula is a small pure function of an :class:`OpSpec` (shapes and
attributes), testable with plain tuples. keras_flops' own formulas register
with :func:`builtin` (a duplicate is a bug); users register theirs with
:func:`register_flops` (a duplicate is an error they see). TensorFlow's own
registry is never written.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, NamedTuple, Optional, Tuple, Union

Shape = Optional[Tuple[Optional[int], ...]]


class Cost(NamedTuple):
    """FLOPs and multiply-accumulates of one op, and optionally the arithmetic
    that gives them (``"2 x 5 inner dim x 6 outputs"``) for ``report.explain``."""

    flops: int
    macs: int
    text: str = ""


@dataclasses.dataclass(frozen=True)
class OpSpec:
    """What a formula sees of one op: its type, name, shapes and attributes.

    Shapes are tuples of ints (``None`` for an unknown dim, ``None`` for an
    unknown rank). ``attrs`` maps attribute names to decoded values
    (``bytes`` for strings, lists for list attributes). ``values`` holds the
    constant value of each small integer input (an axis, a size), else None.
    """

    type: str
    name: str
    inputs: Tuple[Shape, ...]
    outputs: Tuple[Shape, ...]
    attrs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    values: Tuple[Any, ...] = ()

    @classmethod
    def from_op(cls, op) -> "OpSpec":
        """Describe a ``tf.Operation``."""
        attrs = {}
        for key in op.node_def.attr:
            try:
                attrs[key] = op.get_attr(key)
            except (ValueError, TypeError):  # pragma: no cover - exotic attr kinds
                continue
        forward = _forward_type(op)
        if forward is not None:
            attrs["forward_op_type"] = forward
        return cls(
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
    if not op.name.startswith("gradient_tape/"):
        return None
    forward = op.name[len("gradient_tape/"):].rsplit("/", 1)[0]
    try:
        return op.graph.get_operation_by_name(forward).type
    except (KeyError, ValueError):
        return None


def _small_constant(tensor):
    """The constant value of a small integer tensor (an axis, a size), else None."""
    if not tensor.dtype.is_integer or tensor.shape.num_elements() not in range(0, 65):
        return None
    import tensorflow as tf

    value = tf.get_static_value(tensor)
    return None if value is None else value.tolist()


def _shape_tuple(shape) -> Shape:
    if shape.rank is None:
        return None
    return tuple(shape.as_list())


Formula = Callable[[OpSpec], Union[int, Cost, Tuple[int, int]]]

# Op types whose FLOPs are all multiply-accumulates: MACs = FLOPs / 2.
MAC_OPS = frozenset(
    {
        "MatMul",
        "BatchMatMul",
        "BatchMatMulV2",
        "BatchMatMulV3",
        "Einsum",
        "Conv2D",
        "Conv3D",
        "Conv2DBackpropInput",
        "Conv2DBackpropFilter",
        "Conv3DBackpropInputV2",
        "Conv3DBackpropFilterV2",
        "DepthwiseConv2dNative",
        "DepthwiseConv2dNativeBackpropInput",
        "DepthwiseConv2dNativeBackpropFilter",
    }
)

# Op types that do no floating-point arithmetic: they read, move, reshape,
# select or convert data, or only describe the graph. They count 0 by design,
# which is different from "no formula known" (see report.uncounted).
ZERO_COST_OPS = frozenset(
    {
        # graph plumbing
        "Placeholder", "PlaceholderWithDefault", "Const", "Identity", "IdentityN",
        "NoOp", "StopGradient", "PreventGradient", "Snapshot", "CheckNumerics",
        "EnsureShape", "Assert", "Print", "PrintV2", "StringFormat",
        # variables
        "ReadVariableOp", "VarHandleOp", "VariableV2", "VarIsInitializedOp",
        "AssignVariableOp", "DestroyResourceOp",
        # shapes and layout
        "Shape", "ShapeN", "Size", "Rank", "Reshape", "Squeeze", "ExpandDims",
        "Transpose", "ConjugateTranspose", "BroadcastTo", "BroadcastArgs",
        "BroadcastGradientArgs",
        # copying, slicing, joining
        "ConcatV2", "Concat", "Pack", "Unpack", "Split", "SplitV", "Slice",
        "StridedSlice", "StridedSliceGrad", "Gather", "GatherV2", "GatherNd",
        "ResourceGather", "Tile", "Pad", "PadV2", "MirrorPad", "ReverseV2",
        "Fill", "OnesLike", "Range", "OneHot", "Where",
        "Select", "SelectV2", "DepthToSpace", "SpaceToDepth", "SpaceToBatchND",
        "BatchToSpaceND", "Roll", "TensorScatterUpdate", "XlaDynamicUpdateSlice",
        "DynamicUpdateSlice", "XlaDynamicSlice",
        # masks and diagonals: select or place elements
        "MatrixBandPart", "MatrixDiag", "MatrixDiagV2", "MatrixDiagV3", "MatrixSetDiag",
        "MatrixSetDiagV2", "MatrixSetDiagV3", "MatrixDiagPart", "MatrixDiagPartV2",
        "MatrixDiagPartV3",
        # complex numbers: pairing and unpairing real and imaginary parts
        "Complex", "Real", "Imag",
        # type conversion and bit moves
        "Cast", "Bitcast",
        # logic on booleans, bits of integers
        "LogicalAnd", "LogicalOr", "LogicalNot", "All", "Any",
        "BitwiseAnd", "BitwiseOr", "BitwiseXor", "Invert", "LeftShift", "RightShift",
        # tensor lists and arrays (loop plumbing)
        "TensorListReserve", "TensorListFromTensor", "TensorListGetItem",
        "TensorListSetItem", "TensorListStack", "TensorListLength",
        "TensorListElementShape", "TensorListPushBack", "TensorListPopBack",
        "TensorListConcatV2", "TensorListSplit", "TensorListResize", "EmptyTensorList",
        "VariableShape", "InvertPermutation", "ZerosLike",
        # random numbers: integer work, no floating-point arithmetic of the model
        "RandomUniform", "RandomUniformInt", "RandomStandardNormal", "TruncatedNormal",
        "StatelessRandomUniform", "StatelessRandomNormal", "StatelessRandomUniformV2",
        "StatelessRandomNormalV2", "StatelessRandomUniformIntV2", "StatelessTruncatedNormalV2",
        "StatelessRandomGetKeyCounter", "StatelessRandomGetAlg", "StatelessRandomGetKeyCounterAlg",
        "RngReadAndSkip", "RngSkip",
        # hash-table lookups (StringLookup, IntegerLookup) and ragged plumbing
        "LookupTableFindV2", "LookupTableSizeV2", "LookupTableImportV2", "HashTableV2",
        "MutableHashTableV2", "RaggedTensorToTensor", "RaggedTensorToSparse", "RaggedGather",
        "RaggedRange", "RaggedTensorFromVariant", "RaggedTensorToVariant",
    }
)

_BUILTIN: dict = {}
_USER: dict = {}
# Exact formulas that win over TensorFlow's in counting="full" (tfprof keeps TensorFlow's).
_EXACT: dict = {}


def register_flops(op_type: str, *more_types: str) -> Callable[[Formula], Formula]:
    """Register a formula for one or more op types; it wins over every built-in.

    The formula takes an :class:`OpSpec` and returns its FLOPs as an int, or a
    :class:`Cost` ``(flops, macs)``. When it returns an int, MACs are FLOPs / 2
    for the multiply-accumulate op types (:data:`MAC_OPS`) and 0 otherwise::

        @keras_flops.register_flops("MyFusedOp")
        def my_fused_op(op):
            "2 FLOPs per output element."
            return 2 * math.prod(op.outputs[0])

    Registering a second, different function for an op type is an error; use
    :func:`unregister_flops` first. Redefining the same function (a notebook
    cell run again) replaces it. TensorFlow's own registry is never touched.
    """
    types = (op_type,) + more_types

    def decorate(fn: Formula) -> Formula:
        for name in types:
            old = _USER.get(name)
            if old is not None and _qualname(old) != _qualname(fn):
                raise ValueError(
                    f"keras_flops already has a user formula for {name!r} "
                    f"({_qualname(old)}); call keras_flops.unregister_flops({name!r}) "
                    "before registering another one."
                )
        for name in types:
            _USER[name] = fn
        return fn

    return decorate


def unregister_flops(op_type: str) -> None:
    """Remove the user formula for ``op_type`` (no error if there is none)."""
    _USER.pop(op_type, None)


def _qualname(fn) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def registrar(table: dict, kind: str) -> Callable[..., Callable[[Formula], Formula]]:
    """A decorator factory registering keras_flops' own formulas into ``table``
    (a duplicate is a bug here, not a user's error)."""

    def register(*types: str) -> Callable[[Formula], Formula]:
        def decorate(fn: Formula) -> Formula:
            for name in types:
                if name in table:
                    raise RuntimeError(f"two {kind} formulas for {name!r}")
                table[name] = fn
            return fn

        return decorate

    return register


# One of keras_flops' own formulas; it returns a Cost whose text shows its arithmetic.
builtin = registrar(_BUILTIN, "built-in")
# An exact formula for an op type whose TensorFlow formula is an approximation:
# it wins over TensorFlow's in counting="full".
exact = registrar(_EXACT, "exact")


def apply(formula: Formula, spec: OpSpec) -> Cost:
    """Run a keras_flops or user formula and normalise its result to a Cost."""
    result = formula(spec)
    if isinstance(result, Cost):
        return Cost(int(result.flops), int(result.macs), result.text or _doc_line(formula))
    if isinstance(result, tuple):
        flops, macs = result
        return Cost(int(flops), int(macs), _doc_line(formula))
    return with_macs(spec.type, int(result), _doc_line(formula))


def with_macs(op_type: str, flops: int, text: str = "") -> Cost:
    """Attach MACs to a FLOP count by the convention in :data:`MAC_OPS`."""
    return Cost(flops, flops // 2 if op_type in MAC_OPS else 0, text)


def _doc_line(fn) -> str:
    doc = (getattr(fn, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else f"formula {getattr(fn, '__name__', 'lambda')}"
