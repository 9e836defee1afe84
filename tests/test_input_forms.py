"""Input forms people point a FLOP counter at, and what each gets."""

import keras
import pytest
import tensorflow as tf

import keras_flops
from conftest import layer_flops


def test_nested_input_structure():
    a, b, c = keras.Input((4,), name="a"), keras.Input((4,), name="b"), keras.Input((2,), name="c")
    y = keras.layers.Dense(2, name="d")(keras.layers.Concatenate(name="concatenate")([a, b, c]))
    model = keras.Model({"pair": [a, b], "c": c}, y)
    # Dense 10 -> 2: 2 x 10 x 2 + 2 = 42
    assert layer_flops(keras_flops.profile(model)) == {"concatenate": 0, "d": 42}


def test_list_of_inputs():
    a, b = keras.Input((4,)), keras.Input((4,))
    report = keras_flops.profile(keras.Model([a, b], keras.layers.Add()([a, b])), batch_size=3)
    assert report.flops == 3 * 4  # one add per element


def test_int_input_with_embedding():
    x = keras.Input((6,), dtype="int32")
    y = keras.layers.GlobalAveragePooling1D(name="gap")(keras.layers.Embedding(100, 8, name="emb")(x))
    report = keras_flops.profile(keras.Model(x, y))
    assert report.uncounted == ()
    # the lookup moves data; the average over 6 positions of 8 features: Mean, 48
    assert layer_flops(report)["gap"] == 48


def test_string_input_with_string_lookup():
    x = keras.Input((3,), dtype="string")
    ids = keras.layers.StringLookup(vocabulary=["a", "b"], name="lookup")(x)
    report = keras_flops.profile(keras.Model(x, ids))
    assert report.uncounted == ()
    assert layer_flops(report) == {"lookup": 0}  # text processing is no floating-point arithmetic


def test_text_vectorization_never_crashes():
    tv = keras.layers.TextVectorization(max_tokens=20, output_sequence_length=5)
    tv.adapt(["hello world", "foo bar baz"])
    x = keras.Input((), dtype="string")
    report = keras_flops.profile(keras.Model(x, keras.layers.Embedding(20, 4)(tv(x))), warn=False)
    # the string ops count 0; the embedding's index arithmetic after it has an
    # unknown batch dim (TextVectorization's output is (None, 5)) and is listed
    assert all("not fully defined" in u.reason for u in report.uncounted)


def test_ragged_input_is_a_clear_error():
    x = keras.Input((None,), ragged=True, name="tokens")
    model = keras.Model(x, keras.layers.Lambda(lambda t: t)(x))
    with pytest.raises(keras_flops.InputShapeError, match="'tokens' is ragged"):
        keras_flops.profile(model)


def test_sparse_input_is_counted_as_dense_and_says_so():
    x = keras.Input((5,), sparse=True, name="features")
    report = keras_flops.profile(keras.Model(x, keras.layers.Dense(2)(x)))
    assert report.flops == 2 * 5 * 2 + 2
    assert any("'features' is sparse" in note for note in report.notes)


def test_a_single_layer_with_input_shape():
    assert keras_flops.profile(keras.layers.Dense(3), input_shape=(5,)).flops == 2 * 5 * 3 + 3


@pytest.mark.parametrize("backend", ["numpy", "openvino"])
def test_unsupported_keras_backends_are_a_clear_error(monkeypatch, backend):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    monkeypatch.setattr(keras.config, "backend", lambda: backend)
    with pytest.raises(ValueError, match=(f"'tensorflow', 'jax' and 'torch' backends, but Keras runs on the "
                                          f"'{backend}' backend.*KERAS_BACKEND=tensorflow, KERAS_BACKEND=jax "
                                          "or KERAS_BACKEND=torch")):
        keras_flops.profile(model)


@pytest.mark.parametrize("thing", ["model.keras", 3, None, tf.constant(1.0), lambda x: x])
def test_not_a_model(thing):
    with pytest.raises(TypeError, match="expects a Keras model or layer"):
        keras_flops.profile(thing)


def test_a_model_that_fails_on_the_batch():
    class Picky(keras.layers.Layer):
        def call(self, x):
            if x.shape[0] is not None and x.shape[0] != 4:
                raise ValueError("Picky wants batches of 4")
            return x

    model = keras.Sequential([keras.Input((3,)), Picky()])
    with pytest.raises(keras_flops.ProfileError, match=r"inputs of shape \(1, 3\).*Picky wants batches of 4"):
        keras_flops.profile(model)
    assert keras_flops.profile(model, batch_size=4).flops == 0


def test_input_shape_naming_inputs_the_model_lacks():
    a, b = keras.Input((None,), name="a"), keras.Input((4,), name="b")
    model = keras.Model({"a": a, "b": b}, keras.layers.Concatenate()([a, b]))
    with pytest.raises(keras_flops.InputShapeError, match=r"\['c'\].*inputs are \['a', 'b'\]"):
        keras_flops.profile(model, input_shape={"c": (3,)})
