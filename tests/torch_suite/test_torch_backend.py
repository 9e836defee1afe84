"""Keras on PyTorch: counts worked by hand, PyTorch's own FlopCounterMode as
a reference, and every entry point (summary, attach, FlopsCallback, the CLI,
memory, sweep, generation, measure's error)."""

import json

import keras
import pytest
import torch

import keras_flops
from keras_flops import _compat
from keras_flops.cli import main as cli_main

import no_tensorflow  # tests/
from surfaces import *  # noqa: F401,F403  (the backend-neutral surface tests: collected here, on PyTorch)
from surfaces import FORWARD_FLOPS, FORWARD_MACS, model_and_data


def test_the_question_users_ask():
    # a 1x1 Conv2D, one channel, one filter, no bias, on a 1x1x1 input: one
    # multiply-accumulate, 2 FLOPs
    model = keras.Sequential([keras.Input((1, 1, 1)), keras.layers.Conv2D(1, 1, use_bias=False, name="c")])
    report = keras_flops.profile(model, batch_size=1)
    assert (report.flops, report.macs) == (2, 1)


def test_mlp_forward_and_training_by_hand():
    model, _, _ = model_and_data()
    report = keras_flops.profile(model, batch_size=2)
    assert (report.flops, report.macs) == (2 * FORWARD_FLOPS, 2 * FORWARD_MACS)
    assert report.uncounted == ()
    frame = report.to_dataframe()
    assert frame.loc["h", "macs"] == 2 * 24 and frame.loc["out", "macs"] == 2 * 8
    training = keras_flops.profile(model, batch_size=2, training=True)
    frame = training.to_dataframe()
    # out: its kernel's gradient h^T dy (4 x 2 x 2 samples) and its input's
    # gradient dy out^T (2 x 2 x 4); h: its kernel's gradient only (6 x 4 x 2),
    # the batch needs none
    assert frame.loc["out", "backward_macs"] == 16 + 16
    assert frame.loc["h", "backward_macs"] == 48
    assert training.uncounted == ()


def test_transposed_and_grouped_convolutions_by_hand():
    x = keras.Input((8, 8, 4))
    y = keras.layers.Conv2D(6, 3, groups=2, padding="same", use_bias=False, name="grouped")(x)
    y = keras.layers.Conv2DTranspose(2, 3, strides=2, padding="valid", use_bias=False, name="up")(y)
    report = keras_flops.profile(keras.Model(x, y), batch_size=1)
    frame = report.to_dataframe()
    # grouped: 8x8 positions x 6 filters x 3x3 taps x 2 channels per group
    assert frame.loc["grouped", "macs"] == 64 * 6 * 9 * 2
    # transposed 8x8 -> 17x17, stride 2: each of the 17x17 x 2 outputs meets
    # the real inputs of its taps: along a dim, positions o and taps t with
    # (o - t) even and 0 <= (o - t) / 2 < 8, 8 inputs x 3 taps = 24 pairs
    assert frame.loc["up", "macs"] == 2 * 6 * 24 * 24


def test_a_same_transposed_convolution_is_computed_whole_then_cropped():
    # Keras on PyTorch runs Conv2DTranspose(padding="same") as the "valid"
    # transposed convolution, (4 - 1) x 2 + 3 = 9 per dim, then crops it to 8
    model = keras.Sequential([keras.Input((4, 4, 1)),
                              keras.layers.Conv2DTranspose(2, 3, strides=2, padding="same", use_bias=False,
                                                           name="t")])
    report = keras_flops.profile(model, batch_size=1)
    # along a dim, the 9 outputs meet 4 inputs x 3 taps, all real: 12 pairs;
    # 2 filters x 1 channel x 12 x 12. (TensorFlow and JAX count the 8 kept:
    # 11 pairs a dim, tap 2 of input 3 falls on the cropped row: 2 x 121 = 242.)
    assert report.to_dataframe().loc["t", "macs"] == 2 * 12 * 12 == 288


def test_a_strided_same_convolution_pads_first_and_its_gradient_covers_the_padding():
    x = keras.Input((4, 4, 1))
    y = keras.layers.Conv2D(1, 1, name="a")(x)
    y = keras.layers.Conv2D(1, 3, strides=2, padding="same", use_bias=False, name="b")(y)
    model = keras.Model(x, keras.layers.Flatten()(y))
    model.compile(loss="mse")
    report = keras_flops.profile(model, batch_size=1, training=True)
    # "same" with stride 2 on 4 pads (0, 1): Keras pads the input to 5x5 on
    # PyTorch and convolves it "valid". dw: 2x2 outputs x 3x3 taps = 36. dx,
    # for the padded 5x5: along a dim, outputs 0 and 1 with taps 0-2 all
    # land inside, 6 pairs, 6 x 6 = 36. (TensorFlow's dx counts the real 4x4
    # only, 5 pairs a dim, 25: 61 in all.)
    assert report.to_dataframe().loc["b", "backward_macs"] == 36 + 36


def test_an_einsum_is_one_op_as_on_tensorflow():
    # an outer product (nothing contracted): PyTorch's einsum would run it as
    # a broadcast multiply; counted as one einsum, every product is a MAC, as
    # TensorFlow's Einsum and JAX's dot_general count it
    x = keras.Input((5,))
    y = keras.layers.Lambda(lambda t: keras.ops.einsum("bi,bj->bij", t, t), name="outer")(x)
    report = keras_flops.profile(keras.Model(x, y), batch_size=2)
    op, = [o for o in report.ops if o.layer == "outer" and o.flops]
    assert (op.op_type, op.flops, op.macs) == ("einsum", 2 * 2 * 5 * 5, 2 * 5 * 5)


def test_an_einsums_gradients_are_einsums():
    # a contraction over a dim of size 1 in a training step: forward, batch 2
    # x 3 x 4 x 1 = 24 products; each operand's gradient is an einsum of the
    # output's gradient with the other operand over the same 24 (TensorFlow's
    # Einsum gradients), where PyTorch's own would be broadcast multiplies
    x = keras.Input((6,))
    a = keras.layers.Reshape((3, 1))(keras.layers.Dense(3, name="a")(x))
    b = keras.layers.Reshape((4, 1))(keras.layers.Dense(4, name="b")(x))
    y = keras.layers.Lambda(lambda t: keras.ops.einsum("bik,bjk->bij", *t), name="scores")([a, b])
    model = keras.Model(x, y)
    model.compile(loss="mse")
    frame = keras_flops.profile(model, batch_size=2, training=True).to_dataframe()
    assert frame.loc["scores", "macs"] == 2 * 3 * 4 == 24
    assert frame.loc["scores", "backward_macs"] == 2 * 24


def test_an_op_with_no_formula_is_uncounted_and_said():
    x = keras.Input((4, 4))
    y = keras.layers.Lambda(lambda t: keras.ops.linalg.cholesky(t), name="chol")(x)
    with pytest.warns(keras_flops.UncountedOpsWarning):
        report = keras_flops.profile(keras.Model(x, y), batch_size=1)
    assert [u.layer for u in report.uncounted] == ["chol"]
    assert "no formula" in report.uncounted[0].reason


def test_nothing_is_allocated_for_a_weightless_model():
    with keras_flops.without_weights():
        model = keras.Sequential([keras.Input((1024,)), keras.layers.Dense(4096, name="big")])
    report = keras_flops.profile(model, batch_size=1, training=True)
    assert report.macs == 1024 * 4096
    assert not any(_compat.is_allocated(v) for v in model.variables)


# --------------------------------------------------------------------------
# PyTorch's own counter


def _flop_counter(model, shape):
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(shape))
    return counter.get_total_flops()


@pytest.mark.parametrize("name", ["ResNet50", "MobileNetV2"])
def test_flop_counter_mode_agrees_on_applications(name):
    model = getattr(keras.applications, name)(weights=None)
    report = keras_flops.profile(model, batch_size=1)
    assert _flop_counter(model, (1, 224, 224, 3)) == 2 * report.macs
    if name == "ResNet50":
        assert report.macs == 3_857_973_248  # the figure, and TensorFlow's and JAX's


def test_flop_counter_mode_agrees_on_dense_and_conv1d():
    x = keras.Input((20, 4))
    y = keras.layers.Conv1D(8, 3, strides=2, padding="same", name="c1")(x)
    y = keras.layers.Conv1D(4, 5, dilation_rate=2, name="c2")(y)
    y = keras.layers.Dense(6, name="d")(keras.layers.Flatten()(y))
    model = keras.Model(x, y)
    report = keras_flops.profile(model, batch_size=2)
    # c1: 10 positions x 8 filters x 3 taps x 4 channels; c2: 2 positions x 4 x 5 x 8;
    # d: 8 inputs x 6 per sample; a batch of 2
    assert report.macs == 2 * (10 * 8 * 3 * 4 + 2 * 4 * 5 * 8 + 8 * 6) == 2656
    assert _flop_counter(model, (2, 20, 4)) == 2 * report.macs


def test_flop_counter_mode_misses_the_attention_products():
    x = keras.Input((16, 32))
    model = keras.Model(x, keras.layers.MultiHeadAttention(4, 8, name="mha")(x, x))
    report = keras_flops.profile(model, batch_size=2)
    # the four projections: 2 x 16 tokens x 32 x 32 each (4 heads x 8 = 32)
    projections = 4 * 2 * 16 * 32 * 32
    # the scores Q K^T and the weighted values: 2 x 4 heads x 16 x 16 x 8 each
    products = 2 * (2 * 4 * 16 * 16 * 8)
    assert (projections, products) == (131_072, 32_768)
    assert report.macs == projections + products
    # FlopCounterMode, on the same model: the projections only. Keras runs
    # the attention through PyTorch's fused CPU kernel there, which it has no
    # formula for, so the two products count 0
    assert _flop_counter(model, (2, 16, 32)) // 2 == projections


# --------------------------------------------------------------------------
# Every entry point


def test_cli_on_a_json_config(tmp_path, capsys):
    import hub_zoo

    path = tmp_path / "llama.json"
    path.write_text(json.dumps(hub_zoo.ZOO["LlamaBackbone"]["config"]))
    assert cli_main([str(path), "--sequence-length", "8", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    # the zoo's Llama: 2 layers, width 8, FFN 8, 4 query heads and 2 key/value
    # heads of 2; 8 tokens. Per layer: Q and O 2 S d^2 = 1024, K and V
    # 2 S d (KV x head) = 512, scores and values 2 S^2 d = 1024, the gated
    # FFN 3 S d F = 1536, the rotary angles (positions x frequencies) for q
    # and k, 2 x 8 x 1 = 16
    assert data["totals"]["macs"] == 2 * (1024 + 512 + 1024 + 1536 + 16) == 8224


def test_torch_needs_no_tensorflow(tmp_path):
    no_tensorflow.check(tmp_path, "torch")


def test_memory_of_a_training_step():
    model, _, _ = model_and_data()
    mem = keras_flops.memory(model, batch_size=2, optimizer="sgd")
    # weights: h 6x4 + 4, out 4x2 + 2 = 38 float32; gradients the same
    assert mem.weights == {"float32": 38 * 4} and mem.gradients == 38 * 4
    saved = dict(mem.saved)
    # saved for the backward pass: h's output after the ReLU (2 x 4
    # float32), which out's kernel gradient and the ReLU's gradient
    # (threshold_backward) read; the loss keeps at least y - t (2 x 2)
    assert saved["h"] == 2 * 4 * 4
    assert saved["(loss)"] >= 2 * 2 * 4 and set(saved) == {"h", "(loss)"}


keras_hub = pytest.importorskip("keras_hub", reason="pip install --no-deps keras-hub (see the README)")
L, d, F, V = 2, 8, 16, 10  # layers, width, FFN width, vocabulary


def test_a_task_around_a_weightless_backbone_allocates_nothing():
    # Keras on PyTorch reads every variable of a model it builds, for its
    # torch Parameters: the backbone's deferred variables read as meta zeros
    with keras_flops.without_weights():
        backbone = keras_hub.models.LlamaBackbone(vocabulary_size=V, num_layers=L, num_query_heads=2,
                                                  num_key_value_heads=2, hidden_dim=d, intermediate_dim=F)
    lm = keras_hub.models.LlamaCausalLM(backbone=backbone, preprocessor=None)
    devices = {p.device.type for p in lm.torch_params.values()}
    assert devices == {"meta"}
    assert not any(_compat.is_allocated(v) for v in backbone.variables)
    gen = keras_flops.profile_generation(lm, prompt_length=4, max_length=8)
    assert gen.prefill.uncounted == gen.decode.uncounted == ()


def test_gpt2_generation_and_sweep_on_torch():
    S, prompt = 10, 4
    # with its (few) weights: Keras on PyTorch cannot build a task around a
    # backbone without weights that has a dropout's seed (an integer variable
    # it tracks as a torch Parameter); profiling reads none of them
    backbone = keras_hub.models.GPT2Backbone(vocabulary_size=V, num_layers=L, num_heads=2, hidden_dim=d,
                                             intermediate_dim=F, max_sequence_length=64)
    lm = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
    gen = keras_flops.profile_generation(lm, prompt_length=prompt, max_length=S)
    # one decode step: QKV and output projections 4d^2, scores and values
    # over the S cached positions 2Sd, the FFN 2dF, per layer; the LM head d x V
    decode = L * (4 * d * d + 2 * S * d + 2 * d * F) + d * V
    assert gen.decode.macs == decode == 1424
    prefill = L * (4 * S * d * d + 2 * S * S * d + 2 * S * d * F)
    assert gen.prefill.macs == prefill == 13440
    assert gen.prefill.uncounted == gen.decode.uncounted == ()
    sweep = keras_flops.sweep(backbone, sequence_length=[4, 8])
    # per layer 4 S d^2 + 2 S^2 d + 2 S d F
    assert [r.macs for r in sweep.reports] == [L * (4 * s * d * d + 2 * s * s * d + 2 * s * d * F) for s in (4, 8)]


def test_every_backward_op_of_a_gemma_step_is_in_a_layer():
    """Gemma's blocks run an op in place on a view: PyTorch gives the view's
    base a node of its own, and replays the view's, which no recorded op
    made. Their backward ops (a multiply of 160 values, the slice copies)
    go to the layer of the op that made their input, not outside every
    layer: each block's step is its own, as on JAX and TensorFlow."""
    from test_chains import B, deep_task

    model, shape = deep_task("GemmaCausalLM")
    step = keras_flops.profile(model, batch_size=B, input_shape=shape, training=True, warn=False, reuse=False)
    outside = [op for op in step.ops if op.phase == "backward" and op.layer == "(model)"]
    assert outside == []
