"""FlopsCallback in model.fit: logs, TensorBoard, throughput, MFU, failures, devices."""

import glob
import json
import os
import socket
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_flops
from keras_flops import callback as callback_module
from keras_flops import backends
from keras_flops.core import hardware

KEYS = {"gflops", "gmacs", "tflops_per_sec", "mfu"}


def cnn():
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv"),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax", name="fc"),
        ]
    )
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model


def data(n=64):
    rng = np.random.default_rng(0)
    return rng.random((n, 8, 8, 3), dtype="float32"), rng.integers(0, 10, n)


def fit(model, callbacks, epochs=2, batch_size=16, **kwargs):
    x, y = data()
    return model.fit(x, y, batch_size=batch_size, epochs=epochs, callbacks=callbacks, verbose=0, **kwargs)


def test_fit_logs_agree_with_profile():
    model = cnn()
    cb = keras_flops.FlopsCallback(peak_tflops=2.0, verbose=0)
    history = fit(model, [cb]).history
    assert KEYS <= set(history)
    assert len(history["gflops"]) == 2
    forward = keras_flops.profile(model, batch_size=16)
    train = keras_flops.profile(model, batch_size=16, training=True)
    assert history["gflops"][0] == forward.flops_per_sample / 1e9
    assert history["gmacs"][0] == forward.macs_per_sample / 1e9
    assert cb.train_report.train_flops == train.train_flops
    for rate, mfu in zip(history["tflops_per_sec"], history["mfu"]):
        assert rate > 0
        assert mfu == pytest.approx(rate / 2.0)


def test_train_begin_line(capsys):
    fit(cnn(), [keras_flops.FlopsCallback()], epochs=1)
    line = [l for l in capsys.readouterr().out.splitlines() if l.startswith("FlopsCallback:")]
    # conv: 2 x 256 outputs x 27 + 256 bias + ReLU 256 = 14,336; fc: 2 x 256 x 10 + 10
    # + softmax 5 x 10 = 5,180; per sample 19,516 FLOPs = 19.5 K
    assert line and "forward 19.5 KFLOPs" in line[0] and "batch 16 per replica x 1" in line[0]


def test_no_peak_no_mfu(monkeypatch):
    monkeypatch.setattr(type(backends.of()), "gpu_names", lambda self: ())  # no GPU whose peak is known
    history = fit(cnn(), [keras_flops.FlopsCallback(verbose=0)], epochs=1).history
    assert "tflops_per_sec" in history and "mfu" not in history


def read_events(directory):
    scalars, texts = {}, {}
    for path in glob.glob(os.path.join(directory, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                plugin = value.metadata.plugin_data.plugin_name
                if plugin == "text":
                    texts[value.tag] = tf.make_ndarray(value.tensor).item().decode()
                elif plugin == "scalars":
                    scalars.setdefault(value.tag, []).append(
                        (event.step, float(tf.make_ndarray(value.tensor)))
                    )
    return scalars, texts


def test_tensorboard_scalars_and_table(tmp_path):
    cb = keras_flops.FlopsCallback(peak_tflops=1.0, log_dir=str(tmp_path), verbose=0)
    history = fit(cnn(), [cb]).history
    scalars, texts = read_events(tmp_path)
    for key in KEYS:
        steps = [step for step, _ in scalars[f"epoch_{key}"]]
        assert steps == [0, 1]
        assert [v for _, v in scalars[f"epoch_{key}"]] == pytest.approx(history[key], rel=1e-6)
    table = texts["keras_flops/layers"]
    assert table.startswith("| layer") and "| conv " in table and "backward_flops" in table


def test_tensorboard_callback_directory_is_used(tmp_path):
    tb = keras.callbacks.TensorBoard(log_dir=str(tmp_path))
    fit(cnn(), [tb, keras_flops.FlopsCallback(verbose=0)])
    scalars, _ = read_events(tmp_path / "train")
    assert "epoch_gflops" in scalars and "epoch_tflops_per_sec" in scalars


def test_every_n_batches(tmp_path):
    cb = keras_flops.FlopsCallback(log_dir=str(tmp_path), update_freq=2, verbose=0)
    fit(cnn(), [cb], epochs=1, batch_size=8)  # 8 batches; batches 1-7 are timed
    scalars, _ = read_events(tmp_path)
    assert [step for step, _ in scalars["batch_tflops_per_sec"]] == [2, 4, 6]


def test_bad_update_freq():
    with pytest.raises(ValueError, match="update_freq"):
        keras_flops.FlopsCallback(update_freq=0)


def test_csv_logger_gets_the_keys_and_no_empty_val_columns(tmp_path):
    path = tmp_path / "log.csv"
    x, y = data()
    model = cnn()
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, validation_data=(x[:16], y[:16]),
              callbacks=[keras_flops.FlopsCallback(verbose=0), keras.callbacks.CSVLogger(str(path))])
    header = path.read_text().splitlines()[0].split(",")
    assert {"gflops", "gmacs", "tflops_per_sec"} <= set(header)
    assert not any(h.startswith("val_") and h[4:] in KEYS for h in header)


def test_unbuilt_sequential_is_profiled_at_the_first_batch():
    model = keras.Sequential([keras.layers.Dense(4, name="d1"), keras.layers.Dense(10, name="d2")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).random((64, 5), dtype="float32")
    cb = keras_flops.FlopsCallback(verbose=0)
    history = model.fit(x, np.zeros(64), batch_size=16, epochs=1, callbacks=[cb], verbose=0).history
    # d1: 2 x 5 x 4 + 4 = 44, d2: 2 x 4 x 10 + 10 = 90, per sample: 134
    assert history["gflops"][0] * 1e9 == pytest.approx(134)
    assert cb.report.batch_size == 16


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.d = keras.layers.Dense(10, name="d")

    def call(self, x):
        return self.d(x)


def test_subclassed_model():
    model = Subclassed()
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).random((48, 5), dtype="float32")
    cb = keras_flops.FlopsCallback(verbose=0)
    history = model.fit(x, np.zeros((48, 10)), batch_size=12, epochs=1, callbacks=[cb], verbose=0).history
    # 2 x 5 x 10 + 10 = 110 per sample
    assert history["gflops"][0] * 1e9 == pytest.approx(110)
    assert cb.report.batch_size == 12


def test_profiling_failure_warns_and_training_goes_on(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no profile today")

    monkeypatch.setattr(callback_module, "profile", broken)
    model = cnn()
    before = [w.copy() for w in model.get_weights()]
    with pytest.warns(RuntimeWarning, match="no profile today"):
        history = fit(model, [keras_flops.FlopsCallback(verbose=0)]).history
    assert len(history["loss"]) == 2
    assert not KEYS & set(history)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))  # it trained
    assert "compute_loss" not in vars(model)


def test_profiles_once_per_fit_and_is_removed_afterwards(monkeypatch):
    calls = []
    real, real_step = callback_module.profile, callback_module.profile_and_trace
    monkeypatch.setattr(callback_module, "profile", lambda *a, **k: calls.append(k) or real(*a, **k))
    monkeypatch.setattr(callback_module, "profile_and_trace",
                        lambda *a, **k: calls.append(k) or real_step(*a, **k))  # the step, with its inputs
    model = cnn()
    fit(model, [keras_flops.FlopsCallback(verbose=0)], epochs=3)
    assert [c.get("training", False) for c in calls] == [False, True]  # forward, then a step
    assert "compute_loss" not in vars(model)


def test_model_summary_shows_flops_after_fit():
    model = cnn()
    fit(model, [keras_flops.FlopsCallback(verbose=0)], epochs=1)
    out = []
    model.summary(print_fn=out.append)
    assert "FLOPs" in out[0] and "for a batch of 16" in out[0]


def test_mixed_precision_same_flops_and_fp16_peak(monkeypatch):
    monkeypatch.setattr(type(backends.of()), "gpu_names", lambda self: ("NVIDIA A100-SXM4-80GB",))
    full = cnn()
    full_cb = keras_flops.FlopsCallback(verbose=0)
    fit(full, [full_cb], epochs=1)
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        half = cnn()
        half_cb = keras_flops.FlopsCallback(verbose=0)
        history = fit(half, [half_cb], epochs=1).history
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert half_cb.report.flops == full_cb.report.flops
    assert half_cb._peak == 312.0  # A100 fp16 tensor cores
    assert full_cb._peak == (156.0 if tf.config.experimental.tensor_float_32_execution_enabled() else 19.5)
    assert history["mfu"][0] == pytest.approx(history["tflops_per_sec"][0] / 312.0)


@pytest.mark.parametrize(
    "name, dtype, peak",
    [
        ("NVIDIA H100 80GB HBM3", "bfloat16", 989.4),
        ("NVIDIA H100 PCIe", "float16", 756.0),
        ("NVIDIA H200", "bfloat16", 989.4),
        ("Tesla V100-SXM2-16GB", "float16", 125.0),
        ("NVIDIA L4", "float16", 121.0),
        ("Tesla T4", "float16", 65.0),
        ("NVIDIA L40S", "float16", None),  # not in the table: no guess
        ("NVIDIA GeForce RTX 4090", "float16", None),
    ],
)
def test_peak_table(name, dtype, peak):
    assert hardware.peak_tflops(name, dtype) == peak


MIRRORED = textwrap.dedent(
    """
    import json, os
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np, keras_flops
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3), keras.layers.Dense(2)])
        model.compile(optimizer="sgd", loss="mse")
    x = np.random.rand(64, 5).astype("float32"); y = np.random.rand(64, 2).astype("float32")
    cb = keras_flops.FlopsCallback(peak_tflops=1.0, verbose=0)
    history = model.fit(x, y, batch_size=16, epochs=2, callbacks=[cb], verbose=0).history
    one = keras_flops.profile(model, batch_size=8, training=True).train_flops
    print(json.dumps({"replicas": cb._replicas, "batch": cb.report.batch_size,
                      "step": cb._step_flops, "one_replica": one, "keys": sorted(history)}))
    """
)


def run_python(script, env=None, timeout=300):
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=dict(os.environ, **(env or {})), timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_mirrored_strategy_on_two_cpu_devices():
    result = run_python(MIRRORED)
    assert result["replicas"] == 2
    assert result["batch"] == 8  # the global batch of 16 over 2 replicas
    assert result["step"] == 2 * result["one_replica"]  # global FLOPs per step
    assert KEYS <= set(result["keys"])


WORKER = textwrap.dedent(
    """
    import json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    os.environ["TF_USE_LEGACY_KERAS"] = "1"  # Keras 3's fit does not run under MultiWorker
    import numpy as np, tensorflow as tf, keras_flops
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    with strategy.scope():
        model = tf.keras.Sequential([tf.keras.layers.Dense(3, input_shape=(5,)), tf.keras.layers.Dense(2)])
        model.compile(optimizer="sgd", loss="mse")
    x = np.random.rand(64, 5).astype("float32"); y = np.random.rand(64, 2).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    cb = keras_flops.FlopsCallback(peak_tflops=1.0, verbose=0, log_dir=sys.argv[1])
    history = model.fit(ds, epochs=2, callbacks=[cb], verbose=0).history
    print(json.dumps({"replicas": cb._replicas, "batch": cb.report.batch_size,
                      "step": cb._step_flops, "keys": sorted(history)}))
    """
)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_multi_worker_only_the_chief_writes(tmp_path):
    pytest.importorskip("tf_keras", reason="install tf-keras (pip install --no-deps tf-keras)")
    cluster = {"worker": [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]}
    procs = []
    for i in range(2):
        config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
        procs.append(subprocess.Popen(
            [sys.executable, "-c", WORKER, str(tmp_path / f"w{i}")],
            env=dict(os.environ, TF_CONFIG=config), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        ))
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    for r in results:
        assert r["replicas"] == 2 and r["batch"] == 8 and KEYS <= set(r["keys"])
    assert results[0]["step"] == results[1]["step"] > 0
    assert glob.glob(str(tmp_path / "w0" / "events.out.tfevents.*"))  # the chief wrote
    assert not (tmp_path / "w1").exists()  # the other worker did not


def test_announcement_starts_its_own_line_under_a_progress_bar(capsys):
    # verbose=1: Keras's progress bar keeps its line open ("1/4 ━━━ ... loss: ...")
    x, y = data()
    cnn().fit(x, y, batch_size=16, epochs=1, verbose=1, callbacks=[keras_flops.FlopsCallback()])
    lines = capsys.readouterr().out.split("\n")
    ours = [line for line in lines if "FlopsCallback:" in line]
    assert len(ours) == 1 and ours[0].startswith("FlopsCallback: forward 19.5 KFLOPs")


def test_tensorboard_table_has_bytes_and_the_roofline_bound(tmp_path, monkeypatch):
    monkeypatch.setattr(type(backends.of()), "gpu_names", lambda self: ("NVIDIA A100-SXM4-80GB",))
    fit(cnn(), [keras_flops.FlopsCallback(log_dir=str(tmp_path), verbose=0)], epochs=1)
    _, texts = read_events(tmp_path)
    header = texts["keras_flops/layers"].splitlines()[0]
    assert "bytes" in header and "intensity" in header and "bound" in header
