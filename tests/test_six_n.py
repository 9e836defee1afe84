"""The "6N" rule as a specification: a language model's training step is
three forward passes of multiply-accumulates. Every matmul has a kernel
gradient and an input gradient, each as costly as the matmul; the attention
products have one per operand; the token embedding's lookup has no matmul to
differentiate. Runs on TensorFlow here, and on JAX in the JAX suite
(tests/jax_suite/test_six_n_jax.py imports these tests).
"""

import pytest

import keras_flops

keras_hub = pytest.importorskip("keras_hub", reason="pip install --no-deps keras-hub (see the README)")
models = keras_hub.models

B, T, V, L, d = 2, 6, 10, 2, 8  # batch, tokens, vocabulary, layers, width
SHAPES = {"token_ids": (T,), "padding_mask": (T,)}


def step(lm):
    return keras_flops.profile(lm, batch_size=B, input_shape=SHAPES, training=True, warn=False)


def test_gpt2_training_is_three_forward_passes():
    H, F = 2, 16
    backbone = models.GPT2Backbone(vocabulary_size=V, num_layers=L, num_heads=H, hidden_dim=d,
                                   intermediate_dim=F, max_sequence_length=T)
    report = step(models.GPT2CausalLM(backbone=backbone, preprocessor=None))
    # per layer and sample: q, k, v, o projections 4 T d^2, scores and
    # weighted values 2 T^2 d, the FFN 2 T d F; then the tied LM head T d V
    per_layer = 4 * T * d * d + 2 * T * T * d + 2 * T * d * F
    forward = B * (L * per_layer + T * d * V)
    assert per_layer == 1536 + 576 + 1536
    assert report.macs == forward == 2 * (2 * 3648 + 480) == 15552
    # every one of those products has two gradients: kernel and input for
    # the projections, the FFN and the head (whose kernel is the embedding);
    # one per operand for the two attention products
    assert report.backward_macs == 2 * forward
    assert report.macs + report.backward_macs == 3 * forward == 46656


def test_llama_training_is_three_forward_passes_but_rope():
    H, KV, F = 4, 2, 12
    hd = d // H
    backbone = models.LlamaBackbone(vocabulary_size=V, num_layers=L, num_query_heads=H,
                                    num_key_value_heads=KV, hidden_dim=d, intermediate_dim=F)
    report = step(models.LlamaCausalLM(backbone=backbone, preprocessor=None))
    projections = 2 * T * d * (H * hd) + 2 * T * d * (KV * hd)  # q and o; k and v
    attention = 2 * H * T * T * hd  # scores and weighted values, every query head
    swiglu = 3 * T * d * F  # gate, up, down
    # the rotary embedding's positions x inverse frequencies (once for q, once
    # for k): made from constants, no gradient, and not per sample
    rope = 2 * T * (hd // 2)
    per_layer = projections + attention + swiglu
    forward = B * (L * per_layer + T * d * V) + L * rope
    assert (per_layer, rope) == (768 + 384 + 576 + 1728, 12)
    assert report.macs == forward == 2 * (2 * 3456 + 480) + 24 == 14808
    # two gradients for every product but the rotary embedding's
    assert report.backward_macs == 2 * (forward - L * rope) == 29568
    assert report.macs + report.backward_macs == 3 * forward - 2 * L * rope
