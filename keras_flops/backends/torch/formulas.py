"""PyTorch's aten ops mapped onto the formulas (:mod:`keras_flops.formulas.compute`),
on TensorFlow's conventions (docs/formulas.md).

An op's type is its name without the overload ("mm", "convolution",
"add_"); the walk's :class:`~keras_flops.formulas.registry.OpSpec` gives a
formula the shapes of its tensor arguments (``inputs``) and results
(``outputs``), and its arguments by the schema's names in ``attrs`` (a
tensor as its shape). No PyTorch import is needed to run them. Ops that
``torch`` decomposes before dispatch (``matmul``, ``einsum``, ``linear``)
never reach the trace: their mm, bmm and views do.
"""

from __future__ import annotations

import math
from typing import Callable, Dict

from keras_flops.formulas import compute
from keras_flops.formulas.compute import num_elements as _n
from keras_flops.formulas.registry import Cost, OpSpec, registrar

FORMULAS: Dict[str, Callable[[OpSpec], Cost]] = {}
_register = registrar(FORMULAS, "PyTorch")

# Ops whose FLOPs are multiply-accumulates (a bias they add aside): a user
# formula's int result for one of them has FLOPs / 2 MACs, as TensorFlow's
# MatMul and Conv2D.
# fmt: off
MAC_OPS = frozenset({
    "mm", "bmm", "dot", "mv", "vdot", "inner", "addmm", "baddbmm", "addmv", "addbmm", "einsum",
    "convolution", "_convolution", "convolution_overrideable", "conv1d", "conv2d", "conv3d",
    "convolution_backward",
})
# fmt: on


def _inplace(*names: str):
    """Each name and its in-place form ("add" and "add_")."""
    return tuple(n for name in names for n in (name, name + "_"))


def _output(spec: OpSpec):
    return spec.outputs[0]


# --------------------------------------------------------------------------
# Elementwise

# op: what it computes (formulas.compute.ELEMENTWISE), on each output element
# fmt: off
ELEMENTWISE = {
    "sigmoid": "sigmoid", "tanh": "tanh", "exp": "exp", "log1p": "log1p", "expm1": "expm1",
    "erf": "erf", "erfc": "erfc", "sqrt": "sqrt", "rsqrt": "rsqrt", "abs": "abs", "sign": "sign",
    "sgn": "sign", "floor": "floor", "ceil": "ceil", "round": "round", "sin": "sin", "cos": "cos",
    "tan": "tan", "asin": "asin", "acos": "acos", "atan": "atan", "sinh": "sinh", "cosh": "cosh",
    "isnan": "is_nan", "isinf": "is_inf", "isfinite": "is_finite", "clamp": "clamp", "hardtanh": "clamp",
    "relu": "relu", "relu6": "relu6", "leaky_relu": "leaky_relu", "elu": "elu", "selu": "selu",
    "softplus": "softplus", "threshold_backward": "relu_grad", "leaky_relu_backward": "leaky_relu_grad",
    "elu_backward": "elu_grad", "softplus_backward": "softplus_grad", "tanh_backward": "tanh_grad",
    "sigmoid_backward": "sigmoid_grad", "hardtanh_backward": "relu6_grad",
}
# fmt: on
for _name, _what in ELEMENTWISE.items():
    _register(*_inplace(_name))(compute.elementwise_formula(_what, _output))

# One arithmetic step or comparison per output element, as TensorFlow's Add,
# Mul, RealDiv, Maximum, Equal ...
# fmt: off
STEP = (
    "add", "sub", "rsub", "mul", "div", "neg", "maximum", "minimum", "fmax", "fmin", "pow", "remainder",
    "fmod", "floor_divide", "reciprocal", "square", "log", "log2", "log10", "exp2", "eq", "ne", "gt",
    "ge", "lt", "le", "clamp_min", "clamp_max", "atan2", "trunc", "frac", "lgamma", "digamma", "erfinv",
    "xlogy", "threshold", "logical_not_float", "nan_to_num", "copysign", "hypot", "heaviside",
)
# fmt: on
_register(*_inplace(*STEP))(compute.elementwise_formula("step", _output))


def _per_element(steps: int, what: str):
    def cost(spec: OpSpec) -> Cost:
        return compute.elementwise(_n(spec.outputs[0], "output"), steps, what)

    cost.__doc__ = f"{steps} FLOPs per element: {what}."
    return cost


_register(*_inplace("silu"))(_per_element(5, "x * sigmoid(x), sigmoid 4"))
_register("silu_backward")(_per_element(8, "dy * s * (1 + x * (1 - s)), s = sigmoid(x) 4"))
_register(*_inplace("hardsigmoid"))(_per_element(3, "min(max(x / 6 + 0.5, 0), 1)"))
_register(*_inplace("hardswish"))(_per_element(4, "x * hardsigmoid(x)"))
_register("hardsigmoid_backward", "hardswish_backward")(_per_element(3, "dy, scaled, where in range"))
_register(*_inplace("mish"))(_per_element(5, "x * tanh(softplus(x))"))
_register("log_sigmoid_forward")(_per_element(4, "-softplus(-x)"))
_register("log_sigmoid_backward")(_per_element(4, "dy * (1 - sigmoid(x))"))
_register(*_inplace("lerp"))(_per_element(3, "a + w * (b - a)"))
_register(*_inplace("addcmul", "addcdiv"))(_per_element(3, "a + v * b * c"))


@_register("gelu", "gelu_")
def gelu(spec: OpSpec) -> Cost:
    """Exact: 5 per element, x * 0.5 * (1 + erf(x / sqrt 2)). Tanh
    approximation: 9, 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))."""
    tanh = str(spec.attrs.get("approximate", "none")) == "tanh"
    return compute.elementwise(
        _n(spec.outputs[0], "output"),
        9 if tanh else 5,
        "0.5 x (1 + tanh(c (x + 0.044715 x^3)))" if tanh else "0.5 x (1 + erf(x / sqrt 2))",
    )


@_register("gelu_backward")
def gelu_backward(spec: OpSpec) -> Cost:
    """Exact: 8 per element, dy * (cdf(x) + x * pdf(x)). Tanh approximation: 14."""
    tanh = str(spec.attrs.get("approximate", "none")) == "tanh"
    return compute.elementwise(_n(spec.outputs[0], "output"), 14 if tanh else 8, "dy * d gelu(x) / dx")


# --------------------------------------------------------------------------
# Softmax and normalization

_register("_softmax", "_safe_softmax", "softmax")(
    compute.elementwise_formula("softmax", lambda spec: spec.inputs[0])
)
_register("_log_softmax", "log_softmax")(
    compute.elementwise_formula("log_softmax", lambda spec: spec.inputs[0])
)


@_register("_softmax_backward_data", "_log_softmax_backward_data")
def softmax_backward(spec: OpSpec) -> Cost:
    """4 per element: y * dy, its sum per row, dy minus it, times y."""
    return compute.elementwise(_n(spec.inputs[0], "gradient"), 4, "y * (dy - sum(dy * y))")


def _normalized(spec: OpSpec, axes_from: int):
    shape = spec.inputs[0]
    n = _n(shape, "input")
    rows = _n(shape[:axes_from]) if axes_from else 1
    return n, rows


@_register("native_layer_norm")
def layer_norm(spec: OpSpec) -> Cost:
    """7 per element + 4 per row, and 1 per element for each of gamma and
    beta: the steps Keras's LayerNormalization runs on TensorFlow. Per
    element: the mean's sum, x - mean, its square, the variance's sum, and
    the normalization (3); per row the two divides, + eps and rsqrt."""
    shape = spec.inputs[0]
    normalized = spec.attrs.get("normalized_shape") or ()
    axis = len(shape) - len(tuple(normalized))
    n, rows = _normalized(spec, axis)
    affine = sum(1 for name in ("weight", "bias") if spec.attrs.get(name) is not None)
    per = 7 + affine
    return Cost(per * n + 4 * rows, 0, f"{per} x {n:,} elements + 4 x {rows:,} rows")


@_register("native_layer_norm_backward")
def layer_norm_backward(spec: OpSpec) -> Cost:
    """9 per element + 4 per row: x-hat (2), dgamma and dbeta (3), dx = rstd
    (dy' - mean(dy') - x-hat mean(dy' x-hat)) (4), as TensorFlow's batch-norm gradient."""
    shape = spec.inputs[1]
    normalized = spec.attrs.get("normalized_shape") or ()
    n, rows = _n(shape, "input"), _n(shape[: len(shape) - len(tuple(normalized))])
    return Cost(9 * n + 4 * rows, 0, f"9 x {n:,} elements + 4 x {rows:,} rows")


def _channels(spec: OpSpec) -> int:
    shape = spec.inputs[0]
    return shape[1] if len(shape) > 1 else 1


@_register(
    "_native_batch_norm_legit_no_training",
    "_native_batch_norm_legit",
    "native_batch_norm",
    "_native_batch_norm_legit_functional",
)
def batch_norm(spec: OpSpec) -> Cost:
    """As TensorFlow's FusedBatchNorm: inference 2N + 6C; training 6N + 6C,
    and 6C more to update running statistics (:func:`compute.batch_norm`)."""
    training = spec.type == "_native_batch_norm_legit" or bool(spec.attrs.get("training", False))
    return compute.batch_norm(
        _n(spec.inputs[0], "input"), _channels(spec), training, spec.attrs.get("running_mean") is not None
    )


@_register("native_batch_norm_backward")
def batch_norm_backward(spec: OpSpec) -> Cost:
    """As TensorFlow's FusedBatchNormGrad: 9N + 4C in training, 5N + 4C
    otherwise (:func:`compute.batch_norm_grad`)."""
    x = spec.inputs[1]
    return compute.batch_norm_grad(_n(x, "input"), x[1], bool(spec.attrs.get("train", True)))


# --------------------------------------------------------------------------
# Reductions, scans, selection


# fmt: off
@_register("sum", "amax", "amin", "max", "min", "prod", "argmax", "argmin", "logsumexp", "any", "all",
           "nansum", "aminmax")
def reduction(spec: OpSpec) -> Cost:
# fmt: on
    """n(in) - n(out), as TensorFlow's Sum, Max, Prod, ArgMax (a full
    reduction of a non-empty input to a scalar: n - 1)."""
    if spec.type in ("any", "all"):
        return Cost(0, 0, "logic on booleans")
    return compute.reduction(_n(spec.inputs[0], "input"), _n(spec.outputs[0], "output"))


@_register("mean", "nanmean")
def mean(spec: OpSpec) -> Cost:
    """n(in): the sum, n(in) - n(out), and a divide per output."""
    n_in, n_out = _n(spec.inputs[0], "input"), _n(spec.outputs[0], "output")
    return Cost(n_in, 0, f"{n_in:,} in - {n_out:,} out + {n_out:,} divides")


@_register("var", "std", "var_mean", "std_mean")
def variance(spec: OpSpec) -> Cost:
    """4 n(in): the mean (n), x - mean and its square (2n), their mean (n), and a square root per output for std."""
    n_in, n_out = _n(spec.inputs[0], "input"), _n(spec.outputs[0], "output")
    extra = n_out if spec.type.startswith("std") else 0
    return Cost(4 * n_in + extra, 0, f"4 x {n_in:,} elements" + (f" + {n_out:,} roots" if extra else ""))


@_register("linalg_vector_norm", "norm")
def norm(spec: OpSpec) -> Cost:
    """2 n(in) + n(out): squares, their sum, a root per output (the 2-norm)."""
    n_in, n_out = _n(spec.inputs[0], "input"), _n(spec.outputs[0], "output")
    return Cost(2 * n_in + n_out, 0, f"2 x {n_in:,} elements + {n_out:,} roots")


@_register("cumsum", "cumprod", "cummax", "cummin", "logcumsumexp", "cumsum_")
def cumulative(spec: OpSpec) -> Cost:
    """(L - 1) per scan of length L."""
    shape = spec.inputs[0]
    dim = int(spec.attrs.get("dim", 0))
    return compute.scan(_n(shape), shape[dim] if shape else 1)


@_register("topk")
def topk(spec: OpSpec) -> Cost:
    """rows x (n - 1) x ceil(log2(k + 1)), as TensorFlow's TopKV2."""
    shape = spec.inputs[0]
    dim = int(spec.attrs.get("dim", -1)) % max(len(shape), 1)
    n = shape[dim] if shape else 1
    return compute.top_k(_n(shape) // max(n, 1), n, int(spec.attrs.get("k", 1)))


@_register("sort")
def sort(spec: OpSpec) -> Cost:
    """rows x n x ceil(log2 n) comparisons, as the JAX backend's sort."""
    shape = spec.inputs[0]
    dim = int(spec.attrs.get("dim", -1)) % max(len(shape), 1)
    n = shape[dim] if shape else 1
    depth = math.ceil(math.log2(n)) if n > 1 else 0
    return Cost(_n(shape) * depth, 0, f"{_n(shape) // max(n, 1):,} rows x {n} x {depth}")


# fmt: off
@_register("scatter_add", "scatter_add_", "index_add", "index_add_", "scatter_reduce", "scatter_reduce_",
           "embedding_dense_backward", "_embedding_bag_backward", "index_put_with_accumulate")
def scatter_add(spec: OpSpec) -> Cost:
# fmt: on
    """n(values): every value added into its target (the gradient of a
    gather, as TensorFlow's UnsortedSegmentSum)."""
    values = spec.inputs[0] if spec.type == "embedding_dense_backward" else spec.inputs[-1]
    return compute.scattered(_n(values, "values"), "elements")


@_register("index_put", "index_put_", "_index_put_impl_", "_index_put_impl")
def index_put(spec: OpSpec) -> Cost:
    """0 FLOPs (a scatter); with ``accumulate``, n(values) adds."""
    if spec.attrs.get("accumulate"):
        return compute.scattered(_n(spec.inputs[-1], "values"), "elements")
    return Cost(0, 0, "a scatter")


# --------------------------------------------------------------------------
# Contractions


@_register("mm", "bmm", "dot", "mv", "vdot", "inner")
def mm(spec: OpSpec) -> Cost:
    """2 x K x n(out): each output sums K products (K: the first operand's last dim)."""
    return compute.contraction(spec.inputs[0][-1], _n(spec.outputs[0], "output"))


@_register("addmm", "baddbmm", "addmv", "addbmm")
def addmm(spec: OpSpec) -> Cost:
    """The product's 2 x K x n(out), and n(out) adds of the bias (the first
    operand), as a MatMul and a BiasAdd."""
    a = spec.inputs[1]
    n_out = _n(spec.outputs[0], "output")
    product = compute.contraction(a[-1], n_out)
    return Cost(product.flops + n_out, product.macs, product.text + f" + {n_out:,} bias adds")


def _attention(q, k, v, backward: bool) -> Cost:
    """q (..., L, E), k (..., S, E), v (..., S, Ev): scores L x S x E and the
    weighted sum L x S x Ev per head; the softmax 5 per score (TensorFlow's
    Softmax). The backward pass: twice the products (each product's two
    gradients), and the softmax gradient, 4 per score."""
    heads = _n(q[:-2])
    L, E = q[-2], q[-1]
    S, Ev = k[-2], v[-1]
    macs = heads * L * S * (E + Ev)
    scores = heads * L * S
    if backward:
        macs *= 2
        return Cost(2 * macs + 4 * scores, macs,
                    f"2 x 2 x {heads:,} heads x {L}x{S} x ({E} + {Ev}) + 4 x {scores:,} scores")
    return Cost(2 * macs + 5 * scores + scores, macs,
                f"2 x {heads:,} heads x {L}x{S} x ({E} + {Ev}) + 6 x {scores:,} scores (scale, softmax)")


# fmt: off
@_register("_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_flash_attention",
           "_scaled_dot_product_efficient_attention", "_scaled_dot_product_cudnn_attention",
           "_scaled_dot_product_attention_math", "_scaled_dot_product_fused_attention_overrideable",
           "_flash_attention_forward", "_efficient_attention_forward")
def attention(spec: OpSpec) -> Cost:
# fmt: on
    """Fused attention: QK^T, softmax, its product with V."""
    q, k, v = spec.inputs[:3]
    return _attention(q, k, v, False)


@_register("_scaled_dot_product_flash_attention_for_cpu_backward", "_scaled_dot_product_flash_attention_backward",
           "_scaled_dot_product_efficient_attention_backward", "_scaled_dot_product_cudnn_attention_backward",
           "_flash_attention_backward", "_efficient_attention_backward",
           "_scaled_dot_product_fused_attention_overrideable_backward")
def attention_backward(spec: OpSpec) -> Cost:
    """The gradients of fused attention: dV and dP, dQ and dK; the softmax's gradient."""
    q, k, v = spec.inputs[1:4]
    return _attention(q, k, v, True)


@_register("einsum")
def einsum(spec: OpSpec) -> Cost:
    """Two operands: every product of the full index space is multiplied and
    added, 2 x prod(all index sizes) FLOPs and prod(all index sizes) MACs,
    as TensorFlow's Einsum and MatMul. One operand: the adds of a sum,
    terms - n(out)."""
    equation = spec.attrs["equation"]
    terms = compute.einsum_terms(equation, spec.inputs)
    if len(spec.inputs) == 1:
        n_out = _n(spec.outputs[0], "output")
        return Cost(terms - n_out, 0, f"{terms} terms - {n_out} out ({equation})")
    return Cost(2 * terms, terms, f"2 x {terms} products ({equation})")


# --------------------------------------------------------------------------
# Convolutions


def _conv_args(spec: OpSpec, weight: int = 1):
    """(strides, pads, dilations, transposed, groups) of a convolution (or
    its backward) whose kernel is input ``weight``, one entry per spatial dim."""
    a = spec.attrs
    spatial = len(spec.inputs[weight]) - 2

    def per_dim(name, default):
        value = a.get(name, default)
        value = list(value) if isinstance(value, (list, tuple)) else [value]
        return value * spatial if len(value) == 1 else value

    pads = per_dim("padding", 0)
    return (per_dim("stride", 1), pads if len(pads) == spatial else [0] * spatial, per_dim("dilation", 1),
            bool(a.get("transposed", False)), int(a.get("groups", 1) or 1))


def _real_pairs(big, small, window, strides, pads, dilations) -> int:
    """The (position, tap) pairs of the forward convolution big -> small whose input is not padding."""
    return compute.real_pairs(big[2:], small[2:], window, strides, dilations, pads)


def _conv(x, w, out, strides, pads, dilations, transposed, groups) -> Cost:
    window = list(w[2:])
    if not transposed:  # w (Cout, Cin / groups, *window)
        return compute.convolution(_n(out), window, w[1], per_what="in-features per group")
    # transposed, w (Cin, Cout / groups, *window): the input gradient of the
    # convolution out -> x, as TensorFlow's Conv2DBackpropInput (exact form)
    per = w[0] // groups  # the x channels each output channel is fed by
    if all(s == 1 for s in strides):
        return compute.convolution(_n(out), window, per, per_what="channels")
    return compute.on_real_pairs(out[0], out[1], per, _real_pairs(out, x, window, strides, pads, dilations))


@_register("convolution", "_convolution", "convolution_overrideable", "conv1d", "conv2d", "conv3d")
def convolution(spec: OpSpec) -> Cost:
    """n(out) x window x input features per group MACs (padding products
    count, as TensorFlow's Conv2D); transposed, as TensorFlow's exact
    Conv2DBackpropInput: only the products with a real input element where
    strided. A bias adds n(out)."""
    x, w = spec.inputs[0], spec.inputs[1]
    strides, pads, dilations, transposed, groups = _conv_args(spec)
    out = spec.outputs[0]
    cost = _conv(x, w, out, strides, pads, dilations, transposed, groups)
    if spec.attrs.get("bias") is not None:
        cost = Cost(cost.flops + _n(out), cost.macs, cost.text + f" + {_n(out):,} bias adds")
    return cost


@_register("convolution_backward")
def convolution_backward(spec: OpSpec) -> Cost:
    """The gradients ``output_mask`` asks for, as TensorFlow's exact
    backward convolutions: the input's (a transposed convolution of dy; for a
    transposed forward, a convolution) and the kernel's (each output gradient
    meeting its window of inputs; for a transposed forward, only the products
    on a real output), and the bias's, n(dy) - channels adds."""
    dy, x, w = spec.inputs[:3]
    strides, pads, dilations, transposed, groups = _conv_args(spec, weight=2)
    mask = list(spec.attrs.get("output_mask") or (True, True, True))
    flops = macs = 0
    texts = []
    window = list(w[2:])
    if mask[0]:  # dx: the transposed convolution of dy (for a transposed forward, the convolution)
        cost = _conv(dy, w, x, strides, pads, dilations, not transposed, groups)
        flops, macs = flops + cost.flops, macs + cost.macs
        texts.append("dx: " + cost.text)
    if len(mask) > 1 and mask[1]:  # dw
        if transposed:
            cost = compute.on_real_pairs(x[0], w[0], w[1], _real_pairs(dy, x, window, strides, pads, dilations),
                                         "outputs")
        else:
            cost = compute.convolution(_n(dy), window, w[1], "output-gradient elements", "in-channels")
        flops, macs = flops + cost.flops, macs + cost.macs
        texts.append("dw: " + cost.text)
    if len(mask) > 2 and mask[2]:  # db
        n = _n(dy) - dy[1]
        flops += n
        texts.append(f"db: {_n(dy):,} - {dy[1]} channels")
    return Cost(flops, macs, "; ".join(texts))


# --------------------------------------------------------------------------
# Pooling and resizing


def _window(spec: OpSpec):
    kernel = spec.attrs.get("kernel_size") or ()
    kernel = list(kernel) if isinstance(kernel, (list, tuple)) else [kernel]
    rank = len(spec.inputs[0]) - 2
    return kernel * rank if len(kernel) == 1 else kernel


# fmt: off
@_register("max_pool2d_with_indices", "max_pool3d_with_indices", "max_pool1d", "max_pool2d", "max_pool3d",
           "avg_pool2d", "avg_pool3d", "avg_pool1d")
def pool(spec: OpSpec) -> Cost:
# fmt: on
    """window x n(out), as TensorFlow's MaxPool and AvgPool."""
    window = _window(spec)
    return compute.window(math.prod(window), _n(spec.outputs[0], "output"), "x".join(map(str, window)))


@_register("max_pool2d_with_indices_backward", "max_pool3d_with_indices_backward")
def max_pool_backward(spec: OpSpec) -> Cost:
    """window x n(dy) + n(dy), as TensorFlow's MaxPoolGrad."""
    return compute.max_window_grad(math.prod(_window(spec)), _n(spec.inputs[0], "output gradient"))


@_register("avg_pool2d_backward", "avg_pool3d_backward")
def avg_pool_backward(spec: OpSpec) -> Cost:
    """2 x window x n(dy), as TensorFlow's AvgPoolGrad."""
    window = math.prod(_window(spec))
    n = _n(spec.inputs[0], "output gradient")
    return Cost(2 * window * n, 0, f"2 x {window} window x {n} gradient elements")


@_register("_adaptive_avg_pool2d", "_adaptive_avg_pool3d", "adaptive_avg_pool1d")
def adaptive_avg_pool(spec: OpSpec) -> Cost:
    """n(in): each input added into its window's sum, a divide per output (n(in) when windows tile)."""
    return Cost(_n(spec.inputs[0], "input"), 0, f"{_n(spec.inputs[0]):,} inputs summed and divided")


@_register("_adaptive_avg_pool2d_backward", "_adaptive_avg_pool3d_backward")
def adaptive_avg_pool_backward(spec: OpSpec) -> Cost:
    """n(dx): each input gradient, its window's gradient divided."""
    return Cost(_n(spec.outputs[0], "input gradient"), 0, "a divide per input-gradient element")


@_register("upsample_bilinear2d", "_upsample_bilinear2d_aa", "upsample_linear1d", "upsample_trilinear3d")
def resize_linear(spec: OpSpec) -> Cost:
    """7 per output, as TensorFlow's ResizeBilinear: 4 neighbours weighed."""
    return compute.elementwise(_n(spec.outputs[0], "output"), 7, "4 neighbours weighed")


@_register("upsample_bicubic2d", "_upsample_bicubic2d_aa")
def resize_cubic(spec: OpSpec) -> Cost:
    """35 per output, as TensorFlow's ResizeBicubic: 16 neighbours weighed."""
    return compute.elementwise(_n(spec.outputs[0], "output"), 35, "16 neighbours weighed")


# fmt: off
@_register("upsample_bilinear2d_backward", "upsample_linear1d_backward", "upsample_bicubic2d_backward",
           "upsample_trilinear3d_backward", "upsample_nearest2d_backward", "upsample_nearest1d_backward",
           "upsample_nearest3d_backward", "_upsample_nearest_exact2d_backward")
def resize_backward(spec: OpSpec) -> Cost:
# fmt: on
    """2 per output gradient and neighbour: each weighed and added into its input."""
    n = _n(spec.inputs[0], "output gradient")
    neighbours = 1 if "nearest" in spec.type else (16 if "bicubic" in spec.type else 4)
    return Cost(2 * neighbours * n, 0, f"2 x {neighbours} neighbours x {n:,} gradient elements")


# --------------------------------------------------------------------------
# Losses and transforms


@_register("nll_loss_forward", "nll_loss2d_forward", "nll_loss_nd")
def nll_loss(spec: OpSpec) -> Cost:
    """2 per row: the label's log-probability negated, and summed (with the
    mean's divide) over rows."""
    rows = _n(spec.inputs[1], "target")
    return Cost(2 * rows, 0, f"2 x {rows:,} rows")


@_register("nll_loss_backward", "nll_loss2d_backward")
def nll_loss_backward(spec: OpSpec) -> Cost:
    """1 per row: the gradient, -dy (divided by the rows), written at each label."""
    rows = _n(spec.inputs[2], "target")
    return Cost(rows, 0, f"{rows:,} rows")


@_register("_fft_c2c", "_fft_r2c", "_fft_c2r")
def fft(spec: OpSpec) -> Cost:
    """5 N log2 N per complex transform of N points, half that for real data,
    as keras_flops' FFT and RFFT."""
    dims = [int(d) for d in (spec.attrs.get("dim") or ())]
    shape = spec.inputs[0] if spec.type != "_fft_c2r" else spec.outputs[0]
    points = math.prod(shape[d] for d in dims) if dims else 1
    return compute.fft(_n(shape) // max(points, 1), points, spec.type != "_fft_c2c")


# --------------------------------------------------------------------------
# Ops that read, move, reshape, select or convert data, or make random bits:
# 0 FLOPs by design.
# fmt: off
ZERO = frozenset(_inplace(
    "view", "_unsafe_view", "reshape", "expand", "permute", "transpose", "t", "squeeze", "unsqueeze",
    "slice", "select", "as_strided", "alias", "detach", "clone", "_to_copy", "copy", "cat", "stack",
    "split", "split_with_sizes", "unbind", "chunk", "narrow", "empty", "empty_like", "empty_strided",
    "zeros", "zeros_like", "ones", "ones_like", "full", "full_like", "fill", "zero", "arange",
    "scalar_tensor", "lift_fresh", "lift_fresh_copy", "new_zeros", "new_ones", "new_empty", "new_full",
    "new_empty_strided", "masked_fill", "where", "constant_pad_nd", "reflection_pad1d", "reflection_pad2d",
    "reflection_pad3d", "replication_pad1d", "replication_pad2d", "replication_pad3d", "repeat",
    "repeat_interleave", "flip", "roll", "index", "_unsafe_index", "index_select", "gather", "scatter",
    "slice_scatter", "select_scatter", "diagonal", "diagonal_scatter", "tril", "triu", "logical_and",
    "logical_or", "logical_not", "logical_xor", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not",
    "bitwise_left_shift", "bitwise_right_shift", "__and__", "__or__", "__xor__", "__lshift__", "__rshift__",
    "rand", "randn", "rand_like", "randn_like", "randint", "randint_like", "bernoulli", "uniform", "normal",
    "randperm", "multinomial", "_local_scalar_dense", "embedding", "one_hot", "unfold", "_reshape_alias",
    "upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d", "_upsample_nearest_exact1d",
    "_upsample_nearest_exact2d", "_upsample_nearest_exact3d", "pixel_shuffle", "pixel_unshuffle",
    "channel_shuffle", "nonzero", "masked_select", "masked_scatter", "index_copy", "index_fill",
    "view_as_real", "view_as_complex", "real", "imag", "complex", "_conj", "conj", "resolve_conj",
    "resolve_neg", "_neg_view", "set", "resize", "_index_put_impl_bool", "contiguous", "linspace",
    "eye", "_assert_async", "_assert_scalar", "sym_constrain_range", "_make_dep_token", "bucketize",
    "searchsorted", "count_nonzero", "native_dropout_backward_mask", "unique", "_unique2", "tensor_split",
    "unsafe_split", "unsafe_split_with_sizes", "unsafe_chunk", "expand_as", "_pin_memory", "item",
    "_has_compatible_shallow_copy_type", "movedim", "swapaxes", "narrow_copy", "split_copy",
    # the gradients of views and selections: the gradient placed into zeros
    "slice_backward", "select_backward", "diagonal_backward", "unfold_backward", "as_strided_scatter",
    "expand_copy", "permute_copy", "view_copy", "_unsafe_index_put",
))
# fmt: on

# Views: no data moves (docs/formulas.md, "Bytes").
# fmt: off
VIEWS = frozenset({
    "view", "_unsafe_view", "reshape", "expand", "permute", "transpose", "t", "squeeze", "unsqueeze",
    "slice", "select", "as_strided", "alias", "detach", "split", "split_with_sizes", "unbind", "chunk",
    "narrow", "diagonal", "unfold", "lift_fresh", "_reshape_alias", "view_as_real", "view_as_complex",
    "real", "imag", "_conj", "_neg_view", "expand_as", "movedim", "swapaxes", "t_", "transpose_",
    "squeeze_", "unsqueeze_", "tensor_split", "unsafe_split", "unsafe_split_with_sizes", "unsafe_chunk",
})
# fmt: on
