"""Agreement with tf.compat.v1.profiler, and published multiply-adds of known networks."""

import keras
import pytest

import keras_flops
from conftest import sequential, tfprof
from keras_flops import backends
from keras_flops.core import inputs


def tensorflow_counted(report):
    """Total and per-op-type FLOPs of the ops counted by TensorFlow's own formulas."""
    by_type = {}
    for op in report.ops:
        if op.source == "tensorflow" and op.flops:
            by_type[op.op_type] = by_type.get(op.op_type, 0) + op.flops
    return sum(by_type.values()), by_type


def graph_of(model, batch_size=1):
    tf_backend = backends.of(model)
    specs = inputs.resolve(model, batch_size, None, tf_backend).specs
    return tf_backend.trace(model, specs).function.graph


def small_cnn():
    return sequential(
        (16, 16, 3),
        keras.layers.Conv2D(8, 3, padding="same"),
        keras.layers.BatchNormalization(),
        keras.layers.DepthwiseConv2D(3),
        keras.layers.AveragePooling2D(2),
        keras.layers.Conv2D(4, 1),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10, activation="softmax"),
    )


def mlp():
    x = keras.Input((6, 12))
    h = keras.layers.LayerNormalization()(x)
    h = keras.layers.Dense(24)(h)
    y = keras.layers.Dense(12)(h) + x
    return keras.Model(x, y)


@pytest.mark.parametrize("build", [small_cnn, mlp], ids=["cnn", "mlp"])
@pytest.mark.parametrize("batch_size", [1, 3])
def test_equals_tf_profiler(build, batch_size):
    model = build()
    report = keras_flops.profile(model, batch_size=batch_size, warn=False)
    expected_total, expected_by_type = tfprof(graph_of(model, batch_size))
    assert tensorflow_counted(report) == (expected_total, expected_by_type)
    assert expected_total > 0
    tfprof_mode = keras_flops.profile(model, batch_size=batch_size, counting="tfprof", warn=False)
    assert tfprof_mode.flops == expected_total


def test_resnet50_equals_tf_profiler_and_published_macs(resnet50):
    report = keras_flops.profile(resnet50, warn=False)
    total, by_type = tfprof(graph_of(resnet50))
    assert tensorflow_counted(report) == (total, by_type)
    assert keras_flops.profile(resnet50, counting="tfprof", warn=False).flops == total
    # He et al. 2016, Table 1: 3.8 x 10^9 multiply-adds for ResNet-50 at 224.
    assert report.macs == pytest.approx(3.8e9, rel=0.03)
    # MACs are Conv2D and MatMul FLOPs / 2.
    assert report.macs * 2 == by_type["Conv2D"] + by_type["MatMul"]


def test_mobilenet_v2_published_macs(mobilenet_v2):
    report = keras_flops.profile(mobilenet_v2, warn=False)
    total, by_type = tfprof(graph_of(mobilenet_v2))
    assert tensorflow_counted(report) == (total, by_type)
    # Sandler et al. 2018, Table 4: 300 M multiply-adds at 224, width 1.0.
    assert report.macs == pytest.approx(300e6, rel=0.03)
