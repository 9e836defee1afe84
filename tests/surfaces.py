"""summary(), attach(), FlopsCallback, the command line and measure()'s
error on a backend that is not TensorFlow's: the same tests, collected by
the JAX and the PyTorch suites (each imports them), on a small MLP counted by
hand."""

import json

import keras
import numpy as np
import pytest

import keras_flops
from keras_flops.cli import main as cli_main


# What each suite collects, by `from surfaces import *`.
__all__ = [
    "model_and_data",
    "test_summary_and_attach_show_the_columns",
    "test_report_has_the_tensorflow_columns",
    "test_callback_logs_its_keys_in_a_fit",
    "test_callback_writes_tensorboard",
    "test_callback_never_stops_training",
    "test_cli_on_a_keras_file",
    "test_measure_says_it_needs_tensorflow",
    "test_a_user_formula_for_a_matmul_has_its_macs",
]


def model_and_data(batch=16):
    model = keras.Sequential([
        keras.Input((6,)),
        keras.layers.Dense(4, activation="relu", name="h"),
        keras.layers.Dense(2, name="out"),
    ])
    model.compile(optimizer="sgd", loss="mse")
    x = np.zeros((batch, 6), "float32")
    y = np.zeros((batch, 2), "float32")
    return model, x, y


# per sample: h 6x4 = 24 MACs, 2 x 24 + 4 bias + 4 relu = 56 FLOPs;
# out 4x2 = 8 MACs, 2 x 8 + 2 bias = 18 FLOPs
FORWARD_FLOPS, FORWARD_MACS = 56 + 18, 24 + 8


def test_summary_and_attach_show_the_columns(capsys):
    model, _, _ = model_and_data()
    keras_flops.summary(model)
    first = capsys.readouterr().out
    assert "FLOPs" in first and "MACs" in first
    assert "Total FLOPs: 74 (32 MACs) for a batch of 1" in first
    keras_flops.attach(model)
    model.summary()
    assert capsys.readouterr().out == first
    keras_flops.detach(model)
    model.summary()
    assert "FLOPs" not in capsys.readouterr().out


def test_report_has_the_tensorflow_columns():
    model, _, _ = model_and_data()
    report = keras_flops.profile(model, batch_size=2)
    assert (report.flops, report.macs) == (2 * FORWARD_FLOPS, 2 * FORWARD_MACS)
    assert list(report.to_dataframe().columns) == [
        "class", "output_shape", "params", "calls", "flops", "macs", "mac_dtype", "bytes", "min_bytes", "intensity",
        "share"]
    training = keras_flops.profile(model, batch_size=2, training=True)
    assert "backward_macs" in training.to_dataframe().columns


def test_callback_logs_its_keys_in_a_fit(tmp_path):
    model, x, y = model_and_data()
    callback = keras_flops.FlopsCallback(peak_tflops=1.0, log_dir=str(tmp_path), verbose=0)
    history = model.fit(x, y, batch_size=4, epochs=2, callbacks=[callback], verbose=0)
    for key in ("gflops", "gmacs", "tflops_per_sec", "mfu"):
        assert len(history.history[key]) == 2, key
    assert history.history["gmacs"][0] == pytest.approx(FORWARD_MACS / 1e9)
    assert callback.report.batch_size == 4
    # one training step's MACs: forward 4 x 32, backward h's kernel (24) and out's kernel
    # and input (8 + 8) per sample
    assert callback.train_report.backward_macs == 4 * (24 + 8 + 8)
    assert "call" not in vars(model) and "compute_loss" not in vars(model)


def test_callback_writes_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    model, x, y = model_and_data()
    callback = keras_flops.FlopsCallback(peak_tflops=1.0, log_dir=str(tmp_path), verbose=0)
    model.fit(x, y, batch_size=4, epochs=1, callbacks=[callback], verbose=0)
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    tags = set(events.Tags()["scalars"]) | set(events.Tags()["tensors"])
    assert {"epoch_gflops", "epoch_gmacs", "epoch_tflops_per_sec", "epoch_mfu", "keras_flops/layers"} <= tags


def test_callback_never_stops_training():
    model, x, y = model_and_data()
    callback = keras_flops.FlopsCallback(verbose=0)
    callback._measure = lambda: (_ for _ in ()).throw(RuntimeError("boom"))
    with pytest.warns(RuntimeWarning, match="boom"):
        history = model.fit(x, y, batch_size=4, epochs=1, callbacks=[callback], verbose=0)
    assert "gflops" not in history.history and len(history.history["loss"]) == 1


def test_cli_on_a_keras_file(tmp_path, capsys):
    model, _, _ = model_and_data()
    path = tmp_path / "m.keras"
    model.save(path)
    assert cli_main([str(path), "--format", "json", "--batch-size", "2"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["totals"]["flops"], data["totals"]["macs"]) == (2 * FORWARD_FLOPS, 2 * FORWARD_MACS)


def test_measure_says_it_needs_tensorflow():
    model, _, _ = model_and_data()
    with pytest.raises(ValueError, match="TensorFlow backend"):
        keras_flops.measure(model)


# The op a Dense layer's matmul is on each backend (on PyTorch, a 2-D
# torch.matmul dispatches to aten.mm).
MATMUL = {"tensorflow": "MatMul", "jax": "dot_general", "torch": "mm"}


def test_a_user_formula_for_a_matmul_has_its_macs():
    """A user formula returning an int for the backend's matmul gets FLOPs / 2
    MACs, as the built-in formula counts them (they were 0 on JAX and PyTorch)."""
    model = keras.Sequential([keras.Input((32,)), keras.layers.Dense(10, use_bias=False, name="d")])
    # batch 2: 2 x 10 outputs, each 32 products: 640 MACs, 2 x 640 = 1,280 FLOPs
    built_in = keras_flops.profile(model, batch_size=2)
    assert (built_in.flops, built_in.macs) == (1280, 640)
    op = MATMUL[keras.config.backend()]
    user = keras_flops.profile(model, batch_size=2, formulas={op: lambda spec: 1280})
    assert (user.flops, user.macs) == (1280, 640)
    # a Cost sets both
    other = keras_flops.profile(model, batch_size=2, formulas={op: lambda spec: keras_flops.Cost(1280, 0)})
    assert (other.flops, other.macs) == (1280, 0)
