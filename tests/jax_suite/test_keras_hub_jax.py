"""keras_hub on JAX: weightless configs and generation, worked by hand."""

import pytest

import keras_flops
from keras_flops import _compat
from test_generation import (  # noqa: F401  (will it fit, worked by hand: collected here, on JAX)
    test_llama2_7b_generation_memory_by_hand,
    test_llama2_7b_largest_training_batch_on_an_h100_and_an_l4,
    test_llama2_7b_longest_context_on_an_h100_and_an_l4,
)

keras_hub = pytest.importorskip("keras_hub", reason="pip install --no-deps keras-hub (see the README)")
models = keras_hub.models

L, d, F, V = 2, 8, 16, 10  # layers, width, FFN width, vocabulary


def gpt2_lm():
    with keras_flops.without_weights():
        backbone = models.GPT2Backbone(vocabulary_size=V, num_layers=L, num_heads=2, hidden_dim=d,
                                       intermediate_dim=F, max_sequence_length=64)
    return models.GPT2CausalLM(backbone=backbone, preprocessor=None)


def test_gpt2_generation_on_jax():
    S, prompt = 10, 4
    lm = gpt2_lm()
    gen = keras_flops.profile_generation(lm, prompt_length=prompt, max_length=S)
    # one decode step per sequence: one token through every layer (QKV and
    # output projections 4d^2, scores and values over the S cached positions
    # 2Sd, the FFN 2dF), then the LM head d x V
    decode = L * (4 * d * d + 2 * S * d + 2 * d * F) + d * V
    assert gen.decode.macs == decode == 1424
    prefill = L * (4 * S * d * d + 2 * S * S * d + 2 * S * d * F)
    assert gen.prefill.macs == prefill == 13440
    assert gen.macs == prefill + (S - prompt) * decode
    assert gen.prefill.uncounted == gen.decode.uncounted == ()
    assert not any(_compat.is_allocated(v) for v in lm.backbone.variables)


def test_weightless_llama_backbone_is_the_transformer_formula():
    S, H, KV, F2 = 6, 4, 2, 12  # tokens, query heads, key/value heads, FFN width
    with keras_flops.without_weights():
        backbone = models.LlamaBackbone(vocabulary_size=V, num_layers=L, num_query_heads=H,
                                        num_key_value_heads=KV, hidden_dim=d, intermediate_dim=F2)
    report = keras_flops.profile(backbone, input_shape={"token_ids": (S,), "padding_mask": (S,)})
    head = d // H
    # per layer: Q and O projections 2 S d^2, K and V S d (KV x head) each,
    # scores and values 2 S^2 d, the gated FFN 3 S d F, and the rotary
    # embedding's positions x inverse frequencies, once for q and once for k
    rope = 2 * S * (head // 2)
    per_layer = 2 * S * d * d + 2 * S * d * KV * head + 2 * S * S * d + 3 * S * d * F2 + rope
    assert per_layer == 768 + 384 + 576 + 1728 + 12
    assert report.macs == L * per_layer == 6936  # as the TensorFlow suite's Llama test
    assert report.uncounted == ()
    assert not any(_compat.is_allocated(v) for v in backbone.variables)


def test_decode_reads_every_weight_and_the_whole_cache_once():
    import traffic_cases

    traffic_cases.check_decode_reads_every_weight_and_the_cache_once()
