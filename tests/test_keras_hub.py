"""keras_hub backbones: every one profiles with nothing uncounted, built without
weights; transformers' MACs equal the analytic formulas; mixtures of experts."""

import json

import keras
import pytest

import keras_flops
from keras_flops import _compat

keras_hub = pytest.importorskip("keras_hub", reason="pip install --no-deps keras-hub (see the README)")
models = keras_hub.models

from hub_zoo import BRANCHES_ON_VALUES, ZOO, build, input_shape  # noqa: E402

# Exported backbones with no zoo entry of their own, and why.
NOT_IN_ZOO = {
    "FeaturePyramidBackbone": "an abstract base class: it builds no model of its own",
    "ESM2Backbone": "the same class as ESMBackbone",
    "Qwen2Backbone": "the same class as QwenBackbone",
    "SmolLMBackbone": "the same class as SmolLM3Backbone",
}


def tokens(length):
    return {"token_ids": (length,), "padding_mask": (length,)}


def test_every_exported_backbone_is_in_the_zoo():
    exported = {n for n in dir(models) if n.endswith("Backbone") and n != "Backbone"}
    assert exported - set(ZOO) - set(NOT_IN_ZOO) == set()


@pytest.mark.parametrize("name", sorted(set(ZOO) - BRANCHES_ON_VALUES))
def test_backbone_profiles_with_nothing_uncounted(name):
    model = build(name)
    report = keras_flops.profile(model, input_shape=input_shape(name), warn=False)
    assert report.uncounted == (), report.uncounted_summary()
    assert report.flops > 0
    assert not any(_compat.is_allocated(v) for v in model.variables)  # no weight was allocated


def test_a_model_that_branches_on_an_input_value_names_its_parts():
    (name,) = BRANCHES_ON_VALUES
    with pytest.raises(keras_flops.ProfileError) as caught:
        keras_flops.profile(build(name), input_shape=input_shape(name), warn=False)
    message = str(caught.value)
    assert "branches in Python on the value of an input" in message
    assert "model.diffuser" in message and "model.vae" in message
    assert "input_shape=" not in message  # no advice that does not apply


# --------------------------------------------------------------------------
# Analytic MACs: T tokens, width d, L layers, FFN width F


def test_gpt2_is_the_transformer_formula():
    T, d, F, L = 5, 8, 16, 2
    with keras_flops.without_weights():
        model = models.GPT2Backbone(vocabulary_size=10, num_layers=L, num_heads=2, hidden_dim=d,
                                    intermediate_dim=F, max_sequence_length=12)
    # per layer: q, k, v, o projections 4 T d^2; scores and weighted values 2 T^2 d; FFN 2 T d F
    per_layer = 4 * T * d * d + 2 * T * T * d + 2 * T * d * F
    assert per_layer == 1280 + 400 + 1280
    assert keras_flops.profile(model, input_shape=tokens(T)).macs == L * per_layer == 5920


def test_bert_adds_its_pooler():
    T, d, F, L = 5, 8, 16, 2
    with keras_flops.without_weights():
        model = models.BertBackbone(vocabulary_size=10, num_layers=L, num_heads=2, hidden_dim=d,
                                    intermediate_dim=F, max_sequence_length=12)
    shapes = {"token_ids": (T,), "segment_ids": (T,), "padding_mask": (T,)}
    # the encoder as GPT-2's, plus the pooler: one d x d Dense on the first token
    expected = L * (4 * T * d * d + 2 * T * T * d + 2 * T * d * F) + d * d
    assert keras_flops.profile(model, input_shape=shapes).macs == expected == 5984


def test_llama_grouped_query_attention_swiglu_rope():
    T, d, F, L, H, KV = 6, 8, 12, 2, 4, 2
    hd = d // H  # head dim 2
    with keras_flops.without_weights():
        model = models.LlamaBackbone(vocabulary_size=10, num_layers=L, num_query_heads=H,
                                     num_key_value_heads=KV, hidden_dim=d, intermediate_dim=F)
    projections = T * d * (H * hd) * 2 + T * d * (KV * hd) * 2  # q and o; k and v (grouped)
    attention = 2 * H * T * T * hd  # scores and weighted values, every query head
    swiglu = 3 * T * d * F  # gate, up, down
    rope = 2 * T * (hd // 2)  # positions x inverse frequencies, once for q and once for k
    per_layer = projections + attention + swiglu + rope
    assert per_layer == (768 + 384) + 576 + 1728 + 12
    assert keras_flops.profile(model, input_shape=tokens(T)).macs == L * per_layer == 6936


def test_gemma_geglu_and_head_dim():
    T, d, F, L, H, KV, hd = 5, 8, 16, 2, 4, 2, 2
    with keras_flops.without_weights():
        model = models.GemmaBackbone(vocabulary_size=10, num_layers=L, num_query_heads=H,
                                     num_key_value_heads=KV, hidden_dim=d, intermediate_dim=F,
                                     head_dim=hd)
    projections = 2 * T * d * H * hd + 2 * T * d * KV * hd  # q, o; k, v
    attention = 2 * H * T * T * hd
    geglu = 3 * T * d * (F // 2)  # Gemma's FFN is F / 2 wide: gate, up, down
    rope = 2 * T * (hd // 2)
    per_layer = projections + attention + geglu + rope
    assert per_layer == 960 + 400 + 960 + 10
    assert keras_flops.profile(model, input_shape=tokens(T)).macs == L * per_layer == 4660


def test_t5_encoder_decoder():
    Te, Td, d, F, L, H, kv = 5, 3, 8, 16, 2, 2, 4
    inner = H * kv  # 8: the attention's width
    with keras_flops.without_weights():
        model = models.T5Backbone(vocabulary_size=10, num_layers=L, num_heads=H, hidden_dim=d,
                                  intermediate_dim=F, key_value_dim=kv)
    shapes = {"encoder_token_ids": (Te,), "encoder_padding_mask": (Te,),
              "decoder_token_ids": (Td,), "decoder_padding_mask": (Td,)}
    gated_ffn = 3  # T5 v1.1's gated FFN: two input matrices and one output
    encoder = 4 * Te * d * inner + 2 * H * Te * Te * kv + gated_ffn * Te * d * F
    decoder = (4 * Td * d * inner + 2 * H * Td * Td * kv  # self-attention
               + 2 * Td * d * inner + 2 * Te * d * inner + 2 * H * Td * Te * kv  # cross: q, o; k, v
               + gated_ffn * Td * d * F)
    assert (encoder, decoder) == (1280 + 400 + 1920, 768 + 144 + 384 + 640 + 240 + 1152)
    report = keras_flops.profile(model, input_shape=shapes)
    assert report.macs == L * (encoder + decoder) == 13856
    by_layer = report.to_dataframe(depth=1)["macs"]
    assert by_layer["transformer_encoder_layer_0"] == encoder
    assert by_layer["transformer_decoder_layer_0"] == decoder


# --------------------------------------------------------------------------
# Mixtures of experts: executed counts, and the active share


def test_mixtral_active_experts():
    T, d, F, E, k = 5, 8, 4, 4, 2
    with keras_flops.without_weights():
        model = models.MixtralBackbone(vocabulary_size=10, num_layers=1, num_query_heads=4,
                                       num_key_value_heads=2, hidden_dim=d, intermediate_dim=F,
                                       num_experts=E, top_k=k)
    report = keras_flops.profile(model, input_shape=tokens(T))
    df = report.to_dataframe()
    (bank,) = report.experts  # Keras may suffix the block's name: read its path from the report
    experts = bank.experts
    assert experts.endswith("/experts") and bank.path.startswith("transformer_layer_0/mixtral_sparse_moe_block")
    # every expert runs on every token: gate, up and down, d x F each
    assert df.loc[experts, "macs"] == E * T * 3 * d * F == 1920
    assert df.loc[experts, "active_macs"] == k * T * 3 * d * F == 960
    # the router is not an expert: T x d x E, counted as it runs
    router = f"{bank.path}/sparse_feedforward_gate_dense"
    assert df.loc[router, "macs"] == df.loc[router, "active_macs"] == T * d * E == 160
    assert report.active_macs == report.macs - 960
    assert report.active_flops == report.flops - df.loc[experts, "flops"] // 2
    assert any("mixture of experts" in n and f"{k}/{E}" in n for n in report.notes)
    assert [(e.num_experts, e.top_k) for e in report.experts] == [(E, k)]


def test_qwen3_moe_active_experts():
    # keras-hub's test config: d 16, expert width 16, 4 experts, top 2, 2 layers, 7 tokens
    report = keras_flops.profile(build("Qwen3MoeBackbone"), input_shape=input_shape("Qwen3MoeBackbone"))
    T, d, F, E, k = 7, 16, 16, 4, 2
    assert input_shape("Qwen3MoeBackbone")["token_ids"] == (T,)
    df = report.to_dataframe()
    experts = report.experts[0].experts
    assert experts.startswith("transformer_layer_0/qwen3_sparse_moe_block")
    assert df.loc[experts, "macs"] == E * T * 3 * d * F == 21504
    assert df.loc[experts, "active_macs"] == k * T * 3 * d * F == 10752
    assert report.macs - report.active_macs == 2 * (21504 - 10752)  # two layers
    assert report.to_dict()["totals"]["active_macs"] == report.active_macs


def test_dense_models_have_no_active_columns():
    report = keras_flops.profile(build("LlamaBackbone"), input_shape=input_shape("LlamaBackbone"))
    assert report.experts == () and "active_macs" not in report.to_dataframe()
    assert report.active_macs == report.macs


def small_llama():
    return models.LlamaBackbone(vocabulary_size=10, num_layers=2, num_query_heads=4,
                                num_key_value_heads=2, hidden_dim=8, intermediate_dim=12)


def test_from_preset_without_weights(tmp_path):
    # A preset directory as keras_hub writes it (config.json, weights, metadata),
    # loaded the documented way: its weights are never read nor allocated.
    preset = tmp_path / "llama_preset"
    small_llama().save_to_preset(str(preset))
    with keras_flops.without_weights():
        backbone = models.Backbone.from_preset(str(preset), load_weights=False)
    report = keras_flops.profile(backbone, input_shape=tokens(6))
    assert report.macs == 6936  # as test_llama_grouped_query_attention_swiglu_rope works out
    assert not any(_compat.is_allocated(v) for v in backbone.variables)


def test_cli_counts_a_preset_config(tmp_path, capsys):
    from keras_flops import cli

    preset = tmp_path / "llama_preset"
    small_llama().save_to_preset(str(preset))
    code = cli.main([str(preset / "config.json"), "--sequence-length", "6", "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["totals"]["macs"] == 6936


def test_weightless_llama_counts_as_the_allocated_one():
    keras.utils.set_random_seed(0)
    allocated = keras_flops.profile(small_llama(), input_shape=tokens(6)).to_dataframe()
    with keras_flops.without_weights():
        deferred = small_llama()
    weightless = keras_flops.profile(deferred, input_shape=tokens(6)).to_dataframe()
    # layer for layer, in call order (Keras may suffix the second model's layer names)
    assert weightless[["flops", "macs"]].values.tolist() == allocated[["flops", "macs"]].values.tolist()
    assert list(weightless["class"]) == list(allocated["class"])
