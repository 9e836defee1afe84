"""Every op goes to the innermost layer whose call created it; rows sum to the total."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_flops
from conftest import layer_flops, sequential

# Dense(5 -> 3) at batch 1: MatMul 2 x 5 x 3 = 30, BiasAdd 3  -> 33
# Dense(3 -> 2) at batch 1: MatMul 2 x 3 x 2 = 12, BiasAdd 2  -> 14
D1, D2 = 33, 14


def assert_rows_sum_to_total(report):
    df = report.to_dataframe()
    assert df["flops"].sum() == report.flops
    assert df["macs"].sum() == report.macs


def test_functional():
    x = keras.Input((5,))
    y = keras.layers.Dense(2, name="d2")(keras.layers.Dense(3, name="d1")(x))
    report = keras_flops.profile(keras.Model(x, y))
    assert layer_flops(report) == {"d1": D1, "d2": D2}
    assert report.flops == D1 + D2
    assert report.macs == (30 + 12) // 2


def test_sequential():
    model = sequential((5,), keras.layers.Dense(3, name="d1"), keras.layers.Dense(2, name="d2"))
    report = keras_flops.profile(model)
    assert layer_flops(report) == {"d1": D1, "d2": D2}
    df = report.to_dataframe()
    assert df.loc["d1", "class"] == "Dense"
    assert df.loc["d1", "params"] == 5 * 3 + 3
    assert df.loc["d2", "output_shape"] == (1, 2)
    assert df.loc["d1", "share"] == pytest.approx(D1 / (D1 + D2))


def test_names_that_collide_with_keras_scope_suffixes():
    # Keras 3 puts the layer "dense" in scope "dense_1" when "dense_1" exists,
    # so scope names would mix these two up; the recorded calls do not.
    x = keras.Input((5,))
    h = keras.layers.Dense(3, name="dense_1")(x)
    y = keras.layers.Dense(2, name="dense")(h)
    report = keras_flops.profile(keras.Model(x, y))
    assert layer_flops(report) == {"dense_1": D1, "dense": D2}


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__(name="sub")
        self.d1 = keras.layers.Dense(3, name="d1")
        self.blocks = [keras.layers.Dense(2, name="d2")]

    def call(self, x):
        return self.blocks[0](self.d1(x) * 2.0)  # the Mul belongs to no sublayer


def test_subclassed_model_with_its_own_ops():
    model = Subclassed()
    model(np.zeros((1, 5), "float32"))
    report = keras_flops.profile(model)
    # The model's own Mul: one per element of the (1, 3) activation = 3.
    assert layer_flops(report) == {"d1": D1, "d2": D2, "(model)": 3}
    assert_rows_sum_to_total(report)


def test_nested_models_give_paths():
    # inner: Dense(5 -> 4) at batch 1 = 2 x 5 x 4 + 4 = 44
    inner = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, name="fc")], name="backbone")
    x = keras.Input((5,))
    h = inner(x)
    # outer: Dense(4 -> 2) = 2 x 4 x 2 + 2 = 18
    y = keras.layers.Dense(2, name="fc")(h)
    report = keras_flops.profile(keras.Model(x, y))
    flops = layer_flops(report)
    assert flops == {"backbone": 0, "backbone/fc": 44, "fc": 18}
    assert report.to_dataframe(depth=1)["flops"].to_dict() == {"backbone": 44, "fc": 18}
    assert_rows_sum_to_total(report)


def test_shared_layer_sums_its_calls():
    # Dense(4 -> 4) at batch 2, called twice: 2 x (2 x 4 x 8 + 8) = 2 x 72 = 144
    shared = keras.layers.Dense(4, name="fc")
    x = keras.Input((4,))
    y = shared(shared(x))
    report = keras_flops.profile(keras.Model(x, y), batch_size=2)
    df = report.to_dataframe()
    assert df.loc["fc", "flops"] == 144
    assert df.loc["fc", "calls"] == 2
    assert report.flops == 144


def test_keras_ops_in_a_functional_model_get_rows():
    # x + x on (1, 5): AddV2, 5 FLOPs, in the row of the Keras op "add".
    x = keras.Input((5,))
    y = keras.layers.Add(name="sum")([x, x]) + x
    report = keras_flops.profile(keras.Model(x, y))
    flops = layer_flops(report)
    assert flops["sum"] == 5
    assert sum(flops.values()) == report.flops == 10


def test_layer_with_sublayers_keeps_inner_ops_inner():
    # MultiHeadAttention's projections are EinsumDense sublayers: "mha/query" etc.
    x = keras.Input((4, 8))
    y = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4, name="mha")(x, x)
    report = keras_flops.profile(keras.Model(x, y), warn=False)
    df = report.to_dataframe()
    # query projection: (1, 4, 8) x (8, 2, 4): 2 x 8 x (4 x 2 x 4) = 512 MatMul-like FLOPs,
    # plus its bias (4 x 2 x 4 = 32).
    assert df.loc["mha/query", "flops"] == 512 + 32
    assert df.loc["mha/query", "macs"] == 256
    assert_rows_sum_to_total(report)


def test_model_is_restored_after_profiling():
    model = sequential((5,), keras.layers.Dense(3), keras.layers.Dense(2))
    x = np.random.default_rng(0).normal(size=(4, 5)).astype("float32")
    before = model.predict(x, verbose=0)
    weights = [w.copy() for w in model.get_weights()]
    keras_flops.profile(model)
    for layer in [model, *model.layers]:
        assert "call" not in vars(layer)
    np.testing.assert_array_equal(model.predict(x, verbose=0), before)
    for a, b in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(a, b)


class Fails(keras.layers.Layer):
    armed = False

    def call(self, x):
        if self.armed:
            raise RuntimeError("boom")
        return x


def test_model_is_restored_when_tracing_raises():
    inner, fails = keras.layers.Dense(3), Fails()
    model = keras.Sequential([inner, fails])
    model.build((None, 5))
    fails.armed = True
    with pytest.raises(keras_flops.ProfileError, match="boom"):
        keras_flops.profile(model, input_shape=(5,))
    for layer in [model, *model.layers]:
        assert "call" not in vars(layer)
    assert inner(tf.zeros((1, 5))).shape == (1, 3)


def test_profile_by_op():
    model = sequential((5,), keras.layers.Dense(3), keras.layers.Dense(2))
    df = keras_flops.profile(model).to_dataframe(by="op")
    assert df.loc["MatMul", "count"] == 2
    assert df.loc["MatMul", "flops"] == 30 + 12
    assert df.loc["MatMul", "macs"] == 21
    assert df.loc["BiasAdd", "flops"] == 3 + 2


def test_a_custom_gradients_ops_go_to_the_layer_they_differentiate():
    """TensorFlow's SiLU has a custom gradient, whose ops carry no forward
    op's name: they go to the layer of the ops they read (the Dense whose
    activation it is), not outside every layer. d1's backward, by hand, for a
    batch of B = 2: the kernel's gradient 2 * B * 4 * 3 = 48 FLOPs (MACs
    B * 4 * 3 = 24), the bias's (B - 1) * 3 = 3 adds, and the SiLU's on B * 3
    = 6 values: a sigmoid (4 FLOPs each, 24) and six elementwise ops
    (dy * s * (1 + x * (1 - s))), 36."""
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, activation="silu", name="d1"), keras.layers.Dense(1, name="d2")]
    )
    model.compile(loss="mse")
    report = keras_flops.profile(model, batch_size=2, training=True, warn=False)
    table = report.to_dataframe()
    assert "(model)" not in table.index
    assert table.loc["d1", "backward_flops"] == 48 + 3 + 24 + 36 == 111
    assert table.loc["d1", "backward_macs"] == 24
