"""Compulsory bytes, MACs by dtype and per-dtype rooflines on TensorFlow, by
hand (tests/traffic_cases.py holds the cases JAX runs too)."""

import keras
import pytest

import keras_flops
import traffic_cases as cases
from keras_flops.core import hardware


def test_variables_are_as_counted():
    cases.check_variables_are_as_counted()


@pytest.mark.parametrize("mode", ["float32", "int8", "int4"])
def test_min_bytes_by_hand(mode):
    cases.check_min_bytes_by_hand(mode)


def test_min_bytes_fall_with_the_bit_width():
    cases.check_min_bytes_fall_with_the_bit_width()


def test_int8_macs_are_labelled():
    cases.check_int8_macs_are_labelled()


def test_the_roofline_reads_compulsory_bytes_and_each_layers_dtype_peak():
    report = keras_flops.profile(cases.dense_model("int8"), batch_size=cases.BATCH, warn=False)
    df = report.roofline("H100")
    # d: its MACs run in int8, at the H100's 1,978.9 TOPS; 5,376 compulsory bytes at 3,350 GB/s
    assert df.loc["d", "peak_tflops"] == 1978.9 and df.loc["d", "min_bytes"] == 5376
    flops = report.to_dataframe().loc["d", "flops"]
    assert df.loc["d", "time_s"] == pytest.approx(max(flops / 1978.9e12, 5376 / 3350e9))
    assert df.loc["d", "bound"] == "memory" and df.attrs["traffic"] == "min"
    unfused = report.roofline("H100", traffic="unfused")
    assert unfused.loc["d", "bytes"] == report.to_dataframe().loc["d", "bytes"]
    assert unfused.attrs["time_s"] > df.attrs["time_s"]
    # a Device given as such has one peak for every layer
    device = keras_flops.Device(peak_tflops=1.0, bandwidth_gbps=1.0)
    assert set(report.roofline(device)["peak_tflops"]) == {1.0}
    with pytest.raises(ValueError, match="traffic must be"):
        report.roofline("H100", traffic="fused")


@pytest.mark.parametrize("name, dtype, peak", [
    ("NVIDIA H100 80GB HBM3", "int8", 1978.9), ("NVIDIA H100 80GB HBM3", "float8_e4m3fn", 1978.9),
    ("NVIDIA H100 PCIe", "int8", 1513.0), ("NVIDIA A100-SXM4-80GB", "int8", 624.0),
    ("NVIDIA A100-SXM4-80GB", "float8_e4m3fn", None),  # no float8 on the A100: no guess
    ("NVIDIA L4", "float8_e5m2", 242.5), ("Tesla T4", "int8", 130.0),
])
def test_int8_and_float8_peaks(name, dtype, peak):
    # the datasheets' "with sparsity" figures, halved: H100 SXM 3,958 -> 1,978.9, ...
    assert hardware.peak_tflops(name, dtype) == peak


def test_summary_min_bytes_column(capsys):
    model = cases.dense_model("int8")
    keras_flops.summary(model, batch_size=cases.BATCH, columns=("flops", "min_bytes"), raw_counts=True)
    out = capsys.readouterr().out
    assert "MinBytes" in out and "5,376" in out and "2,176" in out


def test_quantized_layers_keep_their_rows():
    # a quantized layer runs quantized_call in place of call: its ops are still its own
    report = keras_flops.profile(cases.dense_model("int4"), batch_size=cases.BATCH, warn=False)
    assert [r.path for r in report.layers] == ["d", "e"]
    assert not any(op.layer == "(model)" for op in report.ops)


def test_mfus_peak_weighs_each_dtype():
    # an A100: int8 at 624 TOPS, float32 at 19.5 TFLOP/s (156 as TF32). The int8 model's
    # matmuls' FLOPs run at 624, its float32 elementwise work (quantizing the inputs,
    # the scales, the bias) at float32's: total / (int8 FLOPs / 624 + other FLOPs / float32's)
    report = keras_flops.profile(cases.dense_model("int8"), batch_size=cases.BATCH, warn=False)
    int8 = sum(op.flops for op in report.ops if op.mac_dtype == "int8")
    other = report.flops - int8
    assert int8 == 2 * cases.MACS and other > 0
    for tf32, float32 in ((False, 19.5), (True, 156.0)):
        expected = report.flops / (int8 / 624.0 + other / float32)
        peak = hardware.effective_peak("NVIDIA A100-SXM4-80GB", report.ops, "float32", tf32)
        assert peak == pytest.approx(expected)
        assert float32 < peak < 624.0
    # a float32 model runs at the float32 peak alone
    float32_report = keras_flops.profile(cases.dense_model("float32"), batch_size=cases.BATCH, warn=False)
    assert hardware.effective_peak("NVIDIA A100-SXM4-80GB", float32_report.ops, "float32") == 19.5
    assert hardware.effective_peak("NVIDIA RTX 4090", report.ops, "float32") is None  # no table: no guess


def test_a_quantized_dtype_policy_without_weights():
    # Dense(64 -> 32) built with the int8_from_float32 policy under without_weights():
    # no weight allocated, the same 5,376 compulsory bytes and int8 MACs as model.quantize
    from keras_flops import _compat

    with keras_flops.without_weights():
        model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, name="d", dtype="int8_from_float32")])
    report = keras_flops.profile(model, batch_size=cases.BATCH, warn=False)
    assert report.to_dataframe().loc["d", "min_bytes"] == cases.DENSE_64_32["int8"]
    assert report.macs_by_dtype == {"int8": 8 * 64 * 32}
    assert not any(_compat.is_allocated(v) for v in model.variables)


def test_a_small_cnn_by_hand():
    # batch 2, 16x16x3 float32 images: Conv2D(8, 3) -> BatchNormalization -> ReLU ->
    # MaxPooling2D -> Flatten -> Dense(10); each layer's inputs, outputs and weights once
    model = keras.Sequential([
        keras.Input((16, 16, 3)), keras.layers.Conv2D(8, 3, name="c"), keras.layers.BatchNormalization(name="bn"),
        keras.layers.ReLU(name="r"), keras.layers.MaxPooling2D(name="p"), keras.layers.Flatten(name="f"),
        keras.layers.Dense(10, name="d")])
    image, act, pooled = 2 * 16 * 16 * 3 * 4, 2 * 14 * 14 * 8 * 4, 2 * 7 * 7 * 8 * 4
    expected = {
        "c": image + 3 * 3 * 3 * 8 * 4 + 8 * 4 + act,  # image, kernel, bias, activation
        "bn": act + 4 * 8 * 4 + act,  # gamma, beta, moving mean and variance
        "r": act + act,
        "p": act + pooled,
        "f": 0,  # a reshape: a view, nothing moves
        "d": pooled + 392 * 10 * 4 + 10 * 4 + 2 * 10 * 4,
    }
    assert expected == {"c": 19584, "bn": 25216, "r": 25088, "p": 15680, "f": 0, "d": 18936}
    report = keras_flops.profile(model, batch_size=2, warn=False)
    assert report.to_dataframe()["min_bytes"].to_dict() == expected
