"""profile(training=True): one training step, forward + loss + backward, per layer.

Backward formulas (TensorFlow's): for y = x @ W + b with x (B, n), W (n, m),
dW = x^T @ dy is 2 x B x (n x m) FLOPs, dx = dy @ W^T is 2 x m x (B x n), and
BiasAddGrad sums dy over the batch: B x m - m. The first layer's dx feeds
nothing (the input needs no gradient) and is pruned.
"""

import json
import pathlib
import re

import jsonschema
import keras
import pytest
import tensorflow as tf

import keras_flops
from conftest import sequential
from jax_suite.cases import strided_model  # the same model the JAX suite counts

SCHEMA = json.loads((pathlib.Path(__file__).parents[1] / "docs" / "report.schema.json").read_text())


def dense_model(loss="mse"):
    model = sequential((5,), keras.layers.Dense(3, name="d1"), keras.layers.Dense(2, name="d2"))
    model.compile(optimizer="sgd", loss=loss)
    return model


def test_dense_forward_and_backward_per_layer():
    report = keras_flops.profile(dense_model(), batch_size=4, training=True)
    df = report.to_dataframe()
    # d1, 5 -> 3, B = 4. forward: 2 x 5 x 12 + 12 = 132.
    # backward: dW 2 x 4 x 15 = 120, BiasAddGrad 12 - 3 = 9; no dx: 129.
    assert (df.loc["d1", "flops"], df.loc["d1", "backward_flops"]) == (132, 120 + 9)
    # d2, 3 -> 2. forward: 2 x 3 x 8 + 8 = 56.
    # backward: dW 2 x 4 x 6 = 48, dx 2 x 2 x 12 = 48, BiasAddGrad 8 - 2 = 6: 102.
    assert (df.loc["d2", "flops"], df.loc["d2", "backward_flops"]) == (56, 48 + 48 + 6)
    assert df.loc["d2", "backward_macs"] == (48 + 48) // 2
    assert df.loc["d2", "train_flops"] == 56 + 102
    assert df.loc["d2", "train_ratio"] == pytest.approx(158 / 56)
    # every column sums to its total; the loss has a row of its own
    assert df["flops"].sum() == report.flops
    assert df["backward_flops"].sum() == report.backward_flops
    assert df["train_flops"].sum() == report.train_flops == report.flops + report.backward_flops
    assert df.loc["(loss)", "flops"] == report.loss_flops > 0


def test_conv2d_forward_and_backward():
    model = sequential(
        (6, 6, 2),
        keras.layers.Conv2D(3, 3, padding="same", name="conv"),
        keras.layers.Flatten(),
        keras.layers.Dense(2, name="fc"),
    )
    model.compile(optimizer="sgd", loss="mse")
    df = keras_flops.profile(model, batch_size=2, training=True).to_dataframe()
    # conv, B = 2: 2 x 6 x 6 x 3 = 216 outputs of 3 x 3 x 2 = 18 products.
    # forward: 2 x 216 x 18 = 7776, bias 216.
    # backward: Conv2DBackpropFilter 2 x 216 x 18 = 7776 (each output gradient
    # meets its 3x3x2 window, as the forward; TensorFlow's formula, 2 x n(input)
    # 144 x n(kernel) 54 / (2 in-channels x stride 1), gives the same for "same"
    # padding), BiasAddGrad 216 - 3 = 213; no input gradient.
    assert (df.loc["conv", "flops"], df.loc["conv", "backward_flops"]) == (7776 + 216, 7776 + 213)
    assert df.loc["conv", "backward_macs"] == 7776 // 2
    # fc, 108 -> 2: forward 2 x 108 x 4 + 4 = 868;
    # backward dW 2 x 2 x 216 = 864, dx 2 x 2 x 216 = 864, BiasAddGrad 4 - 2 = 2.
    assert (df.loc["fc", "flops"], df.loc["fc", "backward_flops"]) == (868, 864 + 864 + 2)


@pytest.mark.parametrize("kernel, padding, forward, exact_input, tf_input, tf_filter", [
    # 1x1 stride 2 "valid": 2x2 outputs x 1 tap = 4 products. TensorFlow's
    # input-gradient formula: n(dx) 16 x n(kernel) 1 / (1 channel x 2 x 2) = 4;
    # its filter formula: n(image) 16 x 1 / (1 x 2 x 2) = 4.
    (1, "valid", 4, 4, 4, 4),
    # 3x3 stride 2 "same" on 4: forward 2x2 outputs x 9 taps = 36 (the padding's
    # products included). Input gradient, exactly: per dim the (output, tap)
    # pairs on a real input, o=0 reads 0,1,2 and o=1 reads 2,3 (4 is padding):
    # 5, so 5 x 5 = 25. TensorFlow's formula: 16 x 9 / (1 x 2 x 2) = 36.
    (3, "same", 36, 25, 36, 36),
    # 3x3 stride 2 "valid" on 4: 1 output x 9 taps. TensorFlow's filter formula
    # counts the image's positions: 16 x 9 / (1 x 2 x 2) = 36 where the
    # gradient has 9 products; its input formula 36 where 9 are real.
    (3, "valid", 9, 9, 36, 36),
])
def test_strided_conv_gradients_exact_and_tfprof(kernel, padding, forward, exact_input, tf_input, tf_filter):
    full = keras_flops.profile(strided_model(kernel, padding), training=True).to_dataframe()
    assert full.loc["b", "macs"] == forward
    # counting="full": kernel gradient = the forward's products, input gradient the real ones
    assert full.loc["b", "backward_macs"] == forward + exact_input
    ops = keras_flops.profile(strided_model(kernel, padding), training=True, counting="tfprof", warn=False).ops
    tfprof = {o.op_type: o.macs for o in ops if o.layer == "b" and o.op_type.startswith("Conv2DBackprop")}
    assert tfprof == {"Conv2DBackpropInput": tf_input, "Conv2DBackpropFilter": tf_filter}


def test_resnet50_training_step_is_exact(resnet50):
    report = keras_flops.profile(resnet50, batch_size=8, training=True, warn=False)
    forward = 8 * 3_857_973_248
    # two forward passes (kernel and input gradients) less conv1's input
    # gradient (the data needs none): 8 x 112x112 x 64 filters x 7x7x3
    conv1 = 8 * 112 * 112 * 64 * 7 * 7 * 3
    assert report.backward_macs == 2 * forward - conv1 == 60_783_460_352
    assert report.macs + report.backward_macs == 91_647_246_336


def test_training_step_scales_with_batch():
    one = keras_flops.profile(dense_model(), batch_size=2, training=True)
    two = keras_flops.profile(dense_model(), batch_size=4, training=True)
    # the MatMuls are all per sample: twice the batch, twice their FLOPs
    matmuls = lambda r: sum(op.flops for op in r.ops if op.op_type == "MatMul")  # noqa: E731
    assert matmuls(two) == 2 * matmuls(one)


def test_sparse_labels_given_or_made_count_the_same():
    model = dense_model("sparse_categorical_crossentropy")
    made = keras_flops.profile(model, batch_size=4, training=True)
    given = keras_flops.profile(
        model, batch_size=4, training=True, targets=tf.TensorSpec((None,), tf.int32)
    )
    assert made.train_flops == given.train_flops
    assert made.uncounted == ()


def test_lstm_backward_runs_every_step():
    model = sequential((5, 3), keras.layers.LSTM(4, name="lstm"))
    model.compile(optimizer="sgd", loss="mse")
    report = keras_flops.profile(model, batch_size=2, training=True)
    assert report.uncounted == ()
    lstm = report.to_dataframe(depth=1).loc["lstm"]
    # forward MACs: 5 steps x 2 samples x 16 x (3 + 4) = 1120;
    # backward: dW for both kernels, 1120 again, and dh = dz @ U^T: 5 x 2 x 16 x 4 = 640
    assert lstm["macs"] == 1120
    assert lstm["backward_macs"] == 1120 + 640


def test_uncompiled_model_uses_the_sum_of_outputs():
    model = sequential((5,), keras.layers.Dense(3, name="d"))
    report = keras_flops.profile(model, batch_size=4, training=True)
    assert any("not compiled" in note for note in report.notes)
    # dW 2 x 4 x 15 = 120, BiasAddGrad 12 - 3 = 9
    assert report.to_dataframe().loc["d", "backward_flops"] == 129


def test_training_report_schema():
    data = keras_flops.profile(dense_model(), batch_size=4, training=True).to_dict()
    jsonschema.validate(data, SCHEMA)
    assert data["training"] is True
    assert data["totals"]["train_flops"] == data["totals"]["flops"] + data["totals"]["backward_flops"]
    assert {row["path"]: row["backward_flops"] for row in data["layers"]}["d2"] == 102


def test_inference_report_has_no_training_columns():
    report = keras_flops.profile(dense_model(), batch_size=4)
    assert "backward_flops" not in report.to_dataframe()
    assert report.train_flops == report.flops and report.backward_flops == 0


def test_grouped_conv_gradients_belong_to_their_layer():
    # Keras runs a grouped convolution in a function of its own; its gradient
    # function is called from the root of the graph and must not go to the
    # next layer, whose gradient feeds it.
    model = sequential(
        (8, 8, 4),
        keras.layers.Conv2D(4, 1, name="first"),
        keras.layers.Conv2D(4, 3, groups=2, padding="same", use_bias=False, name="grouped"),
        keras.layers.Conv2D(2, 1, use_bias=False, name="last"),
    )
    model.compile(loss="mse")
    df = keras_flops.profile(model, training=True).to_dataframe()
    # grouped: 8x8 positions x 4 filters x (3x3 window x 2 in-channels per group) = 4608
    # MACs forward; backward its kernel gradient and its input gradient, 4608 each
    assert df.loc["grouped", "macs"] == 8 * 8 * 4 * 3 * 3 * 2 == 4608
    assert df.loc["grouped", "backward_macs"] == 2 * 4608
    # last: 64 positions x 2 x 4 = 512 forward; kernel and input gradients
    assert df.loc["last", "backward_macs"] == 2 * 512


def test_transposed_conv_kernel_gradient_counts_its_real_products():
    # 3x3 stride 2 "same" transposed, 3x3x8 -> 6x6x6. As a convolution 6 -> 3
    # (padding 0 before, 1 after), per dim the (position, tap) pairs on a real
    # element: o=0 reads 0,1,2, o=1 reads 2,3,4, o=2 reads 4,5 (6 is padding):
    # 8, so 8 x 8 = 64 pairs x 8 x 6 channels = 3072, forward and kernel
    # gradient alike (TensorFlow's kernel-gradient formula: 6x6 image x 3x3x6x8
    # kernel / (6 x 2 x 2) = 3888).
    model = sequential((3, 3, 8), keras.layers.Conv2DTranspose(6, 3, strides=2, padding="same", name="t"))
    model.compile(loss="mse")
    df = keras_flops.profile(model, training=True).to_dataframe()
    assert (df.loc["t", "macs"], df.loc["t", "backward_macs"]) == (64 * 8 * 6, 64 * 8 * 6) == (3072, 3072)
    tfprof = keras_flops.profile(model, training=True, counting="tfprof", warn=False)
    assert [o.macs for o in tfprof.ops if o.op_type == "Conv2DBackpropFilter"] == [3888]


def test_attention_block_backward_per_layer():
    # MultiHeadAttention(4 heads, key_dim 8) on x (2, 16, 32), then pooling and
    # Dense(1). Each projection is 2 x 16 positions x 32 in x 32 out = 32,768 MACs;
    # each attention product (scores, weighted values) 2 x 4 heads x 16 x 16 x 8
    # = 16,384. A kernel gradient costs its matmul; an input gradient the same
    # again, except for query, key and value, whose input is the model's data.
    x = keras.Input((16, 32))
    a = keras.layers.MultiHeadAttention(4, 8, name="mha")(x, x)
    p = keras.layers.GlobalAveragePooling1D(name="pool")(a)
    model = keras.Model(x, keras.layers.Dense(1, name="d")(p))
    model.compile(loss="mse")
    rows = keras_flops.profile(model, batch_size=2, training=True).to_dataframe()["backward_macs"]
    projection, product = 2 * 16 * 32 * 32, 2 * 4 * 16 * 16 * 8
    assert (projection, product) == (32_768, 16_384)
    for name in ("query", "key", "value"):
        assert rows[f"mha/{name}"] == projection  # kernel gradient only
    assert rows["mha/attention_output"] == 2 * projection  # kernel and input gradients
    # the two attention products, each with a gradient per operand, belong to
    # the attention layer that ran them (they went to query and attention_output)
    assert rows["mha"] == 2 * 2 * product
    assert rows["d"] == 2 * (2 * 32)  # kernel and input gradients of 2 x 32 x 1
    assert rows.sum() == 3 * projection + 2 * projection + 4 * product + 128 == 229_504


def test_a_rematerialized_model_gets_an_error_that_names_the_remat_scope():
    # Keras's custom gradient of a remat layer takes keyword arguments only eagerly on TensorFlow
    with keras.RematScope(mode="full"):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="a")])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(keras_flops.ProfileError) as err:
        keras_flops.profile(model, batch_size=2, training=True)
    message = str(err.value)
    # its layers, by path (the input layer's name counts the inputs made before it)
    assert re.search(r"built in a keras\.RematScope \(input_layer(_\d+)?, a\)", message), message
    assert "could not be traced on TensorFlow" in message
    assert "Build the model outside the RematScope" in message and "KERAS_BACKEND=jax" in message
