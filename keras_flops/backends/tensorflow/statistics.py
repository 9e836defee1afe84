"""TensorFlow's own registered "flops" statistics, read and explained, never written.

``STATISTIC.cost(op)`` is what tf.compat.v1.profiler's float_operation() counts for
the op; ``explain(op)`` shows the arithmetic TensorFlow's formula does, with
the op's numbers, for ``report.explain``.
"""

from __future__ import annotations

import math

from keras_flops.backends.tensorflow import _compat as compat
from keras_flops.backends.tensorflow.formulas import MAC_OPS
from keras_flops.formulas.compute import num_elements
from keras_flops.formulas.registry import Cost, with_macs

# fmt: off
_BINARY = {
    "Add": 1, "AddV2": 1, "Sub": 1, "Mul": 1, "RealDiv": 1, "Maximum": 1, "Minimum": 1,
    "Pow": 1, "Equal": 1, "NotEqual": 1, "Greater": 1, "GreaterEqual": 1, "Less": 1,
    "LessEqual": 1, "SquaredDifference": 2, "RsqrtGrad": 4,
}
# fmt: on
# fmt: off
_UNARY = {
    "Reciprocal": 1, "Square": 1, "Log": 1, "Neg": 1, "AssignAdd": 1, "AssignSub": 1,
    "Rsqrt": 2, "Softmax": 5, "BiasAdd": 1,
}
# fmt: on
_REDUCE = ("Sum", "ArgMax", "ArgMin", "BiasAddGrad")

COUNTED_OPS = compat.tf_flops_op_types()  # op types with a registered "flops" statistic


class TensorFlowStatistic:
    """TensorFlow's registered "flops" statistics, as the walk's
    :class:`~keras_flops.formulas.registry.Statistic`."""

    name = "TensorFlow"
    source = "tensorflow"
    op_types = COUNTED_OPS

    def cost(self, op) -> Cost:
        """FLOPs of ``op`` by TensorFlow's registered statistic, as tf.profiler
        counts them, with MACs by convention and the arithmetic explained.

        Raises ValueError where TensorFlow's formula does (an unknown dim, NCHW
        pooling), which the walk reports instead of counting 0.
        """
        return with_macs(op.type, compat.tf_flops(op), MAC_OPS, explain(op))


STATISTIC = TensorFlowStatistic()


def explain(op) -> str:
    """The arithmetic of TensorFlow's formula for ``op``, with its numbers."""
    t = op.type
    try:
        if t in _BINARY:
            return f"{_n(op.outputs[0])} output elements x {_BINARY[t]}"
        if t in _UNARY:
            return f"{_n(op.inputs[0])} elements x {_UNARY[t]}"
        if t in ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3"):
            return _matmul(op)
        if t in ("Conv2D", "Conv3D", "DepthwiseConv2dNative"):
            return _conv(op)
        if t in ("AvgPool", "MaxPool"):
            window = "x".join(str(k) for k in op.get_attr("ksize"))
            return f"({window}) window x {_plural(_n(op.outputs[0]), 'output')}"
        if t == "Mean":
            return f"{_n(op.inputs[0])} input elements x 1 (sum, then divide)"
        if t in _REDUCE:
            return f"{_n(op.inputs[0])} in - {_n(op.outputs[0])} out"
        if t in ("Conv2DBackpropInput", "Conv2DBackpropFilter"):
            return _conv_backprop(op)
        if t == "AddN":
            return f"{_n(op.inputs[0])} elements x ({len(op.inputs)} inputs - 1)"
    except (ValueError, TypeError):
        pass
    return f"TensorFlow's {t} formula"


def _conv_backprop(op) -> str:
    """TensorFlow's formula for a convolution's input gradient (the image is
    its output) or kernel gradient (the image is its input): 2 x n(image) x
    n(kernel) / (the image's channels x the stride product)."""
    if op.type == "Conv2DBackpropInput":
        image, kernel, what, channels = op.outputs[0], op.inputs[1], "outputs", "channels"
    else:
        image, kernel, what, channels = op.inputs[0], op.outputs[0], "input elements", "in-channels"
    strides = op.get_attr("strides")
    return (
        f"2 x {_n(image)} {what} x {math.prod(kernel.shape.as_list())} kernel elements / "
        f"({image.shape.as_list()[-1]} {channels} x {strides[1] * strides[2]} stride product)"
    )


def _matmul(op) -> str:
    a = op.inputs[0].shape.as_list()
    outputs = _plural(_n(op.outputs[0]), "output")
    if op.type == "MatMul":
        k = a[-2] if op.get_attr("transpose_a") else a[-1]
        return f"2 x {k} inner dim x {outputs}"
    # TensorFlow's statistic reads transpose_a, which batch matmuls do not
    # have: it takes x's last dim even with adj_x (counting="full" does not).
    wrong = " (x's last dim: TensorFlow's formula ignores adj_x)" if op.get_attr("adj_x") else ""
    return f"2 x {a[-1]} inner dim{wrong} x {outputs}"


def _conv(op) -> str:
    kernel = op.inputs[1].shape.as_list()
    out = _plural(_n(op.outputs[0]), "output")
    if op.type == "DepthwiseConv2dNative":
        return f"2 x {out} x {kernel[0]}x{kernel[1]} kernel"
    spatial = "x".join(str(k) for k in kernel[:-2])
    return f"2 x {out} x ({spatial} kernel x {_plural(kernel[-2], 'in-channel')})"


def _n(tensor) -> int:
    return num_elements(tensor.shape.as_list() if tensor.shape.rank is not None else None)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
