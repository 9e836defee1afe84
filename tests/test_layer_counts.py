"""Exact FLOPs and MACs of single layers, worked out by hand.

Convention: a multiply-accumulate (MAC) is a multiply and an add, 2 FLOPs.
A layer's MACs come from its Conv/MatMul ops; bias adds, pooling and
normalization add FLOPs only.
"""

import keras
import pytest

import keras_flops
from conftest import sequential


def counts(model, batch_size=1):
    report = keras_flops.profile(model, batch_size=batch_size, warn=False)
    assert report.uncounted == ()
    return report.flops, report.macs


def test_1x1_conv2d_is_2_flops_and_1_mac():
    # One input channel, one filter, no bias, a 1x1x1 input: one product,
    # added to a sum that starts at 0. tf.profiler says 2 FLOPs: 1 multiply + 1 add.
    model = sequential((1, 1, 1), keras.layers.Conv2D(1, 1, use_bias=False))
    assert counts(model) == (2, 1)


def test_dense():
    # batch 2, 5 -> 3: MatMul 2 x 5 (k) x (2 x 3 outputs) = 60 FLOPs, 30 MACs;
    # BiasAdd 1 per output = 6.
    model = sequential((5,), keras.layers.Dense(3))
    assert counts(model, batch_size=2) == (60 + 6, 30)


def test_dense_on_sequence():
    # (4, 5) -> (4, 3): MatMul 2 x 5 x (4 x 3) = 120; BiasAdd 12.
    model = sequential((4, 5), keras.layers.Dense(3))
    assert counts(model) == (120 + 12, 60)


def test_conv1d():
    # length 10, 2 channels, 4 filters of width 3, valid: 8 x 4 = 32 outputs,
    # each 3 x 2 products: 2 x 32 x 6 = 384 FLOPs; bias 32.
    model = sequential((10, 2), keras.layers.Conv1D(4, 3))
    assert counts(model) == (384 + 32, 192)


def test_conv2d():
    # 6x6x3 -> 4x4x2 (3x3 kernel, valid): 32 outputs x (3 x 3 x 3) products:
    # 2 x 32 x 27 = 1728 FLOPs; bias 32.
    model = sequential((6, 6, 3), keras.layers.Conv2D(2, 3))
    assert counts(model) == (1728 + 32, 864)


def test_conv2d_strided_same_padding():
    # 8x8x3 -> 4x4x5 (stride 2, same): 80 outputs x (3 x 3 x 3): 2 x 80 x 27 = 4320.
    model = sequential((8, 8, 3), keras.layers.Conv2D(5, 3, strides=2, padding="same", use_bias=False))
    assert counts(model) == (4320, 2160)


def test_conv3d():
    # 5x5x5x1 -> 3x3x3x2: 54 outputs x 27 products: 2 x 54 x 27 = 2916; bias 54.
    model = sequential((5, 5, 5, 1), keras.layers.Conv3D(2, 3))
    assert counts(model) == (2916 + 54, 1458)


def test_depthwise_conv2d():
    # 6x6x2 -> 4x4x2: 32 outputs, each 3 x 3 products of one channel:
    # 2 x 32 x 9 = 576; bias 32.
    model = sequential((6, 6, 2), keras.layers.DepthwiseConv2D(3))
    assert counts(model) == (576 + 32, 288)


def test_separable_conv2d():
    # depthwise 6x6x2 -> 4x4x2: 2 x 32 x 9 = 576;
    # pointwise 1x1, 2 -> 4 channels: 64 outputs x 2 products: 2 x 64 x 2 = 256;
    # bias 64. MACs (576 + 256) / 2 = 416.
    model = sequential((6, 6, 2), keras.layers.SeparableConv2D(4, 3))
    assert counts(model) == (576 + 256 + 64, 416)


@pytest.mark.parametrize(
    "layer, shape, expected",
    [
        # out 2x2x3 = 12 elements, each a max/mean over a 2x2 window: 12 x 4
        (keras.layers.MaxPooling2D(2), (4, 4, 3), 48),
        (keras.layers.AveragePooling2D(2), (4, 4, 3), 48),
        # out 3x3 = 9 elements, window 2: 9 x 2
        (keras.layers.MaxPooling1D(2), (6, 3), 18),
        # Mean over 4x4 per channel: one op per input element, 4 x 4 x 3
        (keras.layers.GlobalAveragePooling2D(), (4, 4, 3), 48),
    ],
)
def test_pooling(layer, shape, expected):
    assert counts(sequential(shape, layer)) == (expected, 0)


def test_batch_normalization_inference():
    # y = x * (gamma * rsqrt(var + eps)) + (beta - mean * gamma * rsqrt(var + eps))
    # Per channel (C = 3): var + eps 3, rsqrt 2 x 3, x gamma 3, mean x 3, beta - 3 = 18.
    # Per element (N = 4 x 4 x 3 = 48): x * scale 48, + shift 48 = 96.
    model = sequential((4, 4, 3), keras.layers.BatchNormalization())
    assert counts(model) == (96 + 18, 0)


def test_counts_scale_linearly_with_batch_size():
    # Conv and Dense work is all per sample: FLOPs(b) = b x FLOPs(1).
    model = sequential(
        (8, 8, 3),
        keras.layers.Conv2D(4, 3),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(10),
    )
    one = counts(model, 1)
    for b in (2, 3, 7):
        assert counts(model, b) == (b * one[0], b * one[1])


def test_batch_norm_per_channel_work_does_not_scale():
    # 18 FLOPs per channel vector once per batch, 96 per sample (see above).
    model = sequential((4, 4, 3), keras.layers.BatchNormalization())
    for b in (1, 2, 5):
        assert counts(model, b)[0] == 18 + 96 * b
