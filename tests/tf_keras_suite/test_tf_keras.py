"""keras_flops on tf_keras (Keras 2): profile, summary, training steps and the callback."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import keras_flops

assert tf.keras is tf_keras or tf.keras.__name__.startswith("tf_keras"), "TF_USE_LEGACY_KERAS=1 expected"


def dense_model():
    model = tf_keras.Sequential([
        tf_keras.layers.Dense(3, input_shape=(5,), name="d1"),
        tf_keras.layers.Dense(2, name="d2"),
    ])
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_profile_per_layer():
    report = keras_flops.profile(dense_model(), batch_size=2)
    # d1: 2 x 5 x 6 + 6 = 66; d2: 2 x 3 x 4 + 4 = 28
    assert report.to_dataframe()["flops"].to_dict() == {"d1": 66, "d2": 28}
    assert report.macs == 30 + 12


def test_fused_batch_norm_equals_keras3_lowering():
    model = tf_keras.Sequential([tf_keras.layers.BatchNormalization(input_shape=(4, 4, 3))])
    report = keras_flops.profile(model)
    assert [op.op_type for op in report.ops] == ["FusedBatchNormV3"]
    assert report.flops == 2 * 48 + 6 * 3  # as Keras 3's elementwise form


def test_training_step_per_layer():
    df = keras_flops.profile(dense_model(), batch_size=4, training=True).to_dataframe()
    # the same hand counts as Keras 3 (tests/test_training.py)
    assert df.loc["d1", "backward_flops"] == 120 + 9
    assert df.loc["d2", "backward_flops"] == 48 + 48 + 6


def test_summary_has_flops_columns():
    lines = []
    keras_flops.summary(dense_model(), batch_size=2, print_fn=lines.append)
    text = "\n".join(lines)
    header = next(line for line in lines if "Layer (type)" in line)
    assert header.rstrip().endswith("FLOPs        MACs")
    d1 = next(line for line in lines if line.strip().startswith("d1 (Dense)"))
    assert d1.split()[-2:] == ["66", "30"]
    assert "Total FLOPs: 94 (42 MACs) for a batch of 2" in text


def test_callback_in_fit():
    model = dense_model()
    x = np.random.default_rng(0).random((32, 5), dtype="float32")
    cb = keras_flops.FlopsCallback(peak_tflops=1.0, verbose=0)
    history = model.fit(x, np.zeros((32, 2)), batch_size=8, epochs=2, callbacks=[cb], verbose=0).history
    assert {"gflops", "gmacs", "tflops_per_sec", "mfu"} <= set(history)
    assert history["gflops"][0] * 1e9 == (66 + 28) / 2  # per sample
    assert cb.report.batch_size == 8


def nested_model():
    inner = tf_keras.Sequential([tf_keras.layers.Dense(4, input_shape=(6,), name="fc")], name="inner")
    x = tf_keras.Input((6,), name="x")
    y = tf_keras.layers.Dense(2, name="head")(tf_keras.layers.Concatenate(name="cat")([inner(x), x]))
    return tf_keras.Model(x, y, name="outer")


@pytest.mark.parametrize("build, options", [
    (dense_model, {}),
    (dense_model, {"show_trainable": True, "line_length": 80}),
    (nested_model, {"expand_nested": True}),  # "Connected to", nested frames
])
def test_summary_matches_tf_keras_column_for_column(build, options):
    theirs, ours = [], []
    model = build()
    model.summary(print_fn=theirs.append, **options)
    keras_flops.summary(model, print_fn=ours.append, **options)
    footer = [line for line in ours if line.startswith("Total FLOPs: ")]
    assert len(footer) == 1
    ours.remove(footer[0])
    assert len(ours) == len(theirs)
    for keras_line, our_line in zip(theirs, ours):
        # tf_keras's columns, then FLOPs and MACs on the right
        assert our_line.startswith(keras_line.rstrip("|")), (keras_line, our_line)
