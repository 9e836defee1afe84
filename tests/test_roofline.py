"""Bytes moved, arithmetic intensity and the roofline, worked out by hand."""

import keras
import pytest

import keras_flops
from conftest import sequential

F32, F16, I32 = 4, 2, 4  # bytes per element


def op_bytes(report, op_type):
    return sum(op.bytes for op in report.ops if op.op_type == op_type)


def test_dense_worked_example():
    # Dense(64 -> 32), batch 8, float32: MatMul reads x and the kernel and writes y;
    # BiasAdd reads y and the bias and writes y again. The kernel's read is a view: 0.
    report = keras_flops.profile(sequential((64,), keras.layers.Dense(32)), batch_size=8)
    matmul = 8 * 64 * F32 + 64 * 32 * F32 + 8 * 32 * F32
    bias_add = 8 * 32 * F32 + 32 * F32 + 8 * 32 * F32
    assert (op_bytes(report, "MatMul"), op_bytes(report, "BiasAdd")) == (matmul, bias_add) == (11264, 2176)
    assert report.bytes == 13440
    assert op_bytes(report, "ReadVariableOp") == 0
    # 2 x 64 x 32 x 8 + 8 x 32 = 33,024 FLOPs over 13,440 bytes
    assert report.intensity == pytest.approx(33024 / 13440)


def test_conv2d():
    # 3x3 "same" convolution, 3 -> 4 channels, no bias, on 8x8
    report = keras_flops.profile(sequential((8, 8, 3), keras.layers.Conv2D(4, 3, padding="same", use_bias=False)))
    assert op_bytes(report, "Conv2D") == 8 * 8 * 3 * F32 + 3 * 3 * 3 * 4 * F32 + 8 * 8 * 4 * F32 == 2224


def test_depthwise_conv2d():
    layer = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False)
    report = keras_flops.profile(sequential((8, 8, 3), layer))
    # in, the 3x3x3x1 kernel, out
    assert op_bytes(report, "DepthwiseConv2dNative") == 8 * 8 * 3 * F32 + 3 * 3 * 3 * F32 + 8 * 8 * 3 * F32 == 1644


def test_elementwise():
    report = keras_flops.profile(sequential((10,), keras.layers.ReLU()), batch_size=2)
    assert op_bytes(report, "Relu") == 2 * 10 * F32 * 2 == 160  # read once, written once


def test_transpose_moves_data_with_no_flops():
    report = keras_flops.profile(sequential((3, 4), keras.layers.Permute((2, 1))), batch_size=2)
    (op,) = [op for op in report.ops if op.op_type == "Transpose"]
    # the input, the permutation (3 int32s: an input tensor too), the output
    assert (op.flops, op.bytes) == (0, 2 * 3 * 4 * F32 + 3 * I32 + 2 * 4 * 3 * F32) == (0, 204)


def test_mixed_precision_halves_the_bytes_of_float16_tensors():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        report = keras_flops.profile(sequential((64,), keras.layers.Dense(32)), batch_size=8)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert op_bytes(report, "MatMul") == (8 * 64 + 64 * 32 + 8 * 32) * F16 == 11264 // 2
    assert op_bytes(report, "BiasAdd") == (8 * 32 + 32 + 8 * 32) * F16 == 2176 // 2
    # the casts to float16 move data: x, the kernel and the bias read in float32,
    # written in float16
    assert op_bytes(report, "Cast") == (8 * 64 + 64 * 32 + 32) * (F32 + F16) == 15552
    assert report.compute_dtype == "float16"


def dense_report():
    return keras_flops.profile(sequential((64,), keras.layers.Dense(32, name="d")), batch_size=8)


def test_memory_bound_side_of_the_ridge():
    # 1 TFLOP/s and 1 GB/s: the ridge is 1e12 / 1e9 = 1,000 FLOPs per byte; the
    # Dense has 33,024 / 13,440 = 2.46, far below: memory-bound
    device = keras_flops.Device(peak_tflops=1, bandwidth_gbps=1)
    df = dense_report().roofline(device, traffic="unfused")
    assert device.ridge == 1000
    assert df.loc["d", "bound"] == "memory"
    assert df.loc["d", "time_s"] == pytest.approx(13440 / 1e9)  # unfused bytes / bandwidth
    assert df.attrs["time_s"] == pytest.approx(13440 / 1e9)
    # by default the compulsory bytes: x, the kernel, the bias and y once,
    # 8 x 64 x 4 + 64 x 32 x 4 + 32 x 4 + 8 x 32 x 4 = 11,392
    df = dense_report().roofline(device)
    assert df.loc["d", "min_bytes"] == 11392
    assert df.loc["d", "time_s"] == pytest.approx(11392 / 1e9)


def test_compute_bound_side_of_the_ridge():
    # 1 MFLOP/s and 1,000 GB/s: the ridge is 1e6 / 1e12 = 1e-6 FLOPs per byte: compute-bound
    device = keras_flops.Device(peak_tflops=1e-6, bandwidth_gbps=1000)
    df = dense_report().roofline(device)
    assert df.loc["d", "bound"] == "compute"
    assert df.loc["d", "time_s"] == pytest.approx(33024 / 1e6)  # flops / peak
    assert dense_report().roofline_time(device) == pytest.approx(33024 / 1e6)


def test_named_devices():
    df = dense_report().roofline("A100", dtype="float16")
    device = df.attrs["device"]
    assert (device.peak_tflops, device.bandwidth_gbps) == (312.0, 2039.0)
    assert keras_flops.Device(989.4, 3350.0).ridge == pytest.approx(989.4e12 / 3350e9)
    with pytest.raises(ValueError, match="keras_flops.Device"):
        dense_report().roofline("TPU v9")
    with pytest.raises(ValueError, match="positive"):
        keras_flops.Device(peak_tflops=0, bandwidth_gbps=1)


def test_tables_and_json_have_bytes():
    report = dense_report()
    assert report.to_dataframe().loc["d", "bytes"] == 13440
    assert report.to_dataframe(by="op").loc["MatMul", "bytes"] == 11264
    data = report.to_dict()
    assert data["schema_version"] == 2 and data["totals"]["bytes"] == 13440
    assert data["layers"][0]["intensity"] == pytest.approx(33024 / 13440)


def test_summary_bytes_and_bound_columns():
    out = []
    keras_flops.summary(sequential((64,), keras.layers.Dense(32, name="d")), batch_size=8,
                        columns=("flops", "bytes", "bound"),
                        device=keras_flops.Device(peak_tflops=1, bandwidth_gbps=1), print_fn=out.append)
    header = next(line for line in out[0].splitlines() if "Layer (type)" in line)
    assert "FLOPs" in header and "Bytes" in header and "Bound" in header and "MACs" not in header
    row = next(line for line in out[0].splitlines() if "d (Dense)" in line)
    assert "13.4 K" in row and "memory" in row
    with pytest.raises(ValueError, match="device="):
        keras_flops.summary(dense_model := sequential((4,), keras.layers.Dense(2)), columns=("bound",))
    with pytest.raises(ValueError, match="columns"):
        keras_flops.summary(dense_model, columns=("speed",))


def test_roofline_and_depth_plots(tmp_path):
    report = keras_flops.profile(keras.applications.MobileNetV2(weights=None), warn=False)
    fig = report.plot(kind="roofline", device="A100", path=tmp_path / "roof.png")
    ax = fig.axes[0]
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert (tmp_path / "roof.png").read_bytes()[:4] == b"\x89PNG"
    fig = report.plot(kind="depth", path=tmp_path / "depth.png")
    assert len(fig.axes) == 2  # FLOPs and bytes
    with pytest.raises(ValueError, match="device="):
        report.plot(kind="roofline")


def test_bar_plot_labels_counts_in_units(tmp_path):
    fig = dense_report().plot(path=tmp_path / "bars.png")
    ax = fig.axes[0]
    fig.canvas.draw()
    assert ax.xaxis.get_offset_text().get_text() == ""  # no "1e7" multiplier
    from matplotlib.ticker import EngFormatter

    assert isinstance(ax.xaxis.get_major_formatter(), EngFormatter)
    # 33,024 FLOPs on the axis: the ticks read "10 k", "20 k", "30 k"
    assert any(label.get_text().endswith(" k") for label in ax.get_xticklabels())


def test_interconnects_and_tpus_from_their_sources():
    from keras_flops.core import hardware

    # NVIDIA's datasheets: NVLink 4 900 GB/s both ways, PCIe Gen4 x16 64 GB/s both ways
    assert hardware.device("H100", "bfloat16").interconnect_gbs == 900 / 2
    assert hardware.device("NVIDIA L4", "bfloat16").interconnect_gbs == 64 / 2
    # Google's Cloud TPU docs: v5p 459 bf16 TFLOP/s, 2,765 GBps HBM, 95 GiB, ICI 1,200 GBps both ways
    v5p = hardware.device("TPU v5p", "bfloat16")
    assert (v5p.peak_tflops, v5p.bandwidth_gbps, v5p.memory_gb, v5p.interconnect_gbs) == (459.0, 2765.0, 95.0, 600.0)
    v5e = hardware.device("TPU v5 lite", "bfloat16")  # JAX's device_kind for a v5e
    assert (v5e.peak_tflops, v5e.interconnect_gbs) == (197.0, 400 / 2)
    # no published link bandwidth for v4: a collective's time then needs a Device with one
    assert hardware.device("TPU v4", "bfloat16").interconnect_gbs is None
    with pytest.raises(ValueError, match="no peak for 'TPU v5p' at float32"):
        hardware.device("TPU v5p", "float32")
