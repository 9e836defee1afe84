"""Profiling never changes the model: weights, predictions, every layer's call,
trainable flags and a save/load round trip stay as they were, also when
profiling fails half way; and training with FlopsCallback trains the same."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_flops
from keras_flops import backends


@keras.saving.register_keras_serializable(package="keras_flops_tests")
class Subclassed(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.d1 = keras.layers.Dense(4)
        self.d2 = keras.layers.Dense(2)

    def call(self, x):
        return self.d2(tf.nn.relu(self.d1(x)))


def functional():
    x = keras.Input((6,))
    return keras.Model(x, keras.layers.Dense(2)(keras.layers.Dense(4, activation="relu")(x)))


def sequential():
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(4), keras.layers.Dropout(0.5),
                             keras.layers.BatchNormalization(), keras.layers.Dense(2)])


def subclassed():
    model = Subclassed()
    model(np.zeros((1, 6), "float32"))
    return model


def nested_and_shared():
    inner = keras.Sequential([keras.Input((6,)), keras.layers.Dense(6)], name="inner")
    shared = keras.layers.Dense(6, name="shared")
    x = keras.Input((6,))
    return keras.Model(x, keras.layers.Dense(2)(shared(inner(shared(x)))))


def lstm():
    return keras.Sequential([keras.Input((3, 6)), keras.layers.LSTM(4), keras.layers.Dense(2)])


def attention():
    x = keras.Input((3, 6))
    y = keras.layers.MultiHeadAttention(2, 3)(x, x)
    return keras.Model(x, keras.layers.Dense(2)(keras.layers.Flatten()(y)))


KINDS = [functional, sequential, subclassed, nested_and_shared, lstm, attention]


def all_layers(model):
    return [model] + list(model._flatten_layers(include_self=False, recursive=True))


def snapshot(model, x):
    return {
        "weights": [w.copy() for w in model.get_weights()],
        "predictions": model.predict(x, verbose=0),
        "own attributes": [sorted(vars(layer)) for layer in all_layers(model)],
        "calls": [layer.call.__func__ for layer in all_layers(model)],
        "trainable": [layer.trainable for layer in all_layers(model)],
    }


def assert_same(before, after):
    for a, b in zip(before["weights"], after["weights"]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(before["predictions"], after["predictions"])
    assert before["own attributes"] == after["own attributes"]
    assert before["calls"] == after["calls"]
    assert before["trainable"] == after["trainable"]


def sample(model):
    shape = (2,) + tuple(model.inputs[0].shape[1:]) if getattr(model, "inputs", None) else (2, 6)
    return np.random.default_rng(0).random(shape, dtype="float32")


def fails(*args, **kwargs):
    raise RuntimeError("half way")


OPERATIONS = {
    "profile": lambda m: keras_flops.profile(m, batch_size=2, warn=False),
    "training profile": lambda m: keras_flops.profile(m, batch_size=2, training=True, warn=False),
    "summary": lambda m: keras_flops.summary(m, print_fn=lambda *a, **k: None),
    "attach and detach": lambda m: (keras_flops.attach(m), m.summary(print_fn=lambda *a, **k: None),
                                    keras_flops.detach(m)),
}


@pytest.mark.parametrize("build", KINDS, ids=[k.__name__ for k in KINDS])
@pytest.mark.parametrize("operation", OPERATIONS)
def test_model_is_untouched(build, operation, tmp_path):
    model = build()
    model.compile(optimizer="sgd", loss="mse")
    x = sample(model)
    before = snapshot(model, x)
    config = model.to_json()
    OPERATIONS[operation](model)
    assert_same(before, snapshot(model, x))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.to_json() == config
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), before["predictions"])


@pytest.mark.parametrize("build", KINDS, ids=[k.__name__ for k in KINDS])
def test_model_is_untouched_when_profiling_fails_half_way(build, monkeypatch):
    model = build()
    x = sample(model)
    before = snapshot(model, x)
    monkeypatch.setattr(type(backends.of()), "count", staticmethod(fails))  # after the trace, before the report
    with pytest.raises(RuntimeError, match="half way"):
        keras_flops.profile(model, batch_size=2)
    assert_same(before, snapshot(model, x))


@pytest.mark.parametrize("build", [functional, sequential, lstm], ids=["functional", "sequential", "lstm"])
def test_training_with_the_callback_trains_the_same(build):
    def trained(callbacks):
        keras.utils.set_random_seed(1)
        model = build()
        model.compile(optimizer="sgd", loss="mse")
        x = sample(model).repeat(16, axis=0)
        model.fit(x, np.ones((len(x), 2)), batch_size=8, epochs=2, shuffle=False, verbose=0,
                  callbacks=callbacks)
        return model.get_weights()

    for a, b in zip(trained([]), trained([keras_flops.FlopsCallback(verbose=0, attach=False)])):
        np.testing.assert_array_equal(a, b)
