"""Loops, branches and called functions: counted where they run, times how often."""

import keras
import pytest
import tensorflow as tf

import keras_flops
from conftest import sequential, tfprof
from keras_flops import backends
from keras_flops.core import inputs

T, D, U = 20, 3, 4  # time steps, input features, units


def rnn_macs(report, path):
    return report.to_dataframe(depth=1).loc[path, "macs"]


def test_lstm_counts_every_step():
    # 4 gates: per step x @ W (3 -> 16) and h @ U (4 -> 16): 16 x (3 + 4) = 112 MACs;
    # 20 steps: 2240.
    report = keras_flops.profile(sequential((T, D), keras.layers.LSTM(U, name="lstm")))
    assert report.macs == T * 4 * U * (D + U) == 2240
    assert rnn_macs(report, "lstm") == 2240
    assert report.uncounted == () and report.notes == ()
    matmuls = [op for op in report.ops if op.op_type == "MatMul"]
    assert {op.repeat for op in matmuls} == {T}  # the dead step outside the loop is pruned


def test_gru_counts_every_step():
    # 3 gates: 12 x (3 + 4) = 84 MACs per step; 20 steps: 1680
    report = keras_flops.profile(sequential((T, D), keras.layers.GRU(U, name="gru")))
    assert report.macs == T * 3 * U * (D + U) == 1680


def test_simple_rnn_counts_every_step():
    # 4 x (3 + 4) = 28 MACs per step; 20 steps: 560
    report = keras_flops.profile(sequential((T, D), keras.layers.SimpleRNN(U, name="rnn")))
    assert report.macs == T * U * (D + U) == 560


def test_bidirectional_lstm_counts_both_directions():
    layer = keras.layers.Bidirectional(keras.layers.LSTM(U), name="bi")
    report = keras_flops.profile(sequential((T, D), layer))
    assert rnn_macs(report, "bi") == 2 * 2240
    df = report.to_dataframe()
    forward = [p for p in df.index if p.startswith("bi/forward")]
    backward = [p for p in df.index if p.startswith("bi/backward")]
    assert df.loc[forward, "macs"].sum() == df.loc[backward, "macs"].sum() == 2240


def test_lstm_scales_with_batch_and_steps():
    one = keras_flops.profile(sequential((T, D), keras.layers.LSTM(U))).macs
    assert keras_flops.profile(sequential((T, D), keras.layers.LSTM(U)), batch_size=3).macs == 3 * one
    assert keras_flops.profile(sequential((2 * T, D), keras.layers.LSTM(U))).macs == 2 * one


def test_tfprof_mode_reproduces_tf_profiler():
    # tf.profiler never enters the loop and counts the step Keras traces outside it
    # to learn shapes: one step's MatMuls, 2 x (3 x 16 + 4 x 16) = 224 FLOPs.
    model = sequential((T, D), keras.layers.LSTM(U))
    report = keras_flops.profile(model, counting="tfprof", warn=False)
    tf_backend = backends.of(model)
    graph = tf_backend.trace(model, inputs.resolve(model, 1, None, tf_backend).specs).function.graph
    total, by_type = tfprof(graph)
    assert report.flops == total
    assert by_type["MatMul"] == 224
    assert {u.op_type for u in report.uncounted} >= {"Sigmoid", "Tanh"}


def test_bad_counting_mode():
    with pytest.raises(ValueError, match="counting"):
        keras_flops.profile(sequential((3,), keras.layers.Dense(2)), counting="fast")


W = tf.ones((4, 4))


class Loop(keras.layers.Layer):
    """y = y @ W while i < limit, i from 0 by 1; optionally maximum_iterations."""

    def __init__(self, limit=5, max_iterations=None, data_dependent=False, **kwargs):
        super().__init__(**kwargs)
        self.limit, self.max_iterations, self.data_dependent = limit, max_iterations, data_dependent

    def call(self, x):
        if self.data_dependent:
            cond = lambda i, y: tf.reduce_sum(y) < 1e6  # noqa: E731
        else:
            cond = lambda i, y: i < self.limit  # noqa: E731
        _, y = tf.while_loop(cond, lambda i, y: (i + 1, tf.matmul(y, W)), [tf.constant(0), x],
                             maximum_iterations=self.max_iterations)
        return y

    def compute_output_shape(self, shape):
        return shape


def loop_matmul_flops(report):
    return sum(op.flops for op in report.ops if op.op_type == "MatMul")


@pytest.mark.parametrize("max_iterations", [None, 5, 7, 100])
def test_while_trip_count_comes_from_the_condition(max_iterations):
    # i < 5 from 0 by 1: 5 runs, whatever maximum_iterations above 5 allows.
    # MatMul (1, 4) @ (4, 4): 2 x 4 x 4 = 32 per run.
    report = keras_flops.profile(sequential((4,), Loop(5, max_iterations, name="loop")))
    assert loop_matmul_flops(report) == 5 * 32
    assert report.to_dataframe().loc["loop", "macs"] == 5 * 16


def test_while_capped_by_maximum_iterations():
    report = keras_flops.profile(sequential((4,), Loop(5, 3)))
    assert loop_matmul_flops(report) == 3 * 32


def test_while_with_data_dependent_condition_is_uncounted():
    with pytest.warns(keras_flops.UncountedOpsWarning, match="While"):
        report = keras_flops.profile(sequential((4,), Loop(data_dependent=True, name="loop")))
    (op,) = report.uncounted
    assert op.layer == "loop" and "trip count" in op.reason


def test_while_with_cap_but_data_dependent_condition_is_an_upper_bound():
    report = keras_flops.profile(sequential((4,), Loop(max_iterations=4, data_dependent=True)))
    assert loop_matmul_flops(report) == 4 * 32
    assert any("upper bound" in note for note in report.notes)


class Branch(keras.layers.Layer):
    def call(self, x):
        return tf.cond(tf.reduce_sum(x) > 0, lambda: tf.matmul(x, W), lambda: x * 2.0)

    def compute_output_shape(self, shape):
        return shape


def test_if_counts_the_costlier_branch_and_says_so():
    report = keras_flops.profile(sequential((4,), Branch(name="branch")))
    # Sum of 4: 3 adds; Greater: 1; then branch: MatMul 32 (taken) vs Mul 4.
    assert report.flops == 3 + 1 + 32
    (note,) = report.notes
    assert "costlier branch" in note and "then" in note and "'branch'" in note


class Calls(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.inner = tf.function(lambda y: tf.matmul(y, W))

    def call(self, x):
        return self.inner(self.inner(x))

    def compute_output_shape(self, shape):
        return shape


def test_called_functions_are_walked():
    report = keras_flops.profile(sequential((4,), Calls(name="calls")))
    # two calls of a function doing one (1, 4) @ (4, 4) MatMul: 2 x 32
    assert report.flops == 64
    assert report.to_dataframe().loc["calls", "flops"] == 64


class Dead(keras.layers.Layer):
    def call(self, x):
        tf.matmul(x, W)  # feeds nothing
        return x + 1.0

    def compute_output_shape(self, shape):
        return shape


def test_ops_that_feed_no_output_are_pruned():
    model = sequential((4,), Dead())
    assert keras_flops.profile(model).flops == 4  # only the add
    # tf.profiler counts the dead MatMul too: 32 + 4
    assert keras_flops.profile(model, counting="tfprof").flops == 36
