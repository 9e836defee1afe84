"""A length past a model's maximum is refused, on every backend, with the
model's own reason: a count for an input the model cannot take would be
silently wrong. TensorFlow's graph accepts a slice past a position
embedding's end and fails only when it runs; JAX refuses it while tracing.
Runs on TensorFlow here and on JAX in the JAX suite
(tests/jax_suite/test_max_length_jax.py imports these tests)."""

import pytest

import keras_flops

keras_hub = pytest.importorskip("keras_hub", reason="pip install --no-deps keras-hub (see the README)")
import hub_zoo  # noqa: E402

# The zoo's backbones with a learned position embedding of max_sequence_length
# rows; those with rotary or relative positions (DeBERTa-v3, ESM, GPT-NeoX,
# Phi-3) take longer inputs.
LEARNED_POSITIONS = ("AlbertBackbone", "BertBackbone", "DistilBertBackbone", "ElectraBackbone",
                     "FNetBackbone", "GPT2Backbone", "OPTBackbone", "RobertaBackbone",
                     "XLMRobertaBackbone")


def gpt2(max_length=64):
    with keras_flops.without_weights():
        return keras_hub.models.GPT2Backbone(vocabulary_size=11, num_layers=1, num_heads=2, hidden_dim=8,
                                             intermediate_dim=16, max_sequence_length=max_length)


def tokens(length):
    return {"token_ids": (length,), "padding_mask": (length,)}


def test_gpt2_counts_up_to_its_maximum_length():
    # 64 positions, one layer: 4 T d^2 + 2 T^2 d + 2 T d F
    T, d, F = 64, 8, 16
    assert keras_flops.profile(gpt2(), input_shape=tokens(T)).macs == 4 * T * d * d + 2 * T * T * d + 2 * T * d * F


def test_gpt2_refuses_a_longer_input():
    with pytest.raises(keras_flops.ProfileError) as caught:
        keras_flops.profile(gpt2(), input_shape=tokens(128))
    message = str(caught.value)
    assert "(1, 128)" in message  # the shapes tried
    assert "128" in message and "64" in message  # the model's own reason: 128 rows of 64
    assert "positionembedding" in message.lower().replace("_", "")  # where


def test_generation_and_sweeps_past_the_maximum_are_refused():
    lm = keras_hub.models.GPT2CausalLM(backbone=gpt2(), preprocessor=None)
    with pytest.raises(keras_flops.ProfileError, match="128"):
        keras_flops.profile_generation(lm, prompt_length=8, max_length=128)
    with pytest.raises(keras_flops.ProfileError, match="128"):
        keras_flops.sweep(gpt2(), sequence_length=[32, 128])


@pytest.mark.parametrize("name", LEARNED_POSITIONS)
def test_every_learned_position_embedding_refuses_one_position_more(name):
    longest = hub_zoo.ZOO[name]["config"]["config"]["max_sequence_length"]
    shapes = {k: (longest + 1,) for k in hub_zoo.input_shape(name)}
    with pytest.raises(keras_flops.ProfileError):
        keras_flops.profile(hub_zoo.build(name), input_shape=shapes, warn=False)
    at_most = {k: (longest,) for k in shapes}
    assert keras_flops.profile(hub_zoo.build(name), input_shape=at_most, warn=False).macs > 0
