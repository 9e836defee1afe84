"""Counts on the JAX backend: worked by hand, and equal to the TensorFlow
backend's MACs per layer (tf_counts, from a TensorFlow process)."""

import warnings

import jax
import keras
import numpy as np
import pytest
from cases import APPLICATIONS, RNNS, build, counts, strided_model

import keras_flops
from keras_flops import backends


def test_keras_runs_on_jax():
    assert keras.config.backend() == "jax" and backends.of().name == "jax"


def small_model():
    model = keras.Sequential([
        keras.Input((8, 8, 3)),
        keras.layers.Conv2D(4, 3, strides=2, name="c"),
        keras.layers.BatchNormalization(name="bn"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(5, activation="softmax", name="d"),
    ])
    model.compile(loss="categorical_crossentropy")
    return model


def test_small_model_by_hand():
    report = keras_flops.profile(small_model())
    rows = report.to_dataframe()
    # c: 3x3 stride 2 on 8x8 -> 3x3 positions x 4 filters = 36 outputs, each
    # 3x3 window x 3 in-channels = 27 products; bias adds 36.
    assert rows.loc["c", "macs"] == 36 * 27 == 972
    assert rows.loc["c", "flops"] == 2 * 972 + 36
    # bn (inference), as JAX runs it: per channel (C = 4) var + eps, rsqrt (2),
    # x gamma, -mean, x scale, + beta = 7C; per element x * scale + shift = 2N.
    assert rows.loc["bn", "flops"] == 2 * 36 + 7 * 4 == 100
    # d: 36 x 5 products, 5 bias adds; softmax over 5: max (4) and max with
    # -inf (1), subtract (5), exp (5), sum (4), divide (5) = 24.
    assert rows.loc["d", "macs"] == 36 * 5
    assert rows.loc["d", "flops"] == 2 * 180 + 5 + (4 + 1 + 5 + 5 + 4 + 5)
    assert report.macs == 972 + 180
    assert report.uncounted == ()


def test_small_training_step_by_hand():
    report = keras_flops.profile(small_model(), training=True)
    rows = report.to_dataframe()
    # c's kernel gradient: each of its 36 output gradients meets its 27 inputs;
    # no input gradient (the input is data).
    assert rows.loc["c", "backward_macs"] == 36 * 27
    # d: kernel gradient (36 x 5) and input gradient (36 x 5).
    assert rows.loc["d", "backward_macs"] == 2 * 36 * 5
    assert report.backward_macs == 972 + 360


@pytest.mark.parametrize("kernel, padding, forward, input_grad", [
    # 1x1 stride 2 "valid": 2x2 outputs x 1 tap; the input gradient reads only
    # those 4 real products, not the 16 positions of the zero-dilated gradient.
    (1, "valid", 4, 4),
    # 3x3 stride 2 "same" on 4: 2 outputs per dim, padding 0 before and 1
    # after; (output, tap) pairs per dim on a real input: o=0 reads 0,1,2,
    # o=1 reads 2,3 (4 is padding) -> 5, so 5 x 5 = 25; the forward counts
    # 2x2 outputs x 9 taps = 36, the padding's products included.
    (3, "same", 36, 25),
])
def test_strided_convolution_gradients_count_real_products(kernel, padding, forward, input_grad):
    report = keras_flops.profile(strided_model(kernel, padding), training=True)
    rows = report.to_dataframe()
    assert rows.loc["b", "macs"] == forward
    # kernel gradient: the forward's products; input gradient: the real ones
    assert rows.loc["b", "backward_macs"] == forward + input_grad


def test_resnet50_training_step_batch_8():
    model, _ = build("ResNet50")
    report = keras_flops.profile(model, batch_size=8, training=True, warn=False)
    forward = 8 * 3_857_973_248
    # the backward pass is two forward passes (kernel and input gradients)
    # less conv1's input gradient, which the data does not need:
    # 8 x 112x112 outputs x 64 filters x 7x7x3.
    conv1 = 8 * 112 * 112 * 64 * 7 * 7 * 3
    assert report.macs == forward
    assert report.backward_macs == 2 * forward - conv1 == 60_783_460_352
    assert report.macs + report.backward_macs == 91_647_246_336


# ----------------------------------------------------------------------------
# The same MACs as TensorFlow's, per layer


def _macs(rows, inclusive=False):
    """The layers with MACs: {path: MACs}, or with ``inclusive`` {top-level
    layer: MACs, its sublayers' included} (JAX's fused GRU kernel runs the
    cell's arithmetic in the GRU layer itself, without calling the cell)."""
    out = {}
    for path, values in rows.items():
        key = path.split("/")[0] if inclusive else path
        out[key] = out.get(key, 0) + values[0]
    return {k: v for k, v in out.items() if v}


@pytest.mark.parametrize("case", list(APPLICATIONS) + ["transformer_block", "gpt2", "conv_forms", "conv3d"]
                         + list(RNNS))
def test_forward_macs_equal_tensorflow_per_layer(tf_counts, case):
    if case not in tf_counts:
        pytest.skip("keras_hub is not installed")
    mine, theirs = counts(case), tf_counts[case]
    assert mine["macs"] == theirs["macs"]
    inclusive = case == "GRU"
    assert _macs(mine["layers"], inclusive) == _macs(theirs["layers"], inclusive)
    # FLOPs within 2%; the differences are elementwise decompositions
    # (docs/formulas.md, "The JAX backend")
    assert abs(mine["flops"] - theirs["flops"]) <= 0.02 * theirs["flops"]
    assert mine["uncounted"] == []


@pytest.mark.parametrize("case", ["ResNet50:train", "MobileNetV2:train", "conv_forms:train", "conv3d:train"])
def test_training_macs_equal_tensorflow_per_layer(tf_counts, case):
    mine, theirs = counts(case), tf_counts[case]
    assert (mine["macs"], mine["backward_macs"]) == (theirs["macs"], theirs["backward_macs"])
    macs = {p: v[:2] for p, v in mine["layers"].items() if any(v[:2])}
    assert macs == {p: v[:2] for p, v in theirs["layers"].items() if any(v[:2])}
    mine_total = mine["flops"] + mine["backward_flops"]
    theirs_total = theirs["flops"] + theirs["backward_flops"]
    assert abs(mine_total - theirs_total) <= 0.02 * theirs_total


@pytest.mark.parametrize("name", APPLICATIONS)
def test_flops_within_5_percent_of_xla_cost_analysis(name):
    model, _ = build(name)
    report = keras_flops.profile(model, batch_size=1, warn=False)
    spec = jax.ShapeDtypeStruct((1, 224, 224, 3), "float32")
    trainable = [jax.ShapeDtypeStruct(v.shape, v.dtype) for v in model.trainable_variables]
    other = [jax.ShapeDtypeStruct(v.shape, v.dtype) for v in model.non_trainable_variables]

    def forward(trainable, other, x):
        return model.stateless_call(trainable, other, x, training=False)[0]

    analysis = jax.jit(forward).lower(trainable, other, spec).cost_analysis()
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0]
    xla = analysis["flops"]
    assert abs(report.flops - xla) <= 0.05 * xla, (report.flops, xla)


# ----------------------------------------------------------------------------
# Calls, loops, branches, and what has no formula


class WhileLayer(keras.layers.Layer):
    """x -> x * 2 + 1, five times, in a while loop with a static trip count."""

    def call(self, x):
        def body(i, y):
            return i + 1, y * 2.0 + 1.0

        return keras.ops.while_loop(lambda i, y: i < 5, body, (0, x))[1]


class DynamicWhileLayer(keras.layers.Layer):
    """A loop whose trip count depends on the data."""

    def call(self, x):
        def body(i, y):
            return i + 1, y * 2.0

        limit = keras.ops.cast(keras.ops.sum(x), "int32")
        return keras.ops.while_loop(lambda i, y: i < limit, body, (0, x))[1]


class CondLayer(keras.layers.Layer):
    """A data-dependent branch: a 4x4 matmul, or a negation."""

    def build(self, shape):
        self.w = self.add_weight(shape=(4, 4))

    def call(self, x):
        return keras.ops.cond(keras.ops.sum(x) > 0, lambda: keras.ops.matmul(x, self.w), lambda: -x)


def test_static_while_loop_counts_its_body_times_its_trips():
    model = keras.Sequential([keras.Input((3,)), WhileLayer(name="loop")])
    report = keras_flops.profile(model)
    # 5 trips x (a multiply and an add on 3 elements, the counter's add) + the
    # condition 6 times (i < 5)
    assert report.flops == 5 * (3 + 3 + 1) + 6 * 1
    assert report.uncounted == ()


def test_dynamic_while_loop_is_uncounted_with_a_warning():
    model = keras.Sequential([keras.Input((3,)), DynamicWhileLayer(name="loop")])
    with pytest.warns(keras_flops.UncountedOpsWarning, match="while"):
        report = keras_flops.profile(model)
    (op,) = report.uncounted
    assert op.op_type == "while" and op.layer == "loop" and "trip count" in op.reason


def test_cond_counts_the_costlier_branch_and_says_so():
    model = keras.Sequential([keras.Input((4,)), CondLayer(name="branch")])
    report = keras_flops.profile(model)
    # the sum's 3 adds and the compare, then the matmul: 2 x 4 outputs x 4
    assert report.macs == 4 * 4
    assert report.flops == 3 + 1 + 2 * 16
    assert any("costlier" in note for note in report.notes)


class CholeskyLayer(keras.layers.Layer):
    def call(self, x):
        return keras.ops.linalg.cholesky(x)


def test_a_primitive_without_formula_is_uncounted_never_zero():
    model = keras.Sequential([keras.Input((3, 3)), CholeskyLayer(name="chol")])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = keras_flops.profile(model)
    assert any(issubclass(w.category, keras_flops.UncountedOpsWarning) for w in caught)
    assert "cholesky" in {u.op_type for u in report.uncounted}
    assert {u.layer for u in report.uncounted} == {"chol"}


def test_a_user_formula_prices_a_primitive():
    model = keras.Sequential([keras.Input((3, 3)), CholeskyLayer(name="chol")])
    report = keras_flops.profile(model, formulas={"cholesky": lambda op: 9}, warn=False)
    assert ("cholesky", 9) in {(o.op_type, o.flops) for o in report.ops}


def test_tfprof_counting_is_refused_on_jax():
    with pytest.raises(ValueError, match="counting='full'"):
        keras_flops.profile(small_model(), counting="tfprof")


def test_profiling_touches_no_weight_and_leaves_the_model_as_it_was():
    model = small_model()
    before = [np.array(v) for v in model.weights]
    keras_flops.profile(model, training=True)
    assert all(np.array_equal(a, np.array(v)) for a, v in zip(before, model.weights))
    # every layer's call is its class's again, with no instance attribute left
    assert all("call" not in vars(layer) for layer in model.layers)
    assert all(layer.call.__func__ is type(layer).call for layer in model.layers)


def test_weightless_model_allocates_nothing():
    from keras_flops import _compat

    with keras_flops.without_weights():
        model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(32, name="d")])
    report = keras_flops.profile(model, batch_size=4)
    assert report.macs == 4 * 16 * 32
    assert not any(_compat.is_allocated(v) for v in model.variables)
