"""What generating costs (prefill, decode steps) and how cost grows (sweeps)."""

import json
import math

import keras
import pytest

import keras_flops
import traffic_cases
from keras_flops import _compat, cli

keras_hub = pytest.importorskip("keras_hub", reason="pip install --no-deps keras-hub (see the README)")
models = keras_hub.models

L, d, F, V = 2, 8, 16, 10  # layers, width, FFN width, vocabulary


def gpt2_lm(weightless=True):
    def backbone():
        return models.GPT2Backbone(vocabulary_size=V, num_layers=L, num_heads=2, hidden_dim=d,
                                   intermediate_dim=F, max_sequence_length=64)

    if weightless:
        with keras_flops.without_weights():
            bb = backbone()
    else:
        bb = backbone()
    return models.GPT2CausalLM(backbone=bb, preprocessor=None)  # the task compiles: outside the scope


def test_gpt2_prefill_and_decode_are_the_transformer_formulas():
    S, prompt = 10, 4  # cache length (max_length) and prompt
    gen = keras_flops.profile_generation(gpt2_lm(), prompt_length=prompt, max_length=S)
    # one step, per sequence: one token through every layer, attending over the whole
    # cache of S positions, then the LM head (d x V)
    decode = L * (4 * d * d + 2 * S * d + 2 * d * F) + d * V
    assert decode == 2 * (256 + 160 + 256) + 80 == 1424
    assert gen.decode.macs == decode
    # the prefill: the backbone over the prompt padded to S tokens (its logits are
    # computed by call_with_cache, but _build_cache returns no logits: not run)
    prefill = L * (4 * S * d * d + 2 * S * S * d + 2 * S * d * F)
    assert gen.prefill.macs == prefill == 13440
    assert gen.steps == S - prompt == 6
    assert gen.macs == prefill + 6 * decode
    assert gen.flops == gen.prefill.flops + 6 * gen.decode.flops
    assert gen.prefill.uncounted == gen.decode.uncounted == ()


def test_batch_scales_decode_and_tokens_are_per_sequence():
    gen = keras_flops.profile_generation(gpt2_lm(), prompt_length=4, max_length=10, batch_size=3)
    assert gen.decode.macs == 3 * 1424
    assert gen.macs_per_token == 1424 and gen.flops_per_token == gen.decode.flops / 3


def test_llama_decode_with_grouped_query_attention():
    H, KV, S, Fl = 4, 2, 12, 12
    hd = d // H
    with keras_flops.without_weights():
        bb = models.LlamaBackbone(vocabulary_size=V, num_layers=L, num_query_heads=H,
                                  num_key_value_heads=KV, hidden_dim=d, intermediate_dim=Fl)
    gen = keras_flops.profile_generation(models.LlamaCausalLM(backbone=bb, preprocessor=None),
                                         prompt_length=5, max_length=S)
    # per layer, one token: q and o d x H hd, k and v d x KV hd (grouped), attention
    # over S cached positions for every query head, SwiGLU, and RoPE for one position
    per_layer = 2 * d * H * hd + 2 * d * KV * hd + 2 * H * S * hd + 3 * d * Fl + 2 * (hd // 2)
    assert per_layer == 128 + 64 + 192 + 288 + 2
    assert gen.decode.macs == L * per_layer + d * V == 1428
    # the prefill: the Llama backbone over S tokens, as in test_keras_hub's formula
    prefill = L * (2 * S * d * H * hd + 2 * S * d * KV * hd + 2 * H * S * S * hd + 3 * S * d * Fl
                   + 2 * S * (hd // 2))
    assert gen.prefill.macs == prefill
    assert gen.prefill.uncounted == gen.decode.uncounted == ()


def test_decode_reads_every_weight_and_the_whole_cache_once():
    traffic_cases.check_decode_reads_every_weight_and_the_cache_once()


def test_llama2_7b_decode_on_an_h100_by_hand():
    # Llama-2-7B without weights, bfloat16 (2 bytes), batch 1, prompt 512, max_length 1024.
    # Parameters per layer: q, k, v, o 4 x 4096^2 + SwiGLU 3 x 4096 x 11008 + two norms 2 x 4096
    per_layer = 4 * 4096**2 + 3 * 4096 * 11008 + 2 * 4096
    params = 32 * per_layer + 4096 + 2 * 32000 * 4096  # + final norm, embedding, output projection
    assert params == 6_738_415_616
    # a decode step reads every weight once, of the embedding table only the token's row,
    # and the whole cache: keys and values of 32 layers x 1,024 positions x 4,096
    cache = 2 * 32 * 1024 * 4096 * 2
    analytic = (params - 32000 * 4096 + 4096) * 2 + cache
    assert (cache, analytic) == (536_870_912, 13_751_566_336)
    with keras_flops.without_weights():
        bb = models.LlamaBackbone(vocabulary_size=32000, num_layers=32, num_query_heads=32,
                                  num_key_value_heads=32, hidden_dim=4096, intermediate_dim=11008,
                                  dtype="bfloat16")
    gen = keras_flops.profile_generation(models.LlamaCausalLM(backbone=bb, preprocessor=None),
                                         prompt_length=512, max_length=1024)
    assert gen.kv_cache_bytes == cache
    assert analytic <= gen.decode.min_bytes <= 1.02 * analytic
    # on an H100 at 3.35 TB/s: 13.75 GB / 3.35e12 B/s = 4.1 ms per token, about 243 tokens/s
    roof = gen.roofline("H100")
    assert roof.decode_bound == "memory" and roof.prefill_bound == "compute"
    assert roof.decode_step_s == pytest.approx(gen.decode.min_bytes / 3.35e12, rel=0.005)
    assert 238 < roof.tokens_per_s < 244


GIB = 2 ** 30
LLAMA2_7B_PARAMS = 6_738_415_616  # worked out in test_llama2_7b_decode_on_an_h100_by_hand


def llama2_7b_lm():
    with keras_flops.without_weights():
        bb = models.LlamaBackbone(vocabulary_size=32000, num_layers=32, num_query_heads=32,
                                  num_key_value_heads=32, hidden_dim=4096, intermediate_dim=11008,
                                  dtype="bfloat16")
    return models.LlamaCausalLM(backbone=bb, preprocessor=None)


def context_bounds(capacity: int):
    """The longest context of a weightless Llama-2-7B (bfloat16, batch 1) on a
    device of ``capacity`` bytes, bounded by hand. It needs its weights W, its
    cache (keys and values, 32 layers x 32 heads x 128, bfloat16: 524,288 B a
    token) and, in the prefill, the attention scores of one layer in float32
    (32 heads x L^2 x 4 B = 128 L^2): at least two of them live at once (the
    softmax's input and output), at most four. Solved for L, in integers."""
    free = capacity - 2 * LLAMA2_7B_PARAMS
    per_token = 2 * 32 * 32 * 128 * 2
    assert per_token == 524_288

    def longest(buffers):  # the largest L with buffers x 128 L^2 + per_token L <= free
        a = buffers * 128
        root = (math.isqrt(per_token ** 2 + 4 * a * free) - per_token) // (2 * a)
        while a * (root + 1) ** 2 + per_token * (root + 1) <= free:
            root += 1
        return root

    return longest(4), longest(2)


def test_llama2_7b_generation_memory_by_hand():
    gen = keras_flops.profile_generation(llama2_7b_lm(), prompt_length=1, max_length=4096)
    # keys and values of 32 layers x 4,096 positions x 32 heads x 128, in bfloat16: 2 GiB
    assert gen.kv_cache_bytes == 2 * 32 * 4096 * 32 * 128 * 2 == 2 * GIB
    memory = gen.memory
    assert memory.weights == {"bfloat16": 2 * LLAMA2_7B_PARAMS}
    assert (memory.kv_cache, memory.inputs) == (2 * GIB, 4096 * 4)  # and the int32 token ids
    scores = 32 * 4096 * 4096 * 4  # one layer's attention scores in float32: 2 GiB
    assert 2 * scores <= memory.transient <= 4 * scores
    assert memory.peak == 2 * LLAMA2_7B_PARAMS + 2 * GIB + 4096 * 4 + memory.transient
    assert memory.fits("L4") and memory.fits("H100").margin > 50 * GIB


def test_llama2_7b_longest_context_on_an_h100_and_an_l4():
    lm = llama2_7b_lm()
    # H100: between 11,392 and 15,826 tokens; L4: between 4,414 and 5,980
    assert context_bounds(80 * GIB) == (11_392, 15_826) and context_bounds(24 * GIB) == (4_414, 5_980)
    for device, capacity in (("H100", 80 * GIB), ("L4", 24 * GIB)):
        low, high = context_bounds(capacity)
        assert low <= keras_flops.largest_context(lm, device) <= high


def test_llama2_7b_largest_training_batch_on_an_h100_and_an_l4():
    lm = llama2_7b_lm()
    shape = {"token_ids": (512,), "padding_mask": (512,)}
    # weights, gradients and Adam's two slots, all bfloat16: 4 x 13.48 GB = 53.9 GB
    state = 4 * 2 * LLAMA2_7B_PARAMS
    assert 24 * GIB < state < 80 * GIB
    assert keras_flops.largest_batch(lm, "L4", shape, optimizer="adam") == 0  # the state alone fills an L4
    best = keras_flops.largest_batch(lm, "H100", shape, optimizer="adam")
    one = keras_flops.memory(lm, 1, shape, optimizer="adam")
    scalars = {"tensorflow": 8 + 4, "jax": 4 + 4}[keras.config.backend()]  # Adam's counter, its learning rate
    assert (one.weight_bytes, one.gradients, one.optimizer_state) == (
        2 * LLAMA2_7B_PARAMS, 2 * LLAMA2_7B_PARAMS, 4 * LLAMA2_7B_PARAMS + scalars)
    # each sequence of 512 tokens adds its activations: the answer is what is left over them
    per_sequence = keras_flops.memory(lm, 2, shape, optimizer="adam").peak - one.peak
    assert best == (80 * GIB - (one.peak - per_sequence)) // per_sequence >= 1


def test_generation_roofline_plot(tmp_path):
    pytest.importorskip("matplotlib")
    gen = keras_flops.profile_generation(gpt2_lm(), prompt_length=4, max_length=10)
    fig = gen.plot("H100", path=tmp_path / "gen.png")
    assert (tmp_path / "gen.png").read_bytes()[:4] == b"\x89PNG"
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert any(label.startswith("prefill") for label in labels)
    assert any(label.startswith("decode") for label in labels)


def test_generation_table_and_notes():
    gen = keras_flops.profile_generation(gpt2_lm(), prompt_length=4, max_length=10)
    df = gen.to_dataframe()
    assert {"flops_prefill", "flops_decode", "flops_total", "macs_total"} <= set(df.columns)
    assert df["macs_total"].sum() == gen.macs
    assert df.loc["(sampler)", "macs_decode"] == 0 and df.loc["(sampler)", "flops_decode"] > 0
    assert "pads the prompt to max_length" in gen.notes[0]
    text = str(gen)
    assert "6 steps" in text and f"{gen.flops:,}" in text
    assert json.loads(json.dumps(gen.to_dict()))["steps"] == 6


def test_weightless_generation_allocates_nothing():
    lm = gpt2_lm()
    keras_flops.profile_generation(lm, prompt_length=4, max_length=10)
    assert not any(_compat.is_allocated(v) for v in lm.backbone.variables)


def test_same_counts_with_weights():
    a = keras_flops.profile_generation(gpt2_lm(weightless=False), prompt_length=4, max_length=10)
    b = keras_flops.profile_generation(gpt2_lm(), prompt_length=4, max_length=10)
    assert (a.prefill.flops, a.decode.flops) == (b.prefill.flops, b.decode.flops)


def test_a_model_without_a_cache_protocol_is_named():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(TypeError, match="has no call_with_cache and no _build_cache"):
        keras_flops.profile_generation(model, prompt_length=2, max_length=4)


@pytest.mark.parametrize("prompt, max_length", [(0, 4), (5, 4), (2, 1.5)])
def test_bad_lengths(prompt, max_length):
    with pytest.raises(ValueError):
        keras_flops.profile_generation(gpt2_lm(), prompt_length=prompt, max_length=max_length)


def test_cli_generate(tmp_path, capsys):
    models.GPT2Backbone(vocabulary_size=V, num_layers=L, num_heads=2, hidden_dim=d,
                        intermediate_dim=F, max_sequence_length=64).save_to_preset(str(tmp_path / "p"))
    code = cli.main([str(tmp_path / "p" / "config.json"), "--generate", "4:10", "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(out)
    assert (data["steps"], data["decode"]["totals"]["macs"]) == (6, 1424)
    assert data["macs"] == 13440 + 6 * 1424
    code = cli.main([str(tmp_path / "p" / "config.json"), "--generate", "4:10", "--device", "H100"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Roofline on H100" in out and "memory-bound" in out and "tokens/s" in out
    code = cli.main([str(tmp_path / "p" / "config.json"), "--generate", "4:10", "--plot", "x.png"])
    assert code == 2 and "--plot" in capsys.readouterr().err


# --------------------------------------------------------------------------
# Sweeps


def gpt2_backbone():
    with keras_flops.without_weights():
        return models.GPT2Backbone(vocabulary_size=V, num_layers=L, num_heads=2, hidden_dim=d,
                                   intermediate_dim=F, max_sequence_length=64)


def test_sequence_sweep_fits_the_transformer_polynomial():
    sweep = keras_flops.sweep(gpt2_backbone(), sequence_length=[8, 16, 32, 64])
    fit = sweep.fit("macs", depth=1)
    # per layer 4 T d^2 + 2 T^2 d + 2 T d F MACs: linear 4 d^2 + 2 d F = 512, quadratic 2 d = 16
    layer = fit.loc["transformer_layer_0"]
    assert (layer["constant"], layer["linear"], layer["quadratic"]) == (0, 4 * d * d + 2 * d * F, 2 * d)
    assert (layer["linear"], layer["quadratic"]) == (512, 16)
    assert fit.loc["(total)", "quadratic"] == L * 2 * d
    # the quadratic term is attention's: its scores and weighted values
    per_layer = sweep.fit("macs")
    attention = "transformer_layer_0/self_attention"
    assert per_layer.loc[attention, "grows"] == "quadratically"
    assert per_layer.loc["transformer_layer_0/feedforward_intermediate_dense", "grows"] == "linearly"
    assert attention in sweep.quadratic_layers()
    df = sweep.to_dataframe()
    assert list(df.index) == [8, 16, 32, 64]
    assert df[("(total)", "macs")].tolist() == [L * (4 * T * d * d + 2 * T * T * d + 2 * T * d * F)
                                                for T in (8, 16, 32, 64)]


def test_batch_sweep_is_linear():
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, name="d")])
    fit = keras_flops.sweep(model, batch_size=[1, 2, 4]).fit()
    # Dense 5 -> 3: 2 x 5 x 3 + 3 = 33 FLOPs per sample
    assert (fit.loc["d", "constant"], fit.loc["d", "linear"], fit.loc["d", "quadratic"]) == (0, 33, 0)
    assert fit.loc["d", "grows"] == "linearly"


def test_image_size_sweep():
    model = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(2, 1, use_bias=False, name="c")])
    df = keras_flops.sweep(model, image_size=[4, 8]).to_dataframe()
    # 1x1 conv, 3 -> 2 channels: 2 x 3 x 2 = 12 FLOPs per pixel
    assert df[("c", "flops")].tolist() == [12 * 16, 12 * 64]


def test_sweep_errors():
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="exactly one"):
        keras_flops.sweep(model, batch_size=[1], sequence_length=[2])
    with pytest.raises(keras_flops.InputShapeError, match="no unknown input dims"):
        keras_flops.sweep(model, sequence_length=[2, 4])
    with pytest.raises(ValueError, match="positive ints"):
        keras_flops.sweep(model, batch_size=[0])


def test_sweep_plot(tmp_path):
    path = tmp_path / "sweep.png"
    fig = keras_flops.sweep(gpt2_backbone(), sequence_length=[8, 16]).plot(path=path, top=3)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (ax,) = fig.axes
    assert len(ax.lines) == 4  # the total and three layers
    from matplotlib.ticker import EngFormatter

    assert isinstance(ax.yaxis.get_major_formatter(), EngFormatter)  # counts in K, M, G, T


def test_generation_reports_know_the_compute_dtype():
    # a roofline of a decode step needs the dtype the model computes in
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        lm = gpt2_lm()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    gen = keras_flops.profile_generation(lm, prompt_length=4, max_length=10)
    assert gen.prefill.compute_dtype == gen.decode.compute_dtype == "bfloat16"
