"""Compulsory bytes (``min_bytes``) and MACs by dtype of Keras's own
quantization, worked out by hand from the variables Keras creates; the same
checks run on TensorFlow (tests/test_traffic.py) and JAX
(tests/jax_suite/test_traffic_jax.py)."""

import math

import keras
import pytest

import keras_flops

BATCH = 8
F32, I8 = 4, 1  # bytes per element

# Dense(64 -> 32) at batch 8: its input and output once, its weights once at their stored width
DENSE_64_32 = {
    # input, kernel, bias, output
    "float32": 8 * 64 * F32 + 64 * 32 * F32 + 32 * F32 + 8 * 32 * F32,  # 11,392
    # input, int8 kernel, float32 per-unit kernel_scale, bias, output
    "int8": 8 * 64 * F32 + 64 * 32 * I8 + 32 * F32 + 32 * F32 + 8 * 32 * F32,  # 5,376
    # input, int4 kernel packed two to a byte (64, 16) int8, kernel_scale (1, 32) float32,
    # kernel_zero (1, 32) int8, g_idx (64,) float32, bias, output
    "int4": 8 * 64 * F32 + 64 * 16 * I8 + 32 * F32 + 32 * I8 + 64 * F32 + 32 * F32 + 8 * 32 * F32,  # 4,640
}
# Dense(32 -> 16) at batch 8, the same way
DENSE_32_16 = {
    "float32": 8 * 32 * F32 + 32 * 16 * F32 + 16 * F32 + 8 * 16 * F32,  # 3,648
    "int8": 8 * 32 * F32 + 32 * 16 * I8 + 16 * F32 + 16 * F32 + 8 * 16 * F32,  # 2,176
    "int4": 8 * 32 * F32 + 32 * 8 * I8 + 16 * F32 + 16 * I8 + 32 * F32 + 16 * F32 + 8 * 16 * F32,  # 2,064
}
MACS = 8 * 64 * 32 + 8 * 32 * 16  # 16,384 + 4,096


def dense_model(mode: str):
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, name="d"), keras.layers.Dense(16, name="e")])
    if mode != "float32":
        model.quantize(mode)
    return model


def stored(layer) -> dict:
    """{variable name: (dtype, shape)} of a layer: what the hand counts read."""
    return {v.path.rpartition("/")[2]: (str(v.dtype), tuple(v.shape)) for v in layer.variables}


def check_variables_are_as_counted():
    assert stored(dense_model("int8").get_layer("d")) == {
        "kernel": ("int8", (64, 32)), "kernel_scale": ("float32", (32,)), "bias": ("float32", (32,))}
    assert stored(dense_model("int4").get_layer("d")) == {
        "kernel": ("int8", (64, 16)), "kernel_scale": ("float32", (1, 32)), "kernel_zero": ("int8", (1, 32)),
        "g_idx": ("float32", (64,)), "bias": ("float32", (32,))}


def check_min_bytes_by_hand(mode: str):
    report = keras_flops.profile(dense_model(mode), batch_size=BATCH, warn=False)
    table = report.to_dataframe()
    assert table.loc["d", "min_bytes"] == DENSE_64_32[mode]
    assert table.loc["e", "min_bytes"] == DENSE_32_16[mode]
    assert report.min_bytes == DENSE_64_32[mode] + DENSE_32_16[mode]
    assert report.to_dict()["totals"]["min_bytes"] == report.min_bytes
    return report


def check_min_bytes_fall_with_the_bit_width():
    reports = {mode: keras_flops.profile(dense_model(mode), batch_size=BATCH, warn=False)
               for mode in ("float32", "int8", "int4")}
    assert reports["float32"].min_bytes > reports["int8"].min_bytes > reports["int4"].min_bytes
    # the unfused upper bound counts every quantize, dequantize and unpack step: it rises
    assert reports["float32"].bytes < reports["int8"].bytes < reports["int4"].bytes


def check_int8_macs_are_labelled():
    report = keras_flops.profile(dense_model("int8"), batch_size=BATCH, warn=False)
    assert report.macs == MACS
    assert report.macs_by_dtype == {"int8": MACS}
    assert list(report.to_dataframe()["mac_dtype"]) == ["int8", "int8"]
    assert report.to_dict()["layers"][0]["mac_dtype"] == "int8"
    float32 = keras_flops.profile(dense_model("float32"), batch_size=BATCH, warn=False)
    assert float32.macs_by_dtype == {"float32": MACS}


def check_decode_reads_every_weight_and_the_cache_once():
    # Llama, width 256 (4 heads of 64, 2 key/value heads), FFN 512, vocabulary 1000,
    # 2 layers, float32, batch 1, prompt 16, max_length 32
    import keras_hub

    Lw, dw, H, KV, Fw, Vw, S = 2, 256, 4, 2, 512, 1000, 32
    hd = dw // H
    with keras_flops.without_weights():
        bb = keras_hub.models.LlamaBackbone(vocabulary_size=Vw, num_layers=Lw, num_query_heads=H, num_key_value_heads=KV,
                                  hidden_dim=dw, intermediate_dim=Fw, dtype="float32")
    gen = keras_flops.profile_generation(keras_hub.models.LlamaCausalLM(backbone=bb, preprocessor=None),
                                         prompt_length=16, max_length=S)
    # the cache: keys and values of every layer for all S positions of every key/value head
    assert gen.kv_cache_bytes == 2 * Lw * S * KV * hd * 4 == 65_536
    # every weight once: q and o d x d, k and v d x KV hd, SwiGLU 3 d F, two norms, per layer;
    # the final norm; the output projection d x V; of the embedding table, the token's row
    per_layer = (2 * dw * dw + 2 * dw * KV * hd + 3 * dw * Fw + 2 * dw) * 4
    weights = Lw * per_layer + dw * 4 + dw * Vw * 4 + dw * 4
    assert weights == sum(4 * math.prod(w.shape) for w in bb.weights) - Vw * dw * 4 + dw * 4
    analytic = weights + gen.kv_cache_bytes  # plus activations between layers: a few KB
    assert analytic <= gen.decode.min_bytes <= 1.02 * analytic
    # on an H100, 3,350 GB/s: a memory-bound decode step of about min_bytes / bandwidth
    roof = gen.roofline("H100")
    assert roof.decode_bound == "memory"
    assert roof.decode_step_s == pytest.approx(gen.decode.min_bytes / 3350e9, rel=0.01)
    assert roof.tokens_per_s == pytest.approx(1 / roof.decode_step_s)
    assert roof.total_s == pytest.approx(roof.prefill_s + 16 * roof.decode_step_s)
    assert "tokens/s" in str(roof) and gen.to_dict(device="H100")["roofline"]["decode_bound"] == "memory"
