"""Input shapes, clear errors, uncounted ops, and user formulas."""

import math
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_flops
from conftest import layer_flops, sequential
from surfaces import test_a_user_formula_for_a_matmul_has_its_macs  # noqa: F401  (on TensorFlow: MatMul)


def conv_model(shape):
    return sequential(shape, keras.layers.Conv2D(2, 3, use_bias=False))


# Conv2D 3x3, 3 -> 2 channels, valid, on 8x8: 6 x 6 x 2 = 72 outputs x 27 products.
CONV_8x8 = 2 * 72 * 27


def test_unknown_spatial_dims_need_input_shape():
    model = conv_model((None, None, 3))
    with pytest.raises(keras_flops.InputShapeError) as err:
        keras_flops.profile(model)
    message = str(err.value)
    assert "dim 1 is unknown" in message
    assert "input_shape=" in message
    assert "(None, None, None, 3)" in message


def test_input_shape_fills_unknown_dims():
    report = keras_flops.profile(conv_model((None, None, 3)), input_shape=(8, 8, 3))
    assert report.flops == CONV_8x8
    assert report.input_shapes[0][1] == (1, 8, 8, 3)


def test_input_shape_that_disagrees_is_an_error():
    with pytest.raises(keras_flops.InputShapeError, match="disagrees"):
        keras_flops.profile(conv_model((8, 8, 3)), input_shape=(9, 8, 3))
    with pytest.raises(keras_flops.InputShapeError, match="without the batch dim"):
        keras_flops.profile(conv_model((8, 8, 3)), input_shape=(1, 8, 8, 3))


def test_unbuilt_sequential_needs_input_shape():
    model = keras.Sequential([keras.layers.Dense(3)])
    with pytest.raises(keras_flops.InputShapeError, match="input_shape="):
        keras_flops.profile(model)


def test_unbuilt_sequential_with_input_shape():
    model = keras.Sequential([keras.layers.Dense(3, name="d")])
    # Dense(5 -> 3), batch 2: 2 x 5 x 6 + 6 = 66
    report = keras_flops.profile(model, batch_size=2, input_shape=(5,))
    assert layer_flops(report) == {"d": 66}


def test_built_subclassed_model_uses_its_build_shape():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = keras.layers.Dense(3, name="d")

        def call(self, x):
            return self.d(x)

    model = Net()
    model(tf.zeros((4, 5)))
    # built on (4, 5): one sample is (5,); batch 1: 2 x 5 x 3 + 3 = 33
    assert keras_flops.profile(model).flops == 33


def test_several_inputs_as_a_dict():
    a, b = keras.Input((4,), name="a"), keras.Input((6,), name="b")
    y = keras.layers.Concatenate()([a, b])
    y = keras.layers.Dense(2, use_bias=False, name="d")(y)
    model = keras.Model({"a": a, "b": b}, y)
    # Dense(10 -> 2), batch 3: 2 x 10 x 6 = 120
    assert keras_flops.profile(model, batch_size=3).flops == 120


def test_dict_input_shape_for_unknown_dims():
    a, b = keras.Input((None, 4), name="a"), keras.Input((6,), name="b")
    ya = keras.layers.Dense(2, use_bias=False, name="da")(a)
    yb = keras.layers.Dense(2, use_bias=False, name="db")(b)
    model = keras.Model({"a": a, "b": b}, [ya, yb])
    report = keras_flops.profile(model, input_shape={"a": (5, 4)})
    # da: 2 x 4 x (5 x 2) = 80; db: 2 x 6 x 2 = 24
    assert layer_flops(report) == {"da": 80, "db": 24}


def test_fixed_batch_size_must_match():
    x = keras.Input((5,), batch_size=4)
    model = keras.Model(x, keras.layers.Dense(3)(x))
    with pytest.raises(keras_flops.InputShapeError, match="batch_size=4"):
        keras_flops.profile(model)
    assert keras_flops.profile(model, batch_size=4).flops == 4 * 33


@pytest.mark.parametrize("batch", [np.int64(3), np.int32(3), np.uint8(3)])
def test_batch_size_takes_numpy_integers(batch):
    report = keras_flops.profile(conv_model((8, 8, 3)), batch_size=batch)
    assert report.flops == 3 * CONV_8x8 == 3 * 2 * 72 * 27
    assert type(report.batch_size) is int and report.batch_size == 3


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True, np.bool_(True), np.float64(2.0)])
def test_bad_batch_size(bad):
    with pytest.raises(ValueError, match="batch_size"):
        keras_flops.profile(conv_model((8, 8, 3)), batch_size=bad)


def test_not_a_keras_model():
    with pytest.raises(TypeError, match="expects a Keras model"):
        keras_flops.profile(lambda x: x)


class Digamma(keras.layers.Layer):
    """An op no formula covers: tf.math.digamma."""

    def call(self, x):
        return tf.math.digamma(x)


def digamma_model():
    return sequential((4,), Digamma(name="dg"), keras.layers.Dense(2, name="d"))


def test_uncounted_ops_are_listed_and_warned_about():
    with pytest.warns(keras_flops.UncountedOpsWarning, match=r"Digamma x1") as record:
        report = keras_flops.profile(digamma_model())
    assert len(record) == 1
    (op,) = report.uncounted
    assert (op.op_type, op.layer) == ("Digamma", "dg")
    assert "no formula" in op.reason
    # Only the Dense is counted: 2 x 4 x 2 + 2 = 18
    assert report.flops == 18
    assert "Digamma" in str(report)


def test_no_warning_when_asked():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        keras_flops.profile(digamma_model(), warn=False)


def test_registered_formula_is_used():
    @keras_flops.register_flops("Digamma")
    def digamma_flops(op):
        """Say 10 FLOPs per element."""
        return 10 * math.prod(op.outputs[0])

    try:
        report = keras_flops.profile(digamma_model())
        assert report.uncounted == ()
        assert layer_flops(report) == {"dg": 10 * 4, "d": 18}
        (dg,) = [op for op in report.ops if op.op_type == "Digamma"]
        assert (dg.source, dg.macs) == ("user", 0)
    finally:
        keras_flops.unregister_flops("Digamma")


def test_per_call_formula_wins_and_touches_no_global_state():
    report = keras_flops.profile(digamma_model(), formulas={"Digamma": lambda op: (8, 4)})
    assert layer_flops(report)["dg"] == 8
    assert report.macs == 4 + 2 * 4 * 2 // 2
    assert keras_flops.profile(digamma_model(), warn=False).uncounted != ()


def test_a_user_formula_overrides_tensorflow():
    # MatMul with a formula of our own: 1 FLOP per output element.
    report = keras_flops.profile(
        sequential((5,), keras.layers.Dense(3, use_bias=False)),
        formulas={"MatMul": lambda op: math.prod(op.outputs[0])},
    )
    assert report.flops == 3
    assert report.macs == 1  # MatMul is a MAC op: FLOPs // 2


def test_registering_a_second_formula_is_an_error():
    @keras_flops.register_flops("Digamma")
    def first(op):
        return 1

    try:
        with pytest.raises(ValueError, match="unregister_flops"):

            @keras_flops.register_flops("Digamma")
            def second(op):
                return 2

        # the same function again (a notebook cell run twice) is fine
        keras_flops.register_flops("Digamma")(first)
    finally:
        keras_flops.unregister_flops("Digamma")


def test_a_failing_formula_is_reported_not_raised():
    def broken(op):
        raise KeyError("nope")

    with pytest.warns(keras_flops.UncountedOpsWarning):
        report = keras_flops.profile(digamma_model(), formulas={"Digamma": broken})
    assert "KeyError" in report.uncounted[0].reason


def test_a_keras_distribution_on_tensorflow_is_a_clear_error():
    # Keras's distribution API is JAX's: on TensorFlow one can be set, and
    # nothing would partition the program it describes
    distribution = keras.distribution.DataParallel(devices=keras.distribution.list_devices())
    keras.distribution.set_distribution(distribution)
    try:
        with pytest.raises(ValueError) as err:
            keras_flops.profile(conv_model((8, 8, 3)))
    finally:
        keras.distribution.set_distribution(None)
    message = str(err.value)
    assert "keras.distribution (DataParallel) is set, but Keras runs on TensorFlow" in message
    assert "KERAS_BACKEND=jax" in message and "set_distribution(None)" in message
