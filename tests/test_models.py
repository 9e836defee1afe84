"""Whole models: transformers, keras.applications, tf_keras, NCHW, and explanations."""

import json
import math
import os
import subprocess
import sys
import textwrap

import keras
import pytest
import tensorflow as tf

import keras_flops
from conftest import sequential


def output_elements(layer):
    return math.prod(layer.output.shape[1:])


def op_flops(report, op_type):
    return sum(op.flops for op in report.ops if op.op_type == op_type)


def test_transformer_block_macs_equal_the_analytic_count():
    T, D, H, K, F = 6, 8, 2, 4, 16  # tokens, width, heads, key dim, FFN width
    x = keras.Input((T, D))
    a = keras.layers.MultiHeadAttention(num_heads=H, key_dim=K, name="mha")(x, x)
    h = keras.layers.LayerNormalization(name="ln1")(x + a)
    f = keras.layers.Dense(F, activation="gelu", name="ffn1")(h)
    f = keras.layers.Dense(D, name="ffn2")(f)
    y = keras.layers.LayerNormalization(name="ln2")(h + f)
    report = keras_flops.profile(keras.Model(x, y))
    assert report.uncounted == ()
    projections = 4 * T * D * H * K  # query, key, value, output: T x D x (H x K) each
    attention = 2 * H * T * T * K  # scores Q K^T and the weighted sum of V
    ffn = 2 * T * D * F  # D -> F and F -> D
    assert report.macs == projections + attention + ffn == 3648
    # the two attention einsums are the MultiHeadAttention row's own MACs
    assert report.to_dataframe().loc["mha", "macs"] == attention
    # exact gelu: one erf per element (TensorFlow 2.16 calls Erf, 2.21 Erfc of -x / sqrt 2)
    assert op_flops(report, "Erf") + op_flops(report, "Erfc") == T * F


def test_resnet50_counts_its_relus(resnet50):
    report = keras_flops.profile(resnet50)
    assert report.uncounted == ()
    relus = [l for l in resnet50.layers if getattr(l, "activation", None) is keras.activations.relu]
    assert len(relus) == 49
    # Relu: max(x, 0), 1 FLOP per element of each ReLU layer's output
    assert op_flops(report, "Relu") == sum(output_elements(l) for l in relus)


def test_efficientnet_b0_counts_its_sigmoids():
    model = keras.applications.EfficientNetB0(weights=None)
    report = keras_flops.profile(model)
    assert report.uncounted == ()
    gated = [
        l for l in model.layers
        if getattr(getattr(l, "activation", None), "__name__", "") in ("silu", "swish", "sigmoid")
    ]
    # swish = x * sigmoid(x) and the squeeze-excite gates: 4 FLOPs per sigmoid element
    assert op_flops(report, "Sigmoid") == 4 * sum(output_elements(l) for l in gated)
    # Tan & Le 2019, Table 2: 0.39 B multiply-adds
    assert report.macs == pytest.approx(0.39e9, rel=0.03)


def test_mobilenet_v2_counts_relu6(mobilenet_v2):
    report = keras_flops.profile(mobilenet_v2)
    assert report.uncounted == ()
    relu6 = [l for l in mobilenet_v2.layers if type(l).__name__ == "ReLU"]
    # min(max(x, 0), 6): 2 FLOPs per element
    assert op_flops(report, "Relu6") == 2 * sum(output_elements(l) for l in relu6)


TF_KERAS_SCRIPT = textwrap.dedent(
    """
    import json, os
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tf_keras, keras_flops
    report = keras_flops.profile(tf_keras.applications.ResNet50(weights=None), warn=False)
    bn = [op for op in report.ops if op.op_type == "FusedBatchNormV3"]
    print(json.dumps({"flops": report.flops, "macs": report.macs, "fused_bn": len(bn),
                      "fused_bn_flops": sum(op.flops for op in bn),
                      "uncounted": [u.op_type for u in report.uncounted]}))
    """
)


def test_tf_keras_resnet50_counts_fused_batch_norm(resnet50):
    pytest.importorskip("tf_keras", reason="install tf-keras (pip install --no-deps tf-keras)")
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1")
    out = subprocess.run([sys.executable, "-c", TF_KERAS_SCRIPT], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    legacy = json.loads(out.stdout.strip().splitlines()[-1])
    keras3 = keras_flops.profile(resnet50)
    assert legacy["fused_bn"] == 53 and legacy["fused_bn_flops"] > 0
    assert legacy["uncounted"] == []
    assert legacy["macs"] == keras3.macs
    # FusedBatchNormV3's 2N + 6C equals the elementwise ops Keras 3 lowers to
    assert legacy["flops"] == keras3.flops


class ChannelsFirst(keras.layers.Layer):
    """NCHW ops, which TensorFlow's formulas refuse; traced only, never run."""

    def call(self, x):
        y = tf.nn.max_pool2d(x, 2, 2, "VALID", data_format="NCHW")
        kernel = tf.ones((3, 3, 2, 3))  # transposed conv: 3 -> 2 channels
        return tf.nn.conv2d_transpose(y, kernel, (1, 2, 8, 8), 2, data_format="NCHW")

    def compute_output_shape(self, shape):
        return (shape[0], 2, 8, 8)


def test_nchw_pooling_and_transposed_conv():
    report = keras_flops.profile(sequential((3, 8, 8), ChannelsFirst()))
    assert report.uncounted == ()
    # max pool 2x2 to (1, 3, 4, 4) = 48 outputs: 4 x 48 = 192
    assert op_flops(report, "MaxPool") == 192
    # transposed conv, 3x3 stride 2 "same", 4x4x3 -> 8x8x2: TensorFlow's formula,
    # 2 x 128 outputs x 54 kernel elements / (2 channels x 2 x 2) = 1728, counts
    # 48 inputs x 3x3 taps x 2 channels = 864 MACs, products with the padding
    # included. Exactly: the forward conv (8 -> 4, padding 0 before, 1 after)
    # has per dim 4 outputs x 3 taps = 12 (position, tap) pairs, one on the
    # padding (position 8): 11, so 11 x 11 = 121 pairs x 3 x 2 channels = 726 MACs.
    assert op_flops(report, "Conv2DBackpropInput") == 2 * 121 * 3 * 2 == 1452


def test_explain_the_1x1_conv():
    model = sequential((1, 1, 1), keras.layers.Conv2D(1, 1, use_bias=False, name="conv"))
    (line,) = keras_flops.profile(model).explain("conv").splitlines()
    assert line.startswith("Conv2D ")
    assert line.endswith(
        "convolution: 2 x 1 output x (1x1 kernel x 1 in-channel) = 2 FLOPs = 1 MAC [tensorflow]"
    )


def test_explain_shows_loop_runs_and_our_formulas():
    report = keras_flops.profile(sequential((20, 3), keras.layers.LSTM(4, name="lstm")))
    text = report.explain("lstm", op_type="MatMul")
    assert "2 x 3 inner dim x 16 outputs, x 20 runs = 1,920 FLOPs = 960 MACs" in text
    sigmoid = report.explain("lstm", op_type="Sigmoid").splitlines()[0]
    assert "4 elements x 4 (1 / (1 + exp(-x))), x 20 runs = 320 FLOPs [keras_flops]" in sigmoid


def test_explain_unknown_layer():
    report = keras_flops.profile(sequential((3,), keras.layers.Dense(2)))
    with pytest.raises(KeyError, match="no ops"):
        report.explain("nope")
