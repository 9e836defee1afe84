"""Formulas by what an op computes, each written once for every backend.

Each function takes plain numbers (element counts, a window, an inner dim)
and returns a :class:`Cost` whose text shows the arithmetic. A backend's
table maps its op types onto them: TensorFlow's Sigmoid and JAX's logistic
are both :data:`ELEMENTWISE` ``"sigmoid"``, TensorFlow's Max and JAX's
reduce_max are both :func:`reduction`. The conventions are TensorFlow's
profiler's (docs/formulas.md): a multiply-accumulate is 2 FLOPs, each
arithmetic step of an elementwise formula is 1 FLOP per element, and a
transcendental function (exp, log, tanh, erf, ...) is 1.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

from keras_flops.formulas.registry import Cost

# --------------------------------------------------------------------------
# Elementwise

# what an elementwise op computes: (FLOPs per element, the textbook formula)
# fmt: off
ELEMENTWISE: Dict[str, Tuple[int, str]] = {
    "relu": (1, "max(x, 0)"),
    "relu6": (2, "min(max(x, 0), 6)"),
    "leaky_relu": (2, "max(x, alpha * x)"),
    "elu": (2, "exp(x) - 1 where x < 0"),
    "selu": (4, "scale * alpha * (exp(x) - 1) where x < 0"),
    "sigmoid": (4, "1 / (1 + exp(-x))"),
    "tanh": (1, "tanh(x)"),
    "softplus": (3, "log(exp(x) + 1)"),
    "softsign": (3, "x / (|x| + 1)"),
    "erf": (1, "erf(x)"),
    "erfc": (1, "erfc(x)"),
    "exp": (1, "exp(x)"),
    "expm1": (1, "exp(x) - 1"),
    "log1p": (1, "log(1 + x)"),
    "sqrt": (1, "sqrt(x)"),
    "rsqrt": (2, "1 / sqrt(x): a square root and a reciprocal"),
    "abs": (1, "|x|"),
    "sign": (1, "sign(x)"),
    "floor": (1, "floor(x)"),
    "ceil": (1, "ceil(x)"),
    "round": (1, "round(x)"),
    "rint": (1, "rint(x)"),
    "sin": (1, "sin(x)"),
    "cos": (1, "cos(x)"),
    "tan": (1, "tan(x)"),
    "asin": (1, "asin(x)"),
    "acos": (1, "acos(x)"),
    "atan": (1, "atan(x)"),
    "sinh": (1, "sinh(x)"),
    "cosh": (1, "cosh(x)"),
    "is_nan": (1, "x != x"),
    "is_inf": (1, "|x| == inf"),
    "is_finite": (1, "|x| < inf"),
    "clamp": (2, "a max and a min"),
    "softmax": (5, "the max, x - max, exp, the sum, the divide: TensorFlow's Softmax"),
    "log_softmax": (5, "x - max - log(sum(exp(x - max))), as TensorFlow's Softmax"),
    # gradients of activations: per element of the incoming gradient dy
    "relu_grad": (1, "dy where x > 0"),
    "relu6_grad": (2, "dy where 0 < x < 6"),
    "leaky_relu_grad": (2, "dy or alpha * dy by the sign of x"),
    "elu_grad": (2, "dy * (y + 1) where x < 0"),
    "selu_grad": (3, "dy * (y + scale * alpha) where x < 0, else dy * scale"),
    "softplus_grad": (3, "dy * sigmoid(x): exp, add, divide"),
    "softsign_grad": (4, "dy / (1 + |x|)^2"),
    "tanh_grad": (3, "dy * (1 - y^2)"),
    "sigmoid_grad": (3, "dy * y * (1 - y)"),
    "sqrt_grad": (2, "dy * 0.5 / y"),
    "reciprocal_grad": (3, "-dy * y^2"),
    # one arithmetic step or comparison per element (TensorFlow's Add, Mul, Equal, ...)
    "step": (1, "one step per element"),
}
# fmt: on


def elementwise(n: int, per_element: int, formula: str) -> Cost:
    """``per_element`` FLOPs on each of ``n`` elements."""
    return Cost(n * per_element, 0, f"{n:,} elements x {per_element} ({formula})")


def elementwise_formula(what: str, shape_of):
    """A formula for an op computing ``what`` (a key of :data:`ELEMENTWISE`)
    on each element of the shape ``shape_of(spec)`` gives."""
    per_element, text = ELEMENTWISE[what]

    def cost(spec) -> Cost:
        return elementwise(num_elements(shape_of(spec), "operand"), per_element, text)

    cost.__doc__ = f"{per_element} FLOP(s) per element: {text}."
    return cost


# --------------------------------------------------------------------------
# Reductions, scans, selection, scatters


def scattered(n: int, what: str = "updates") -> Cost:
    """n: every one of n values added (multiplied, compared) into its target."""
    return Cost(n, 0, f"{n:,} {what} added")


def reduction(n_in: int, n_out: int) -> Cost:
    """n(in) - n(out): one add, compare or multiply per element folded in (TensorFlow's Sum)."""
    return Cost(n_in - n_out, 0, f"{n_in:,} in - {n_out:,} out")


def scan(n: int, length: Optional[int], exclusive: bool = False) -> Cost:
    """(L - 1) per scan of length L ((L - 2) when exclusive); n / L scans."""
    if not length:
        return Cost(0, 0, "empty scan")
    per_scan = max(length - (2 if exclusive else 1), 0)
    scans = n // length
    return Cost(scans * per_scan, 0, f"{scans:,} scans x {per_scan} (length {length})")


def top_k(rows: int, n: int, k: int) -> Cost:
    """rows x (n - 1) x ceil(log2(k + 1)) comparisons: a row of n scanned
    against a heap of the k largest; for k = 1, n - 1, as TensorFlow's ArgMax."""
    depth = math.ceil(math.log2(int(k) + 1))
    return Cost(rows * (n - 1) * depth, 0, f"{rows:,} rows x ({n} - 1) x ceil(log2({int(k)} + 1))")


def fft(transforms: int, points: int, real: bool) -> Cost:
    """5 N log2 N per complex transform of N points (the radix-2 count: N/2
    log2 N butterflies of 10 real FLOPs), half that for real data."""
    per = 5 * points * math.log2(points) if points > 1 else 0
    if real:
        per /= 2
    half = ", halved for real data" if real else ""
    return Cost(
        int(round(transforms * per)),
        0,
        f"{transforms:,} transforms x 5 x {points} points x log2({points}){half}",
    )


# --------------------------------------------------------------------------
# Pooling


def window(size: int, n_out: int, shape: str) -> Cost:
    """Window size x n(out): TensorFlow's MaxPool and AvgPool."""
    return Cost(size * n_out, 0, f"({shape}) window x {n_out:,} outputs")


def max_window_grad(size: int, n: int) -> Cost:
    """window x n + n: the max found again in each of n windows, and the gradient added at it."""
    return Cost(size * n + n, 0, f"{size} window x {n:,} outputs + {n:,}")


# --------------------------------------------------------------------------
# Contractions: matmuls, einsums, convolutions


def contraction(k: int, n_out: int, inner: str = "inner dim") -> Cost:
    """2 x k x n(out) FLOPs, k x n(out) MACs: each output sums k products."""
    return Cost(2 * k * n_out, k * n_out, f"2 x {k:,} {inner} x {n_out:,} outputs")


def einsum_terms(equation: str, shapes: Sequence[Sequence[Optional[int]]]) -> int:
    """Size of an einsum's full index space: the product over every distinct
    index (and the broadcast ``...`` dims) of its size."""
    lhs = equation.replace(" ", "").split("->")[0]
    specs = lhs.split(",")
    if len(specs) != len(shapes):
        raise ValueError(f"equation {equation!r} names {len(specs)} operands, got {len(shapes)}")
    sizes: Dict[str, int] = {}
    ellipses: List[Tuple[int, ...]] = []
    for spec, shape in zip(specs, shapes):
        if shape is None or any(d is None for d in shape):
            raise ValueError(f"operand shape {shape} is not fully known")
        labels = spec.replace("...", "")
        if "..." in spec:
            head, _ = spec.split("...")
            n_ell = len(shape) - len(labels)
            ellipses.append(tuple(shape[len(head) : len(head) + n_ell]))
            dims = list(shape[: len(head)]) + list(shape[len(head) + n_ell :])
        else:
            dims = list(shape)
        if len(labels) != len(dims):
            raise ValueError(f"{spec!r} does not match shape {shape}")
        for label, dim in zip(labels, dims):
            # a label of size 1 broadcasts against the other operand's size (0 included)
            sizes[label] = dim if sizes.get(label, 1) == 1 else sizes[label]
    return math.prod(sizes.values()) * math.prod(_broadcast(ellipses))


def _broadcast(shapes: List[Tuple[int, ...]]) -> Tuple[int, ...]:
    rank = max((len(s) for s in shapes), default=0)
    out = [1] * rank
    for s in shapes:
        for i, d in enumerate(s, start=rank - len(s)):
            out[i] = max(out[i], d)
    return tuple(out)


def convolution(
    n_out: int, window: Sequence[int], per: int, what: str = "outputs", per_what: str = "in-features"
) -> Cost:
    """n(out) x window x ``per`` MACs, twice that in FLOPs: each output sums
    one product per kernel tap and per input feature it is fed by (a
    convolution's, per group; a transposed one's, the channels of the input
    each output channel is fed by). Products with padding count, as in
    TensorFlow's Conv2D."""
    macs = n_out * math.prod(window) * per
    return Cost(
        2 * macs, macs, f"2 x {n_out:,} {what} x ({'x'.join(map(str, window))} window x {per} {per_what})"
    )


def real_pairs(
    in_sizes: Sequence[int],
    out_sizes: Sequence[int],
    window: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    pads_lo: Sequence[int],
    lhs_dilations: Optional[Sequence[int]] = None,
) -> int:
    """The (output position, kernel tap) pairs of a convolution whose input
    element is real, over every spatial dim: the product of
    :func:`input_pairs` per dim."""
    lhs_dilations = lhs_dilations or (1,) * len(in_sizes)
    return math.prod(
        input_pairs(i, o, k, s, d, p, ld)
        for i, o, k, s, d, p, ld in zip(
            in_sizes, out_sizes, window, strides, dilations, pads_lo, lhs_dilations
        )
    )


def on_real_pairs(batch: int, channels: int, per: int, pairs: int, on: str = "inputs") -> Cost:
    """A strided convolution's gradient (or a transposed convolution) counted
    on real elements only: batch x channels x ``per`` x the (position, tap)
    pairs whose element on the strided side is not a zero the stride
    inserts nor padding (:func:`real_pairs`); where TensorFlow's
    Conv2DBackpropInput formula divides by the stride product."""
    macs = batch * channels * per * pairs
    return Cost(
        2 * macs,
        macs,
        f"2 x {batch} batch x {channels} channels x {per} x {pairs:,} (position, tap) pairs on real {on}",
    )


def input_pairs(
    in_size: int, out_size: int, k: int, stride: int, dilation: int, pad_lo: int, lhs_dilation: int = 1
) -> int:
    """Along one spatial dim of a convolution: the (output position, kernel
    tap) pairs whose input position is a real element, not padding, nor (with
    ``lhs_dilation``, as JAX writes a strided convolution's input gradient)
    a zero inserted between the input's elements."""
    dilated = (in_size - 1) * lhs_dilation + 1
    count = 0
    for o in range(out_size):
        for t in range(k):
            position = o * stride + t * dilation - pad_lo
            if 0 <= position < dilated and position % lhs_dilation == 0:
                count += 1
    return count


# --------------------------------------------------------------------------
# Normalization


def batch_norm(n: int, channels: int, training: bool, moving_averages: bool) -> Cost:
    """Inference: 2N + 6C, the ops Keras 3 lowers BatchNormalization to: per
    channel var + eps, rsqrt (2), x gamma, mean x scale, beta - (6C), then
    x * scale + shift per element (2N). Training adds the batch mean (N) and
    variance (3N: subtract, square, add): 6N + 6C, and 6C more when the
    moving averages are updated. TensorFlow's FusedBatchNorm, PyTorch's
    native_batch_norm."""
    if not training:
        return Cost(2 * n + 6 * channels, 0, f"2 x {n} elements + 6 x {channels} channels")
    extra = 6 * channels if moving_averages else 0
    text = f"6 x {n} elements + 6 x {channels} channels (training)"
    if extra:
        text += f" + 6 x {channels} (moving averages)"
    return Cost(6 * n + 6 * channels + extra, 0, text)


def batch_norm_grad(n: int, channels: int, training: bool) -> Cost:
    """Training: 9N + 4C: x-hat (2N), dgamma = sum(dy x-hat) (2N), dbeta =
    sum(dy) (N), dx = scale * (dy - mean(dy) - x-hat mean(dy x-hat)) (4N),
    per-channel means and scale (4C). Inference statistics: 5N + 4C (no mean
    terms in dx). TensorFlow's FusedBatchNormGrad, PyTorch's
    native_batch_norm_backward."""
    per_element = 9 if training else 5
    return Cost(per_element * n + 4 * channels, 0, f"{per_element} x {n} elements + 4 x {channels} channels")


def num_elements(shape: Optional[Sequence[Optional[int]]], what: str = "") -> int:
    """Elements of a fully known shape; ValueError naming ``what`` on an unknown dim."""
    if shape is None or any(d is None for d in shape):
        raise ValueError(f"the {what + ' ' if what else ''}shape {shape} has an unknown dim")
    n = 1
    for d in shape:
        n *= int(d)
    return n
