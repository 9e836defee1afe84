"""Rematerialization on JAX: the forward work the backward pass runs again,
named per layer; MFU divides the model's FLOPs, HFU what executes."""

import keras
import numpy as np
import pytest

import keras_flops


def mlp(remat: bool):
    """Dense 64 -> 256 -> 256 -> 10, built in a RematScope or not."""
    scope = keras.RematScope(mode="full") if remat else None
    if scope is not None:
        scope.__enter__()
    try:
        model = keras.Sequential([
            keras.Input((64,)),
            keras.layers.Dense(256, name="a"),
            keras.layers.Dense(256, name="b"),
            keras.layers.Dense(10, name="c"),
        ])  # fmt: skip
    finally:
        if scope is not None:
            scope.__exit__(None, None, None)
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_the_recompute_is_named_per_layer():
    plain = keras_flops.profile(mlp(False), batch_size=8, training=True)
    remat = keras_flops.profile(mlp(True), batch_size=8, training=True)
    # batch 8: a 64x256, b 256x256, c 256x10
    a, b, c = 8 * 64 * 256, 8 * 256 * 256, 8 * 256 * 10
    assert plain.macs == remat.macs == a + b + c
    # the backward pass: every kernel's gradient, and the input gradients of b and c
    assert plain.backward_macs == (a + b + c) + (b + c) == 1_220_608
    assert plain.recompute_macs == 0 and plain.model_flops == plain.train_flops
    # with remat, each layer's backward needs its input again: the outputs of a
    # and b are recomputed (c's output is not read backward)
    assert remat.recompute_macs == a + b == 655_360
    assert remat.backward_macs == 1_220_608 + 655_360 == 1_875_968
    table = remat.to_dataframe()
    assert table.loc["a", "recompute_macs"] == a and table.loc["b", "recompute_macs"] == b
    assert table.loc["c", "recompute_macs"] == 0
    # model FLOPs are the plain step's; what executes is the remat step's
    assert remat.model_flops == plain.train_flops
    assert remat.train_flops == plain.train_flops + remat.recompute_flops


def test_the_callback_logs_mfu_and_hfu_against_one_peak():
    model = mlp(True)
    callback = keras_flops.FlopsCallback(peak_tflops=1.0, verbose=False)
    x, y = np.zeros((32, 64), "float32"), np.zeros((32, 10), "float32")
    history = model.fit(x, y, batch_size=8, epochs=2, callbacks=[callback], verbose=0).history
    report = callback.train_report
    assert report.recompute_flops > 0
    assert history["peak_tflops"][-1] == 1.0
    # the same steps and time: HFU / MFU is executed FLOPs / model FLOPs
    ratio = history["hfu"][-1] / history["mfu"][-1]
    assert ratio == pytest.approx(report.train_flops / report.model_flops)
    assert history["hfu"][-1] == pytest.approx(history["tflops_per_sec"][-1] / 1.0)
