"""Compulsory bytes (``min_bytes``) and MACs by dtype of Keras's own
quantization, worked out by hand from the variables Keras creates; the same
checks run on TensorFlow (tests/test_traffic.py) and JAX
(tests/jax_suite/test_traffic_jax.py)."""

import keras

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
