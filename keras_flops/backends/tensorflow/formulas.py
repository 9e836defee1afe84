"""keras_flops' own formulas for TensorFlow's op types, and the op types that cost nothing.

Each is a pure function of an :class:`OpSpec` (shapes and attributes), so it
can be tested with plain tuples, and returns a :class:`Cost` whose text shows
the arithmetic. Elementwise costs follow TensorFlow's own convention: each
arithmetic step of the textbook formula is 1 FLOP per element, and a
transcendental function (exp, log, tanh, erf, ...) is 1, as TensorFlow counts
Log and Reciprocal. docs/formulas.md lists every formula.
"""

from __future__ import annotations

import math

from keras_flops.formulas import compute
from keras_flops.formulas.compute import einsum_terms, num_elements
from keras_flops.formulas.registry import Cost, OpSpec, registrar

# Op types whose FLOPs are all multiply-accumulates: MACs = FLOPs / 2.
# fmt: off
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
# fmt: on

BUILTIN: dict = {}  # keras_flops' own formulas, by TensorFlow op type
EXACT: dict = {}  # exact formulas that win over TensorFlow's statistic in counting="full"
builtin = registrar(BUILTIN, "built-in")
exact = registrar(EXACT, "exact")

# Op types that do no floating-point arithmetic: they read, move, reshape,
# select or convert data, or only describe the graph. They count 0 by design,
# which is different from "no formula known" (see report.uncounted).
# fmt: off
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
# fmt: on


def _channels_first(op: OpSpec) -> bool:
    fmt = op.attrs.get("data_format", b"NHWC")
    fmt = fmt.decode() if isinstance(fmt, bytes) else fmt
    return fmt.startswith("NC")


# --------------------------------------------------------------------------
# Elementwise


# op type: what it computes (formulas.compute.ELEMENTWISE)
# fmt: off
UNARY = {
    "Relu": "relu", "Relu6": "relu6", "LeakyRelu": "leaky_relu", "Elu": "elu", "Selu": "selu",
    "Sigmoid": "sigmoid", "Tanh": "tanh", "Softplus": "softplus", "Softsign": "softsign",
    "Erf": "erf", "Erfc": "erfc", "Exp": "exp", "Expm1": "expm1", "Log1p": "log1p", "Sqrt": "sqrt",
    "Abs": "abs", "Sign": "sign", "Floor": "floor", "Ceil": "ceil", "Round": "round", "Rint": "rint",
    "Sin": "sin", "Cos": "cos", "Tan": "tan", "Asin": "asin", "Acos": "acos", "Atan": "atan",
    "Sinh": "sinh", "Cosh": "cosh", "IsNan": "is_nan", "IsInf": "is_inf", "IsFinite": "is_finite",
    "LogSoftmax": "log_softmax",
}
# fmt: on

# Binary elementwise ops TensorFlow leaves out: 1 FLOP per output element.
# fmt: off
BINARY = ("FloorDiv", "FloorMod", "Mod", "TruncateDiv", "TruncateMod", "DivNoNan", "Atan2",
          "Xdivy", "Xlogy", "MulNoNan")
# fmt: on


def _first_input(op: OpSpec):
    return op.inputs[0]


for _name, _what in UNARY.items():
    builtin(_name)(compute.elementwise_formula(_what, _first_input))


@builtin(*BINARY)
def binary_elementwise(op: OpSpec) -> Cost:
    """1 FLOP per output element."""
    return compute.elementwise(num_elements(op.outputs[0], "output"), *compute.ELEMENTWISE["step"])


# --------------------------------------------------------------------------
# Reductions and scans


@builtin("Max", "Min", "Prod")
def reduction(op: OpSpec) -> Cost:
    """n(in) - n(out): one comparison or multiply per element folded in, as TensorFlow's Sum."""
    return compute.reduction(num_elements(op.inputs[0], "input"), num_elements(op.outputs[0], "output"))


@builtin("Cumsum", "Cumprod")
def scan(op: OpSpec) -> Cost:
    """(L - 1) adds per scan of length L, (L - 2) when exclusive; n(in) / L scans."""
    n = num_elements(op.inputs[0], "input")
    return compute.scan(n, op.inputs[0][_static_axis(op)], bool(op.attrs.get("exclusive")))


def _static_axis(op: OpSpec) -> int:
    axis = op.values[1] if len(op.values) > 1 else None
    if axis is None:
        raise ValueError("the scan axis is not a constant")
    rank = len(op.inputs[0])
    return int(axis) % rank


# --------------------------------------------------------------------------
# Normalization


@builtin("FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3")
def fused_batch_norm(op: OpSpec) -> Cost:
    """Inference 2N + 6C, training 6N + 6C, and 6C more when the op also
    updates moving averages (exponential_avg_factor != 1): :func:`compute.batch_norm`."""
    x = op.inputs[0]
    channels = x[1] if _channels_first(op) else x[-1]
    return compute.batch_norm(
        num_elements(x, "input"),
        channels,
        bool(op.attrs.get("is_training", False)),
        op.attrs.get("exponential_avg_factor", 1.0) != 1.0,
    )


# --------------------------------------------------------------------------
# Convolution and pooling forms TensorFlow does not cover


@builtin("Conv2DBackpropInput", "Conv3DBackpropInputV2")
def conv_backprop_input(op: OpSpec) -> Cost:
    """Transposed convolution, TensorFlow's Conv2DBackpropInput formula in any
    layout: 2 x n(out) x n(kernel) / (out channels x product of strides)."""
    out = op.outputs[0]
    kernel = op.inputs[1]
    n_out = num_elements(out, "output")
    n_kernel = num_elements(kernel, "kernel")
    channels = out[1] if _channels_first(op) else out[-1]
    strides = list(op.attrs.get("strides", [1] * len(out)))
    spatial = strides[2:] if _channels_first(op) else strides[1:-1]
    stride_product = math.prod(spatial)
    flops = int(2 * n_out * n_kernel / (channels * stride_product))
    text = (
        f"2 x {n_out} outputs x {n_kernel} kernel elements / "
        f"({channels} out-channels x {stride_product} stride product)"
    )
    return Cost(flops, flops // 2, text)


@builtin("MaxPool", "AvgPool", "MaxPool3D", "AvgPool3D")
def pool(op: OpSpec) -> Cost:
    """Window size x n(out), TensorFlow's pooling formula in any layout and rank."""
    shape = "x".join(str(k) for k in op.attrs["ksize"])
    return compute.window(math.prod(op.attrs["ksize"]), num_elements(op.outputs[0], "output"), shape)


# --------------------------------------------------------------------------
# Resizing


@builtin("ResizeBilinear")
def resize_bilinear(op: OpSpec) -> Cost:
    """7 FLOPs per output element: 4 neighbours weighted (4 multiplies) and summed (3 adds)."""
    n = num_elements(op.outputs[0], "output")
    return Cost(7 * n, 0, f"{n} output elements x 7 (4 weighted neighbours)")


@builtin("ResizeBicubic")
def resize_bicubic(op: OpSpec) -> Cost:
    """31 FLOPs per output element: 16 neighbours weighted (16 multiplies) and summed (15 adds)."""
    n = num_elements(op.outputs[0], "output")
    return Cost(31 * n, 0, f"{n} output elements x 31 (16 weighted neighbours)")


@builtin("ResizeArea")
def resize_area(op: OpSpec) -> Cost:
    """n(in) + n(out): every input element added into its output, every output divided once."""
    n_in, n_out = num_elements(op.inputs[0], "input"), num_elements(op.outputs[0], "output")
    return Cost(n_in + n_out, 0, f"{n_in} in + {n_out} out")


@builtin("ResizeNearestNeighbor")
def resize_nearest(op: OpSpec) -> Cost:
    """0: nearest-neighbour resizing copies elements."""
    return Cost(0, 0, "copies only")


# --------------------------------------------------------------------------
# Einsum


@builtin("Einsum")
def einsum(op: OpSpec) -> Cost:
    """Two operands: every product of the full index space is multiplied and
    added: 2 x prod(all index sizes) FLOPs, prod(all index sizes) MACs, as
    MatMul's 2 x k x n(out). One operand: the adds of a sum, terms - n(out)."""
    equation = op.attrs["equation"]
    equation = equation.decode() if isinstance(equation, bytes) else equation
    terms = einsum_terms(equation, op.inputs)
    if len(op.inputs) == 1:
        n_out = num_elements(op.outputs[0], "output")
        return Cost(terms - n_out, 0, f"{terms} terms - {n_out} out ({equation})")
    if len(op.inputs) != 2:
        raise ValueError(f"Einsum with {len(op.inputs)} operands")
    return Cost(2 * terms, terms, f"2 x {terms} products ({equation})")


# --------------------------------------------------------------------------
# Training: gradients of activations, convolutions, pooling and normalization


# op type: what it computes (formulas.compute.ELEMENTWISE: per element of the incoming gradient)
# fmt: off
ACTIVATION_GRADIENTS = {
    "ReluGrad": "relu_grad", "Relu6Grad": "relu6_grad", "LeakyReluGrad": "leaky_relu_grad",
    "EluGrad": "elu_grad", "SeluGrad": "selu_grad", "SoftplusGrad": "softplus_grad",
    "SoftsignGrad": "softsign_grad", "TanhGrad": "tanh_grad", "SigmoidGrad": "sigmoid_grad",
    "SqrtGrad": "sqrt_grad", "ReciprocalGrad": "reciprocal_grad",
}
# fmt: on

for _name, _what in ACTIVATION_GRADIENTS.items():
    builtin(_name)(compute.elementwise_formula(_what, _first_input))


@builtin("DepthwiseConv2dNativeBackpropInput", "DepthwiseConv2dNativeBackpropFilter")
def depthwise_backprop(op: OpSpec) -> Cost:
    """2 x n(dy) x kh x kw: each output gradient meets its kernel window, as in the forward pass."""
    dy = num_elements(op.inputs[2], "output gradient")
    # the kernel is the filter input of BackpropInput, the output of BackpropFilter
    kernel = op.inputs[1] if op.type.endswith("Input") else op.outputs[0]
    kh, kw = kernel[0], kernel[1]
    flops = 2 * dy * kh * kw
    return Cost(flops, flops // 2, f"2 x {dy} output-gradient elements x {kh}x{kw} kernel")


@builtin("MaxPoolGrad", "MaxPool3DGrad")
def max_pool_grad(op: OpSpec) -> Cost:
    """window x n(orig out) + n(orig out), TensorFlow's MaxPoolGrad formula in any layout and rank."""
    return compute.max_window_grad(
        math.prod(op.attrs["ksize"]), num_elements(op.inputs[1], "original output")
    )


@builtin("AvgPoolGrad", "AvgPool3DGrad")
def avg_pool_grad(op: OpSpec) -> Cost:
    """2 x window x n(dy), TensorFlow's AvgPoolGrad formula in any layout and rank."""
    window = math.prod(op.attrs["ksize"])
    n = num_elements(op.inputs[1], "output gradient")
    return Cost(2 * window * n, 0, f"2 x {window} window x {n} gradient elements")


@builtin("FusedBatchNormGrad", "FusedBatchNormGradV2", "FusedBatchNormGradV3")
def fused_batch_norm_grad(op: OpSpec) -> Cost:
    """Training 9N + 4C, inference statistics 5N + 4C: :func:`compute.batch_norm_grad`."""
    x = op.inputs[1]
    channels = x[1] if _channels_first(op) else x[-1]
    return compute.batch_norm_grad(
        num_elements(x, "input"), channels, bool(op.attrs.get("is_training", True))
    )


# --------------------------------------------------------------------------
# Losses, and sums into variables


@builtin("SparseSoftmaxCrossEntropyWithLogits")
def sparse_softmax_cross_entropy(op: OpSpec) -> Cost:
    """6n + rows: softmax (5 per logit, as TensorFlow's Softmax), minus the log of
    the label's probability per row, and the gradient, probabilities - one hot (n)."""
    n = num_elements(op.inputs[0], "logits")
    rows = n // op.inputs[0][-1]
    return Cost(6 * n + rows, 0, f"6 x {n} logits + {rows} rows")


@builtin("SoftmaxCrossEntropyWithLogits")
def softmax_cross_entropy(op: OpSpec) -> Cost:
    """8n - rows: log softmax (5n), labels x log p (n), the sum per row (n - rows),
    and the gradient, softmax - labels (n)."""
    n = num_elements(op.inputs[0], "logits")
    rows = n // op.inputs[0][-1]
    return Cost(8 * n - rows, 0, f"8 x {n} logits - {rows} rows")


@builtin("UnsortedSegmentSum", "AssignAddVariableOp", "AssignSubVariableOp")
def add_into(op: OpSpec) -> Cost:
    """n(values): every element added into its target."""
    index = 1 if op.type.startswith("Assign") else 0
    return compute.scattered(num_elements(op.inputs[index], "values"), "elements")


# --------------------------------------------------------------------------
# Fourier transforms, selection, scatters


# op type: (dims transformed, real input or output: half the work)
# fmt: off
FFTS = {
    "FFT": (1, False), "IFFT": (1, False), "FFT2D": (2, False), "IFFT2D": (2, False),
    "FFT3D": (3, False), "IFFT3D": (3, False),
    "RFFT": (1, True), "IRFFT": (1, True), "RFFT2D": (2, True), "IRFFT2D": (2, True),
    "RFFT3D": (3, True), "IRFFT3D": (3, True),
}
# fmt: on


@builtin(*FFTS)
def fft(op: OpSpec) -> Cost:
    """5 N log2 N per complex transform of N points (the radix-2 count: N/2 log2 N
    butterflies of 10 real FLOPs), half that for a real input (RFFT*) or output
    (IRFFT*); one transform per batch element, N the product of the transformed dims."""
    rank, real = FFTS[op.type]
    if real:  # N comes from the fft_length input: the signal's length, not the half spectrum's
        lengths = op.values[1] if len(op.values) > 1 else None
        if lengths is None:
            raise ValueError("the fft_length input is not a constant")
        points = math.prod(int(n) for n in lengths)
        signal = op.outputs[0] if op.type.startswith("I") else op.inputs[0]
        batch = num_elements(signal[:-rank], "batch")
    else:
        shape = op.inputs[0]
        points = num_elements(shape[-rank:], "transformed")
        batch = num_elements(shape[:-rank], "batch")
    return compute.fft(batch, points, real)


@builtin("TopKV2", "TopK")
def top_k(op: OpSpec) -> Cost:
    """rows x (n - 1) x ceil(log2(k + 1)) comparisons: a row of n scanned against a
    heap of the k largest, ceil(log2(k + 1)) comparisons deep; for k = 1 that is
    n - 1, as TensorFlow counts ArgMax."""
    shape = op.inputs[0]
    n = shape[-1]
    k = op.values[1] if op.type == "TopKV2" and len(op.values) > 1 else op.attrs.get("k")
    if n is None or k is None:
        raise ValueError(f"the row length {n} or k {k} is not known")
    return compute.top_k(num_elements(shape[:-1], "batch"), n, int(k))


@builtin("TensorScatterAdd", "TensorScatterSub", "ScatterNd")
def scatter_add(op: OpSpec) -> Cost:
    """n(updates): every update added into its target (ScatterNd adds into zeros)."""
    index = 2 if op.type.startswith("TensorScatter") else 1
    return compute.scattered(num_elements(op.inputs[index], "updates"))


@builtin("Multinomial", "StatelessMultinomial")
def multinomial(op: OpSpec) -> Cost:
    """rows x samples x classes: each sample scans its row's classes once (the
    inverse of the cumulative distribution); a convention, as for TopK."""
    logits = op.inputs[0]
    rows, classes = logits[0], logits[1]
    samples = op.values[1] if len(op.values) > 1 else None
    if rows is None or classes is None or samples is None:
        raise ValueError(f"the logits shape {logits} or the number of samples is not known")
    flops = int(rows) * int(samples) * int(classes)
    return Cost(flops, 0, f"{rows} rows x {samples} samples x {classes} classes")


# --------------------------------------------------------------------------
# Batch matmuls (counting="full"; tfprof keeps TensorFlow's)


@exact("BatchMatMul", "BatchMatMulV2", "BatchMatMulV3")
def batch_matmul(op: OpSpec) -> Cost:
    """2 x k x n(out), k the inner dim: x's last dim, or its second to last
    with ``adj_x``. TensorFlow's statistic reads ``transpose_a``, an attribute
    batch matmuls do not have, so it always takes the last dim: wrong for
    every ``adj_x`` matmul, such as the kernel gradient of an EinsumDense."""
    x = op.inputs[0]
    adjoint = bool(op.attrs.get("adj_x", False))
    k = x[-2] if adjoint else x[-1]
    if k is None:
        raise ValueError(f"the inner dim of {x} is not known")
    side = "x's second to last dim (adj_x)" if adjoint else "x's last dim"
    return compute.contraction(k, num_elements(op.outputs[0], "output"), f"inner dim ({side})")


# --------------------------------------------------------------------------
# Exact backward convolutions (counting="full"; tfprof keeps TensorFlow's)


def _spatial(op: OpSpec, values) -> list:
    """The spatial entries of a per-dim attribute (strides, dilations) in the op's layout."""
    values = list(values)
    return values[2:] if _channels_first(op) else values[1:-1]


def _pads_lo(op: OpSpec, in_sizes, out_sizes, kernel, strides, dilations) -> list:
    """The padding before each spatial dim of the forward convolution."""
    padding = op.attrs.get("padding", b"VALID")
    padding = padding.decode() if isinstance(padding, bytes) else str(padding)
    if padding == "EXPLICIT":
        pads = list(op.attrs.get("explicit_paddings", []))
        pairs = [pads[i : i + 2] for i in range(0, len(pads), 2)]
        return [p[0] for p in _spatial(op, pairs)]
    if padding == "VALID":
        return [0] * len(in_sizes)
    return [
        max((o - 1) * s + (k - 1) * d + 1 - i, 0) // 2
        for i, o, k, s, d in zip(in_sizes, out_sizes, kernel, strides, dilations)
    ]


def _real_pairs(op: OpSpec, x, y, window) -> int:
    """The (output position, tap) pairs of the forward convolution x -> y
    whose input position is a real element of x, over every spatial dim."""
    first = _channels_first(op)
    strides = _spatial(op, op.attrs.get("strides", [1] * len(x)))
    dilations = _spatial(op, op.attrs.get("dilations", [1] * len(x)))
    in_sizes = list(x[2:] if first else x[1:-1])
    out_sizes = list(y[2:] if first else y[1:-1])
    pads = _pads_lo(op, in_sizes, out_sizes, window, strides, dilations)
    return compute.real_pairs(in_sizes, out_sizes, window, strides, dilations, pads)


@exact("Conv2DBackpropInput", "Conv3DBackpropInputV2", "DepthwiseConv2dNativeBackpropInput")
def conv_backprop_input_exact(op: OpSpec) -> Cost:
    """The input gradient (or transposed convolution) dx of a convolution with
    output dy. Stride 1: n(dx) x window x (dy channels per group), every
    product as TensorFlow's formula counts it. Strided: only the products of
    a dy element with a real element of dx: N x (per-channel products) x the
    (position, tap) pairs of each dim whose input is not padding, where
    TensorFlow's formula divides by the stride product."""
    dx, kernel, dy = op.outputs[0], op.inputs[1], op.inputs[2]
    depthwise = op.type.startswith("Depthwise")
    first = _channels_first(op)
    window = list(kernel[:-2])
    strides = _spatial(op, op.attrs.get("strides", [1] * len(dx)))
    dx_channels = dx[1] if first else dx[-1]
    # products per (dx element, tap): the dy channels each dx channel feeds
    per = kernel[-1] if depthwise else kernel[-1] * kernel[-2] // dx_channels
    if all(s == 1 for s in strides):
        return compute.convolution(
            num_elements(dx, "input gradient"), window, per, "input-gradient elements", "channels"
        )
    return compute.on_real_pairs(dx[0], dx_channels, per, _real_pairs(op, dx, dy, window))


@exact("Conv2DBackpropFilter", "Conv3DBackpropFilterV2")
def conv_backprop_filter_exact(op: OpSpec) -> Cost:
    """The kernel gradient of a convolution with input x and output gradient
    dy: 2 x n(dy) x window x Cin per group, each output gradient meeting its
    window of inputs as in the forward convolution (TensorFlow's formula
    counts the input image's positions instead, over with "valid"). The
    kernel gradient of a transposed convolution (its forward op a
    Conv2DBackpropInput, whose input is this op's dy) counts, as that
    convolution does, only the products on a real output element:
    N x channels x the (position, tap) pairs of each dim not on padding."""
    big, kernel, small = op.inputs[0], op.outputs[0], op.inputs[2]
    window = list(kernel[:-2])
    if op.attrs.get("forward_op_type") in ("Conv2DBackpropInput", "Conv3DBackpropInputV2"):
        pairs = _real_pairs(op, big, small, window)
        return compute.on_real_pairs(small[0], kernel[-2], kernel[-1], pairs, "outputs (transposed)")
    return compute.convolution(
        num_elements(small, "output gradient"), window, kernel[-2], "output-gradient elements", "in-channels"
    )
