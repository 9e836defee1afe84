"""Measured time per layer: every layer with FLOPs gets a time; no timing thresholds
(shared machines are noisy: benchmarks/measure_layers.py prints the ratios)."""

import keras
import pytest

import keras_flops
from conftest import sequential
from keras_flops.backends.tensorflow import measure as measuring


def cnn():
    return sequential((16, 16, 3), keras.layers.Conv2D(8, 3, activation="relu", name="conv"),
                      keras.layers.GlobalAveragePooling2D(name="pool"), keras.layers.Dense(10, name="fc"))


def test_every_layer_with_flops_gets_a_positive_time():
    report = keras_flops.measure(cnn(), batch_size=2, repeats=3, warmup=1)
    df = report.to_dataframe()
    with_flops = df[df["flops"] > 0]
    assert list(with_flops.index) == ["conv", "pool", "fc"]
    assert (with_flops["time_ms"] > 0).all()
    assert (with_flops["time_iqr_ms"].fillna(0) >= 0).all()  # NaN: the profiler kept no per-run windows
    assert (with_flops["tflops_per_sec"] > 0).all()
    assert report.time_ms > 0
    # the counts are profile()'s
    assert report.flops == keras_flops.profile(cnn(), batch_size=2).flops
    assert "Measured forward:" in str(report)


def test_measured_roofline_compares_to_the_roof():
    report = keras_flops.measure(cnn(), repeats=2, warmup=1)
    df = report.roofline(keras_flops.Device(peak_tflops=1, bandwidth_gbps=10))
    assert (df.loc["conv", "measured_ratio"] > 0) and df.loc["conv", "measured_s"] > 0


def test_a_weightless_model_cannot_run():
    with keras_flops.without_weights():
        model = cnn()
    with pytest.raises(ValueError, match="never allocated"):
        keras_flops.measure(model)


def test_rewritten_ops_go_to_the_layer_owning_their_scope():
    owner = measuring._Owners({"m/conv/Conv2D": "conv", "m/conv/BiasAdd": "conv", "m/bn/mul": "bn"})
    assert owner("m/conv/Conv2D") == "conv"
    # TensorFlow's optimizer renames what it fuses or rewrites, under the old scope
    assert owner("m/conv/ArithmeticOptimizer/AddOpsRewrite_Add") == "conv"
    assert owner("m/bn/mul/_FusedOp") == "bn"
    assert owner("m/elsewhere") == "(model)"  # "m" holds two layers: no single owner


def test_wall_time_is_shared_out_per_layer_and_per_run():
    ms = 1_000_000_000  # picoseconds
    # run 1 (0-10 ms): a runs 1-5 ms; b runs 3-5 ms beside it, so 3-5 ms is split: a 3, b 1
    # run 2 (11-30 ms): a runs 12-18 ms alone
    ops = [("a", 1 * ms, 4 * ms), ("b", 3 * ms, 2 * ms), ("a", 12 * ms, 6 * ms)]
    runs = measuring._per_layer_per_run(ops, [(0, 10 * ms), (11 * ms, 30 * ms)], str.upper, 2)
    assert runs == {"A": [2.0 + 1.0, 6.0], "B": [1.0, 0.0]}  # ms in each run
    # a run's layers sum to its busy time: 1-5 ms = 4 ms, not the 6 ms of summed durations
    assert runs["A"][0] + runs["B"][0] == 4.0


def test_without_call_windows_times_are_a_mean_over_the_runs():
    ms = 1_000_000_000
    ops = [("a", 1 * ms, 4 * ms), ("a", 12 * ms, 6 * ms)]
    # no windows recorded: one window over both runs, divided by the 2 runs profiled
    assert measuring._per_layer_per_run(ops, [], str.upper, 2, runs=2) == {"A": [5.0]}


def test_times_roll_up_by_depth():
    report = keras_flops.measure(cnn(), repeats=2, warmup=1)
    rolled = report.to_dataframe(depth=1)
    assert rolled.loc["conv", "time_ms"] == report.to_dataframe().loc["conv", "time_ms"]
