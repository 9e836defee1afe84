"""Every TensorFlow "flops" statistic, audited (hypothesis).

counting="full" uses TensorFlow's registered statistic for an op type only
where these properties hold: for each of the 46 op types, over every
attribute that changes the cost (adjoints and transposes, broadcasting,
data formats, padding, strides, dilations, groups, axes, keepdims, ...),
the count full mode gives equals a formula written here from what the op
computes, independently of TensorFlow's. Matmuls are checked by running
them: a matmul of all-ones operands puts the number of products behind each
output element into that element, so the sum of its output is its MACs.

Where TensorFlow's statistic is wrong (BatchMatMul's, which reads an
attribute named ``transpose_a`` that batch matmuls do not have), full mode
uses an exact formula instead; counting="tfprof" keeps TensorFlow's number.
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from keras_flops.backends.tensorflow.program import TABLE, GraphProgram
from keras_flops.backends.tensorflow.statistics import COUNTED_OPS as TF_COUNTED_OPS
from keras_flops.core import walk
from keras_flops.formulas import Chain

FULL, TFPROF = Chain(TABLE), Chain(TABLE, statistic_only=True)


def price(op, counting="full"):
    """One op priced as a count in ``counting`` prices it."""
    return walk.price(GraphProgram(None), TFPROF if counting == "tfprof" else FULL, op)


SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
dims = st.integers(1, 5)

# Every op type audited below; test_every_statistic_is_audited checks it is all of them.
AUDITED = set()


def audits(*op_types):
    AUDITED.update(op_types)
    return lambda test: test


def traced_op(op_type, fn, *specs):
    """The one op of type ``op_type`` in ``fn`` traced on ``specs`` (shapes, or TensorSpecs)."""
    specs = [s if isinstance(s, tf.TensorSpec) else tf.TensorSpec(s, tf.float32) for s in specs]
    graph = tf.function(fn).get_concrete_function(*specs).graph
    (op,) = [o for o in graph.get_operations() if o.type == op_type]
    return op


def full(op):
    """(FLOPs, MACs) of ``op`` in counting="full"."""
    priced = price(op)
    assert not isinstance(priced, str), priced
    cost, _ = priced
    return cost.flops, cost.macs


def ones(shape):
    return tf.ones(shape, tf.float32)


def out_size(size, k, stride, dilation, padding):
    """Output length of a window over ``size`` positions (padding "SAME", "VALID" or (lo, hi))."""
    span = (k - 1) * dilation + 1
    if padding == "SAME":
        return -(-size // stride)
    lo, hi = (0, 0) if padding == "VALID" else padding
    return (size + lo + hi - span) // stride + 1


# --------------------------------------------------------------------------
# Matmuls: the products counted by running the matmul on ones


@audits("MatMul")
@SETTINGS
@given(m=dims, k=dims, n=dims, ta=st.booleans(), tb=st.booleans())
def test_matmul(m, k, n, ta, tb):
    a, b = (k, m) if ta else (m, k), (n, k) if tb else (k, n)
    fn = lambda x, y: tf.linalg.matmul(x, y, transpose_a=ta, transpose_b=tb)  # noqa: E731
    macs = int(tf.reduce_sum(fn(ones(a), ones(b))))
    assert macs == m * k * n
    assert full(traced_op("MatMul", fn, a, b)) == (2 * macs, macs)


BATCH_MATMULS = {
    "BatchMatMul": lambda x, y, ax, ay: tf.raw_ops.BatchMatMul(x=x, y=y, adj_x=ax, adj_y=ay),
    "BatchMatMulV2": lambda x, y, ax, ay: tf.raw_ops.BatchMatMulV2(x=x, y=y, adj_x=ax, adj_y=ay),
    "BatchMatMulV3": lambda x, y, ax, ay: tf.raw_ops.BatchMatMulV3(x=x, y=y, Tout=tf.float32,
                                                                   adj_x=ax, adj_y=ay),
}


@audits(*BATCH_MATMULS)
@SETTINGS
@given(op_type=st.sampled_from(sorted(BATCH_MATMULS)), batch=st.lists(dims, min_size=1, max_size=2),
       broadcast=st.booleans(), m=dims, k=dims, n=dims, ax=st.booleans(), ay=st.booleans())
def test_batch_matmul(op_type, batch, broadcast, m, k, n, ax, ay):
    # V2 and V3 broadcast their batch dims: y's may be all 1s
    y_batch = [1] * len(batch) if broadcast and op_type != "BatchMatMul" else batch
    a = (*batch, k, m) if ax else (*batch, m, k)
    b = (*y_batch, n, k) if ay else (*y_batch, k, n)
    fn = lambda x, y: BATCH_MATMULS[op_type](x, y, ax, ay)  # noqa: E731
    macs = int(tf.reduce_sum(fn(ones(a), ones(b))))
    assert macs == math.prod(batch) * m * k * n
    op = traced_op(op_type, fn, a, b)
    assert full(op) == (2 * macs, macs)
    # tf.profiler's statistic takes x's last dim as the inner dim, adj_x or not
    tf_k = m if ax else k
    assert price(op, "tfprof")[0].flops == 2 * math.prod(batch) * m * n * tf_k


def test_the_einsum_dense_kernel_gradient_is_an_adj_x_batch_matmul():
    # x (2, 16, 32) through a (32, 32) kernel; its gradient x^T dy contracts
    # the 16 positions: 2 x 32 x 32 outputs x 16 = 32,768 MACs, where
    # TensorFlow's statistic reads 32 for the inner dim: 65,536.
    layer = keras.layers.EinsumDense("abc,cd->abd", output_shape=(16, 32))
    layer.build((2, 16, 32))

    def step(x):
        with tf.GradientTape() as tape:
            y = layer(x)
        return tape.gradient(y, layer.kernel)

    graph = tf.function(step).get_concrete_function(tf.TensorSpec((2, 16, 32))).graph
    (op,) = [o for o in graph.get_operations()
             if o.type == "BatchMatMulV2" and o.get_attr("adj_x")]
    assert full(op) == (2 * 32_768, 32_768)
    assert price(op, "tfprof")[0].flops == 2 * 65_536


# --------------------------------------------------------------------------
# Convolutions: n(out) x window x input channels per group


paddings = st.one_of(st.sampled_from(["SAME", "VALID"]),
                     st.tuples(st.integers(0, 2), st.integers(0, 2)))


@audits("Conv2D")
@SETTINGS
@given(n=st.integers(1, 2), h=st.integers(3, 8), w=st.integers(3, 8), groups=st.sampled_from([1, 2]),
       cin_per_group=dims, cout_per_group=dims, kh=st.integers(1, 3), kw=st.integers(1, 3),
       stride=st.integers(1, 3), dilation=st.integers(1, 2), padding=paddings,
       nchw=st.booleans())
def test_conv2d(n, h, w, groups, cin_per_group, cout_per_group, kh, kw, stride, dilation, padding, nchw):
    cin, cout = groups * cin_per_group, groups * cout_per_group
    if isinstance(padding, tuple):
        explicit = [[0, 0], [0, 0], list(padding), list(padding)]
        padding_arg = explicit if nchw else [explicit[0], explicit[2], explicit[3], explicit[1]]
    else:
        padding_arg = padding
    oh = out_size(h, kh, stride, dilation, padding)
    ow = out_size(w, kw, stride, dilation, padding)
    assume(not (stride > 1 and dilation > 1) and oh >= 1 and ow >= 1)  # as TensorFlow requires
    x = (n, cin, h, w) if nchw else (n, h, w, cin)
    fn = lambda x, k: tf.nn.conv2d(x, k, stride, padding_arg, "NCHW" if nchw else "NHWC",  # noqa: E731
                                   dilations=dilation)
    op = traced_op("Conv2D", fn, x, (kh, kw, cin_per_group, cout))
    macs = n * oh * ow * cout * kh * kw * cin_per_group
    assert full(op) == (2 * macs, macs)


@audits("Conv3D")
@SETTINGS
@given(n=st.integers(1, 2), d=st.integers(3, 5), h=st.integers(3, 5), cin=dims, cout=dims,
       k=st.integers(1, 3), stride=st.integers(1, 2), padding=st.sampled_from(["SAME", "VALID"]))
def test_conv3d(n, d, h, cin, cout, k, stride, padding):
    fn = lambda x, f: tf.nn.conv3d(x, f, [1, stride, stride, stride, 1], padding)  # noqa: E731
    op = traced_op("Conv3D", fn, (n, d, h, h, cin), (k, k, k, cin, cout))
    od, oh = out_size(d, k, stride, 1, padding), out_size(h, k, stride, 1, padding)
    macs = n * od * oh * oh * cout * k ** 3 * cin
    assert full(op) == (2 * macs, macs)


@audits("DepthwiseConv2dNative")
@SETTINGS
@given(n=st.integers(1, 2), h=st.integers(3, 8), c=dims, mult=st.integers(1, 3), k=st.integers(1, 3),
       stride=st.integers(1, 2), dilation=st.integers(1, 2), padding=st.sampled_from(["SAME", "VALID"]))
def test_depthwise_conv2d(n, h, c, mult, k, stride, dilation, padding):
    o = out_size(h, k, stride, dilation, padding)
    assume(not (stride > 1 and dilation > 1) and o >= 1)
    fn = lambda x, f: tf.raw_ops.DepthwiseConv2dNative(  # noqa: E731
        input=x, filter=f, strides=[1, stride, stride, 1], padding=padding, dilations=[1, dilation, dilation, 1])
    op = traced_op("DepthwiseConv2dNative", fn, (n, h, h, c), (k, k, c, mult))
    macs = n * o * o * c * mult * k * k  # each output meets its own channel's window
    assert full(op) == (2 * macs, macs)


@audits("Dilation2D")
@SETTINGS
@given(h=st.integers(3, 6), c=dims, k=st.integers(1, 3), stride=st.integers(1, 2),
       padding=st.sampled_from(["SAME", "VALID"]))
def test_dilation2d(h, c, k, stride, padding):
    fn = lambda x, f: tf.nn.dilation2d(x, f, [1, stride, stride, 1], padding, "NHWC",  # noqa: E731
                                       [1, 1, 1, 1])
    op = traced_op("Dilation2D", fn, (1, h, h, c), (k, k, c))
    o = out_size(h, k, stride, 1, padding)
    # a grayscale dilation is max over the window of x + kernel: an add and a
    # compare per (output, tap), 2 FLOPs, no multiply-accumulate
    assert full(op) == (2 * o * o * c * k * k, 0)


@audits("Conv2DBackpropInput", "Conv2DBackpropFilter")
def test_backward_convolutions_do_not_use_tensorflows_statistics():
    # TensorFlow divides by the stride product (an approximation): full mode
    # counts them exactly (tests/test_training.py and the JAX suite work the
    # exact numbers out by hand); tfprof keeps TensorFlow's.
    for op_type in ("Conv2DBackpropInput", "Conv2DBackpropFilter"):
        assert FULL.resolve(op_type).source == "keras_flops"
        assert TFPROF.resolve(op_type).source == "tensorflow"


# --------------------------------------------------------------------------
# Elementwise


BINARY = {"Add": 1, "AddV2": 1, "Sub": 1, "Mul": 1, "RealDiv": 1, "Maximum": 1, "Minimum": 1, "Pow": 1,
          "Equal": 1, "NotEqual": 1, "Greater": 1, "GreaterEqual": 1, "Less": 1, "LessEqual": 1,
          "SquaredDifference": 2,  # (x - y) then its square
          "RsqrtGrad": 4}  # dy * -0.5 * y^3: y*y, *y, *dy, *-0.5


@audits(*BINARY)
@SETTINGS
@given(op_type=st.sampled_from(sorted(BINARY)), shape=st.lists(dims, min_size=0, max_size=3),
       mask=st.lists(st.booleans(), min_size=3, max_size=3))
def test_binary_elementwise_broadcasts(op_type, shape, mask):
    # y broadcasts against x where the mask says (RsqrtGrad takes equal shapes)
    other = shape if op_type == "RsqrtGrad" else [1 if m else d for d, m in zip(shape, mask)]
    fn = lambda x, y: getattr(tf.raw_ops, op_type)(x=x, y=y)  # noqa: E731
    if op_type == "RsqrtGrad":
        fn = lambda x, y: tf.raw_ops.RsqrtGrad(y=x, dy=y)  # noqa: E731
    op = traced_op(op_type, fn, tuple(other), tuple(shape))
    n_out = math.prod(np.broadcast_shapes(tuple(shape), tuple(other)))
    assert full(op) == (BINARY[op_type] * n_out, 0)


UNARY = {"Reciprocal": 1, "Square": 1, "Log": 1, "Neg": 1,
         "Rsqrt": 2,  # a square root and a reciprocal
         "Softmax": 5}  # max and shift (2), exp (1), sum and divide (2), per element


@audits(*UNARY)
@SETTINGS
@given(op_type=st.sampled_from(sorted(UNARY)), shape=st.lists(dims, min_size=1, max_size=3))
def test_unary_elementwise(op_type, shape):
    key = "logits" if op_type == "Softmax" else "x"
    op = traced_op(op_type, lambda x: getattr(tf.raw_ops, op_type)(**{key: x}), tuple(shape))
    assert full(op) == (UNARY[op_type] * math.prod(shape), 0)


@audits("BiasAdd")
@SETTINGS
@given(shape=st.lists(dims, min_size=3, max_size=4), nchw=st.booleans())
def test_bias_add(shape, nchw):
    channels = shape[1] if nchw else shape[-1]
    fn = lambda x, b: tf.nn.bias_add(x, b, "NC..." if nchw else "N...C")  # noqa: E731
    op = traced_op("BiasAdd", fn, tuple(shape), (channels,))
    assert full(op) == (math.prod(shape), 0)  # one add per element


@audits("AddN")
@SETTINGS
@given(shape=st.lists(dims, min_size=1, max_size=3), k=st.integers(2, 5))
def test_add_n(shape, k):
    op = traced_op("AddN", lambda *xs: tf.add_n(xs), *[tuple(shape)] * k)
    assert full(op) == ((k - 1) * math.prod(shape), 0)  # k - 1 adds per element


@audits("L2Loss")
@SETTINGS
@given(shape=st.lists(dims, min_size=1, max_size=3))
def test_l2_loss(shape):
    # sum(x^2) / 2: n squares, n - 1 adds, and TensorFlow's kernel halves each
    # square: 3n - 1 as it computes it (2n would do)
    n = math.prod(shape)
    assert full(traced_op("L2Loss", tf.nn.l2_loss, tuple(shape))) == (3 * n - 1, 0)


@audits("AssignAdd", "AssignSub")
@pytest.mark.parametrize("op_type", ["AssignAdd", "AssignSub"])
def test_assign_add_and_sub_on_reference_variables(op_type):
    # TensorFlow 1's reference variables: one add per element of the variable
    with tf.Graph().as_default() as graph:
        v = tf.compat.v1.Variable(tf.zeros((3, 4)), use_resource=False)
        (tf.compat.v1.assign_add if op_type == "AssignAdd" else tf.compat.v1.assign_sub)(v, tf.ones((3, 4)))
    (op,) = [o for o in graph.get_operations() if o.type == op_type]
    assert full(op) == (3 * 4, 0)


# --------------------------------------------------------------------------
# Reductions


REDUCTIONS = {"Sum": tf.reduce_sum, "Mean": tf.reduce_mean, "ArgMax": tf.math.argmax,
              "ArgMin": tf.math.argmin}


@audits(*REDUCTIONS)
@SETTINGS
@given(op_type=st.sampled_from(sorted(REDUCTIONS)), shape=st.lists(dims, min_size=1, max_size=3),
       data=st.data(), keepdims=st.booleans())
def test_reductions(op_type, shape, data, keepdims):
    rank = len(shape)
    if op_type in ("ArgMax", "ArgMin"):
        axes = [data.draw(st.integers(0, rank - 1))]
        fn = lambda x: REDUCTIONS[op_type](x, axis=axes[0])  # noqa: E731
    else:
        axes = data.draw(st.lists(st.integers(0, rank - 1), min_size=1, max_size=rank, unique=True))
        fn = lambda x: REDUCTIONS[op_type](x, axis=axes, keepdims=keepdims)  # noqa: E731
    op = traced_op(op_type, fn, tuple(shape))
    n_in = math.prod(shape)
    n_out = n_in // math.prod(shape[a] for a in axes)
    # folding n_in elements into n_out: n_in - n_out adds (compares); a mean
    # also divides each output once: n_in
    expected = n_in if op_type == "Mean" else n_in - n_out
    assert full(op) == (expected, 0)


@audits("BiasAddGrad")
@SETTINGS
@given(shape=st.lists(dims, min_size=2, max_size=4), nchw=st.booleans())
def test_bias_add_grad(shape, nchw):
    channels = shape[1] if nchw else shape[-1]
    fn = lambda dy: tf.raw_ops.BiasAddGrad(out_backprop=dy, data_format="NCHW" if nchw else "NHWC")  # noqa: E731
    assume(not nchw or len(shape) == 4)  # TensorFlow's NCHW form takes 4-D gradients
    op = traced_op("BiasAddGrad", fn, tuple(shape))
    assert full(op) == (math.prod(shape) - channels, 0)  # every element summed into its channel


# --------------------------------------------------------------------------
# Pooling and its gradients


@audits("MaxPool", "AvgPool")
@SETTINGS
@given(op_type=st.sampled_from(["MaxPool", "AvgPool"]), n=st.integers(1, 2), h=st.integers(2, 7),
       c=dims, k=st.integers(1, 3), stride=st.integers(1, 3), padding=st.sampled_from(["SAME", "VALID"]),
       nchw=st.booleans())
def test_pooling(op_type, n, h, c, k, stride, padding, nchw):
    o = out_size(h, k, stride, 1, padding)
    assume(o >= 1)
    layout = "NCHW" if nchw else "NHWC"
    fn = lambda x: (tf.nn.max_pool2d if op_type == "MaxPool" else tf.nn.avg_pool2d)(  # noqa: E731
        x, k, stride, padding, layout)
    op = traced_op(op_type, fn, (n, c, h, h) if nchw else (n, h, h, c))
    # every output reads its whole window (padding included): a compare or an
    # add per tap, the last for the average's divide
    assert full(op) == (k * k * n * o * o * c, 0)


@audits("MaxPoolGrad", "AvgPoolGrad")
@SETTINGS
@given(op_type=st.sampled_from(["MaxPoolGrad", "AvgPoolGrad"]), h=st.integers(2, 7), c=dims,
       k=st.integers(1, 3), stride=st.integers(1, 3), padding=st.sampled_from(["SAME", "VALID"]),
       nchw=st.booleans())
def test_pooling_gradients(op_type, h, c, k, stride, padding, nchw):
    o = out_size(h, k, stride, 1, padding)
    assume(o >= 1)
    layout = "NCHW" if nchw else "NHWC"
    x_shape, y_shape = ((1, c, h, h), (1, c, o, o)) if nchw else ((1, h, h, c), (1, o, o, c))
    window, strides = ([1, 1, k, k], [1, 1, stride, stride]) if nchw else ([1, k, k, 1], [1, stride, stride, 1])
    if op_type == "MaxPoolGrad":
        fn = lambda x, y, dy: tf.raw_ops.MaxPoolGrad(  # noqa: E731
            orig_input=x, orig_output=y, grad=dy, ksize=window, strides=strides, padding=padding,
            data_format=layout)
        op = traced_op(op_type, fn, x_shape, y_shape, y_shape)
        # the max found again in each window, then the gradient added at it
        expected = k * k * math.prod(y_shape) + math.prod(y_shape)
    else:
        fn = lambda dy: tf.raw_ops.AvgPoolGrad(  # noqa: E731
            orig_input_shape=x_shape, grad=dy, ksize=window, strides=strides, padding=padding,
            data_format=layout)
        op = traced_op(op_type, fn, y_shape)
        # each gradient element scaled and added into its window: 2 per tap
        expected = 2 * k * k * math.prod(y_shape)
    assert full(op) == (expected, 0)


def test_every_statistic_is_audited():
    assert AUDITED == set(TF_COUNTED_OPS), sorted(set(TF_COUNTED_OPS) ^ AUDITED)
