"""summary(), attach(), FlopsCallback, the CLI and keras.distribution on JAX,
and a process with no TensorFlow at all."""

import os
import subprocess
import sys
import textwrap

import jax
import keras
import pytest

import keras_flops

import no_tensorflow  # tests/
from surfaces import *  # noqa: F401,F403  (the backend-neutral surface tests: collected here, on JAX)
from surfaces import model_and_data


def test_two_devices_for_the_distribution_tests():
    assert len(jax.devices()) == 2, "run with XLA_FLAGS=--xla_force_host_platform_device_count=2"


def fit_under(distribution):
    """A fit of a global batch of 8 under ``distribution``: (callback, history)."""
    keras.distribution.set_distribution(distribution)
    try:
        model, x, y = model_and_data()
        callback = keras_flops.FlopsCallback(peak_tflops=1.0, verbose=0)
        history = model.fit(x, y, batch_size=8, epochs=1, callbacks=[callback], verbose=0)
    finally:
        keras.distribution.set_distribution(None)
    return callback, history


def test_data_parallel_counts_the_step_xla_partitions():
    callback, history = fit_under(keras.distribution.DataParallel(devices=jax.devices()))
    # the global batch of 8 is counted as XLA partitions it: 4 per device
    report = callback.train_report
    assert callback.report.batch_size == report.batch_size == 8
    assert report.per_device.batch_size == 4
    assert (callback._replicas, callback._devices) == (2, 2)
    # the FLOP/s are global; each device runs half the MACs
    assert callback._step_flops == report.train_flops
    assert 2 * report.per_device.macs == report.macs
    assert 2 * report.per_device.backward_macs == report.backward_macs
    assert {"tflops_per_sec", "device_gflops", "collective_gb", "mfu", "hfu"} <= set(history.history)


def test_model_parallel_divides_a_devices_flops_by_its_peak():
    mesh = keras.distribution.DeviceMesh((1, 2), ["batch", "model"], jax.devices())
    layout = keras.distribution.LayoutMap(mesh)
    layout["h/kernel"] = (None, "model")
    callback, history = fit_under(keras.distribution.ModelParallel(layout_map=layout, batch_dim_name="batch"))
    # one model replica over 2 devices: the whole batch; MFU is the most loaded
    # device's FLOP/s over one device's peak (1 TFLOP/s here)
    report = callback.train_report
    assert callback.report.batch_size == 8
    assert (callback._replicas, callback._devices) == (1, 2)
    rate = history.history["tflops_per_sec"][0]  # the global step's FLOPs over the same time
    device = report.per_device
    assert history.history["mfu"][0] == pytest.approx(rate * device.model_flops / report.train_flops)
    assert history.history["peak_tflops"][0] == 1.0


def test_jax_needs_no_tensorflow(tmp_path):
    no_tensorflow.check(tmp_path, "jax")


WITH_TENSORFLOW_INSTALLED = textwrap.dedent("""
    import sys
    import numpy as np, keras, keras_flops
    from keras_flops.cli import main
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, name="h"), keras.layers.Dense(2, name="out")])
    model.compile(optimizer="sgd", loss="mse")
    keras_flops.profile(model, training=True)
    keras_flops.summary(model)
    callback = keras_flops.FlopsCallback(peak_tflops=1.0, log_dir=sys.argv[1], verbose=0)
    model.fit(np.zeros((8, 6), "float32"), np.zeros((8, 2), "float32"), batch_size=4,
              callbacks=[callback], verbose=0)
    print("TENSORFLOW", "tensorflow" in sys.modules)
    model.save(sys.argv[1] + "/m.keras")  # Keras's own file writing loads TensorFlow where it can
""")

CLI_ALONE = "import sys; from keras_flops.cli import main; main(sys.argv[1:]); print('TENSORFLOW', 'tensorflow' in sys.modules)"


def test_a_jax_session_never_imports_tensorflow(tmp_path):
    # TensorFlow is installed here (the TensorFlow suite runs beside this one),
    # and nothing of a JAX session loads it: not the trace, the summary, the
    # callback's TensorBoard events, nor the command line
    import importlib.util

    assert importlib.util.find_spec("tensorflow") is not None
    env = dict(os.environ, KERAS_BACKEND="jax")
    done = subprocess.run([sys.executable, "-c", WITH_TENSORFLOW_INSTALLED, str(tmp_path)], capture_output=True,
                          text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "TENSORFLOW False" in done.stdout
    assert list(tmp_path.glob("events.out.tfevents.*"))  # the callback wrote its scalars
    done = subprocess.run([sys.executable, "-c", CLI_ALONE, str(tmp_path / "m.keras")], capture_output=True,
                          text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "TENSORFLOW False" in done.stdout and "Total FLOPs: 70" in done.stdout
