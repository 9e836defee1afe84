"""Will it fit: the memory of a training step and of an inference call, by
part, worked out by hand. The same tests run on TensorFlow (here) and on JAX
(tests/jax_suite/test_memory_jax.py), with each backend's own numbers where
the two run different programs (docs/memory.md says where and why)."""

import json

import keras
import numpy as np
import pytest

import keras_flops
from keras_flops import _compat, cli
from keras_flops.core import hardware
from keras_flops.core import memory as core

F32, BOOL = 4, 1  # bytes per element
BACKEND = keras.config.backend()
GIB = 2 ** 30


def mlp(optimizer="adam"):
    inputs = keras.Input((4,))
    h = keras.layers.Dense(8, name="d1")(inputs)
    h = keras.layers.ReLU(name="r")(h)
    outputs = keras.layers.Dense(3, name="d2")(h)
    model = keras.Model(inputs, outputs)
    model.compile(loss="mse", optimizer=optimizer)
    return model


# Dense(4 -> 8), ReLU, Dense(8 -> 3), mean squared error, a batch of 2 (the
# labels are made in the step). Every weight is a trainable float32.
WEIGHTS = (4 * 8 + 8 + 8 * 3 + 3) * F32  # 268
BATCH = 2 * 4 * F32  # the inputs: 32

# The activations the backward pass reads, each buffer once, by layer. The
# dense layers keep nothing: d1's input is the batch (an argument, not an
# activation), d2's input is the ReLU's output, kept by the ReLU.
SAVED = {
    # ReluGrad and d2's kernel gradient both read the ReLU's output (2, 8); the
    # loss's gradient reads y_pred - y (2, 3) and the sample count cast to float32.
    "tensorflow": {"r": 2 * 8 * F32, "(loss)": 2 * 3 * F32 + F32},  # 64, 28
    # d2's kernel gradient reads the ReLU's output (2, 8), and JAX's derivative of
    # the ReLU its mask x > 0 (2, 8), a bool each; the loss's gradient reads
    # 2 (y_pred - y) (2, 3) and divide_no_nan's count (float32), count == 0 (bool)
    # and count-or-1 (float32).
    "jax": {"r": 2 * 8 * F32 + 2 * 8 * BOOL, "(loss)": 2 * 3 * F32 + F32 + BOOL + F32},  # 80, 33
}

# Inference: the most bytes of activations live at once, each elementwise op
# writing into the input it reads last.
LIVE = {
    # MatMul (2, 8); BiasAdd and Relu write into it; MatMul (2, 3) while it is read: 64 + 24
    "tensorflow": 2 * 8 * F32 + 2 * 3 * F32,  # 88
    # dot_general (2, 8), the bias broadcast (1, 8), add writes into the product;
    # the ReLU is a call (custom_jvp), so its (2, 8) result is a buffer of its own
    # beside its input: 64 + 64
    "jax": 2 * 8 * F32 + 2 * 8 * F32,  # 128
}
COUNTER = {"tensorflow": 8, "jax": 4}  # the optimizer's iteration counter: int64 on TensorFlow, int32 on JAX


def test_a_training_step_keeps_by_hand():
    report = keras_flops.profile(mlp(), batch_size=2, training=True)
    assert dict(report.activations.saved) == SAVED[BACKEND]
    table = report.to_dataframe()
    assert table["saved_bytes"].to_dict() == {"d1": 0, "r": SAVED[BACKEND]["r"], "d2": 0,
                                              "(loss)": SAVED[BACKEND]["(loss)"]}
    assert report.saved_bytes == sum(SAVED[BACKEND].values())
    assert report.to_dict()["totals"]["saved_bytes"] == report.saved_bytes
    assert "saved_bytes" not in keras_flops.profile(mlp(), batch_size=2).to_dataframe()


# Dense(4 -> 8), SiLU, Dense(8 -> 3), mean squared error, batch 2: what each backend keeps.
SILU_SAVED = {
    # d1's output (2, 8), the SiLU's input, which its gradient reads to compute the sigmoid
    # again; the SiLU's output (2, 8), which d2's kernel gradient reads; the loss as above
    "tensorflow": {"d1": 2 * 8 * F32, "s": 2 * 8 * F32, "(loss)": SAVED["tensorflow"]["(loss)"]},
    # d1's output, read by the SiLU's derivative; JAX's SiLU (a jitted function) returns for
    # its derivative three (2, 8) values: x sigmoid(x), sigmoid(x) (1 - sigmoid(x)), sigmoid(x)
    "jax": {"d1": 2 * 8 * F32, "s": 3 * 2 * 8 * F32, "(loss)": SAVED["jax"]["(loss)"]},
}


def test_a_silu_keeps_by_hand():
    inputs = keras.Input((4,))
    h = keras.layers.Activation("silu", name="s")(keras.layers.Dense(8, name="d1")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3, name="d2")(h))
    model.compile(loss="mse")
    assert dict(keras_flops.profile(model, batch_size=2, training=True).activations.saved) == SILU_SAVED[BACKEND]


def test_memory_of_a_training_step_by_hand():
    m = keras_flops.memory(mlp(), batch_size=2)
    assert m.weights == {"float32": WEIGHTS}
    assert m.gradients == WEIGHTS  # one per trainable weight, float32
    # Adam: two slots (momentum, velocity) per trainable weight, its counter and its learning rate
    assert (m.optimizer, m.optimizer_state) == ("Adam", 2 * WEIGHTS + COUNTER[BACKEND] + F32)
    assert m.inputs == BATCH
    assert m.saved_bytes == sum(SAVED[BACKEND].values())
    assert m.to_dataframe()["saved_bytes"].to_dict()["r"] == SAVED[BACKEND]["r"]
    assert m.to_dataframe()["weight_bytes"].to_dict() == {"d1": (4 * 8 + 8) * F32, "d2": (8 * 3 + 3) * F32,
                                                          "r": 0, "(loss)": 0}
    # the rule of the peak: every part at once
    assert m.peak == WEIGHTS + WEIGHTS + m.optimizer_state + BATCH + m.saved_bytes + m.transient
    assert 0 < m.transient < m.peak


def test_the_memory_plot_stacks_the_parts_against_the_device(tmp_path):
    pytest.importorskip("matplotlib")
    m = keras_flops.memory(mlp(), batch_size=2)
    fig = m.plot(device="H100", path=tmp_path / "memory.png")
    assert (tmp_path / "memory.png").stat().st_size > 0
    ax = fig.axes[0]
    # one segment per part, in the order of parts(), each starting where the last ended
    segments = [(p.get_x(), p.get_width()) for p in ax.patches]
    assert [w for _, w in segments] == [WEIGHTS, WEIGHTS, m.optimizer_state, BATCH, m.saved_bytes, m.transient]
    assert [x for x, _ in segments] == [0, WEIGHTS, 2 * WEIGHTS, 2 * WEIGHTS + m.optimizer_state,
                                        2 * WEIGHTS + m.optimizer_state + BATCH,
                                        2 * WEIGHTS + m.optimizer_state + BATCH + m.saved_bytes]
    # the H100's 80 GiB: 80 x 2^30 bytes
    assert ax.lines[0].get_xdata()[0] == 80 * GIB
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "H100: 85.9 GB" and labels[1] == "weights: 268.0 B"  # 80 x 2^30 = 85.9e9


def test_memory_of_an_inference_call_by_hand():
    m = keras_flops.memory(mlp(), batch_size=2, training=False)
    assert (m.gradients, m.optimizer_state, m.saved, m.transient) == (0, 0, (), 0)
    assert m.activations == LIVE[BACKEND]
    assert m.peak == WEIGHTS + BATCH + LIVE[BACKEND]


@pytest.mark.parametrize("optimizer", [
    lambda: keras.optimizers.SGD(), lambda: keras.optimizers.SGD(momentum=0.9),
    lambda: keras.optimizers.Adam(), lambda: keras.optimizers.Adam(amsgrad=True),
    lambda: keras.optimizers.AdamW(), lambda: keras.optimizers.Adamax(), lambda: keras.optimizers.Nadam(),
    lambda: keras.optimizers.RMSprop(), lambda: keras.optimizers.RMSprop(momentum=0.5, centered=True),
    lambda: keras.optimizers.Adagrad(), lambda: keras.optimizers.Adadelta(), lambda: keras.optimizers.Lion(),
    lambda: keras.optimizers.Ftrl(), lambda: keras.optimizers.Lamb(), lambda: keras.optimizers.Adam(use_ema=True),
    lambda: keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam()),
    lambda: keras.optimizers.SGD(keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.9), momentum=0.9),
], ids=["sgd", "sgd-momentum", "adam", "adam-amsgrad", "adamw", "adamax", "nadam", "rmsprop",
        "rmsprop-centered", "adagrad", "adadelta", "lion", "ftrl", "lamb", "adam-ema", "loss-scale", "schedule"])
def test_optimizer_state_equals_what_keras_builds(optimizer):
    # counted from the config, never built; checked against the optimizer Keras builds
    model = mlp()
    counted = core.optimizer_state(optimizer(), model.trainable_variables)
    built = optimizer()
    built.build(model.trainable_variables)
    assert counted.total == sum(core.variable_bytes(v) for v in built.variables)


def test_adam_by_name_and_an_unknown_optimizer():
    model = mlp()
    assert core.optimizer_state("adam", model.trainable_variables).slot_bytes == 2 * WEIGHTS

    class Mine(keras.optimizers.SGD):
        pass

    with pytest.raises(ValueError, match="does not know the state of the optimizer Mine"):
        keras_flops.memory(model, batch_size=2, optimizer=Mine())
    m = keras_flops.memory(keras.Model(model.inputs, model.outputs), batch_size=2)  # not compiled
    assert m.optimizer_state == 0 and any("No optimizer" in n for n in m.notes)


def test_weightless_memory_allocates_nothing():
    with keras_flops.without_weights():
        inputs = keras.Input((4,))
        h = keras.layers.Dense(8, name="d1")(inputs)
        outputs = keras.layers.Dense(3, name="d2")(keras.layers.ReLU(name="r")(h))
        model = keras.Model(inputs, outputs)
    model.compile(loss="mse")  # its optimizer (rmsprop) is never built
    m = keras_flops.memory(model, batch_size=2, optimizer="adam")
    assert m.weight_bytes == WEIGHTS and m.optimizer_state == 2 * WEIGHTS + COUNTER[BACKEND] + F32
    assert dict(m.saved) == SAVED[BACKEND]
    assert not any(_compat.is_allocated(v) for v in model.variables)


def test_device_memories():
    assert hardware.memory_bytes("H100") == 80 * GIB == 85_899_345_920
    assert hardware.memory_bytes("NVIDIA H100 80GB HBM3") == 80 * GIB
    assert hardware.memory_bytes("H200") == 141 * GIB
    assert hardware.memory_bytes("NVIDIA A100-SXM4-40GB") == 40 * GIB
    assert hardware.memory_bytes("NVIDIA A100-SXM4-80GB") == hardware.memory_bytes("A100") == 80 * GIB
    assert hardware.memory_bytes("Tesla V100-SXM2-16GB") == 16 * GIB
    assert hardware.memory_bytes("V100") == 32 * GIB
    assert hardware.memory_bytes("NVIDIA L4") == 24 * GIB
    assert hardware.memory_bytes("Tesla T4") == 16 * GIB
    assert hardware.memory_bytes("MI300X") is None
    assert hardware.device("H100").memory_gb == 80


def test_fits():
    m = keras_flops.memory(mlp(), batch_size=2, training=False)
    need = WEIGHTS + BATCH + LIVE[BACKEND]
    fit = m.fits(need)
    assert fit and (fit.needed, fit.capacity, fit.margin) == (need, need, 0)
    short = m.fits(need - 1)
    assert not short and short.margin == -1 and "does not fit" in str(short)
    assert m.fits("T4").margin == 16 * GIB - need
    assert m.fits(keras_flops.Device(1.0, 1.0, "mine", memory_gb=1)).capacity == GIB
    with pytest.raises(ValueError, match="known devices are H200, H100"):
        m.fits("MI300X")
    with pytest.raises(ValueError, match="memory_gb"):
        m.fits(keras_flops.Device(1.0, 1.0))
    out = m.to_dict(device="L4")
    assert out["fits"] == {"device": "L4", "fits": True, "capacity": 24 * GIB, "margin": 24 * GIB - need}
    assert out["peak"] == need and json.loads(json.dumps(out)) == out


def test_largest_batch_by_hand():
    # inference at batch b: the weights, the inputs (16 B a sample) and the live activations
    per_sample = {"tensorflow": 16 + (8 + 3) * F32, "jax": 16 + (8 + 8) * F32}[BACKEND]  # 60 and 80
    model = mlp()
    for b in (1, 2, 5):
        assert keras_flops.memory(model, b, training=False).peak == WEIGHTS + per_sample * b
    # 1,000 B: (1000 - 268) / 60 = 12.2 on TensorFlow, (1000 - 268) / 80 = 9.15 on JAX
    assert keras_flops.largest_batch(model, 1000, training=False) == {"tensorflow": 12, "jax": 9}[BACKEND]
    assert keras_flops.largest_batch(model, WEIGHTS, training=False) == 0  # the weights alone fill it
    # training: the answer fits, the next batch does not
    size = 4000
    best = keras_flops.largest_batch(model, size)
    assert best > 1
    assert keras_flops.memory(model, best).peak <= size < keras_flops.memory(model, best + 1).peak


def test_summary_saved_column(capsys):
    model = mlp()
    keras_flops.summary(model, batch_size=2, columns=("flops", "saved_bytes"), raw_counts=True)
    out = capsys.readouterr().out
    assert "Saved" in out
    row = next(line for line in out.splitlines() if "(ReLU)" in line)
    assert f" {SAVED[BACKEND]['r']} " in row
    with pytest.raises(ValueError, match="needs a training report"):
        keras_flops.summary(model, report=keras_flops.profile(model), columns=("saved_bytes",))


def test_cli_memory(tmp_path, capsys):
    path = str(tmp_path / "mlp.keras")
    mlp().save(path)
    assert cli.main([path, "--memory", "--batch-size", "2", "--device", "L4"]) == 0
    out = capsys.readouterr().out
    assert "optimizer state (Adam)" in out and "fits on L4" in out
    assert cli.main([path, "--memory", "inference", "--batch-size", "2", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["peak"] == WEIGHTS + BATCH + LIVE[BACKEND] and data["training"] is False
    assert cli.main([path, "--memory", "--optimizer", "sgd", "--batch-size", "2", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["optimizer_state"] == COUNTER[BACKEND] + F32
    assert cli.main([path, "--optimizer", "sgd"]) == cli.EXIT_ERROR
    assert "--optimizer goes with --memory" in capsys.readouterr().err


def test_fit_logs_the_estimate_and_no_measured_peak_without_a_gpu():
    model = mlp(optimizer="sgd")
    x, y = np.zeros((32, 4), "float32"), np.zeros((32, 3), "float32")
    cb = keras_flops.FlopsCallback(verbose=0)
    history = model.fit(x, y, batch_size=16, epochs=1, callbacks=[cb], verbose=0).history
    # the step the fit runs: a batch of 16 and its labels, (16, 4) and (16, 3) float32
    labels = keras_flops.backends.of(model).spec((16, 3), "float32")
    expected = keras_flops.memory(model, batch_size=16, targets=labels)
    assert cb.memory.inputs == expected.inputs == 16 * 4 * F32 + 16 * 3 * F32
    assert history["memory_gib"] == [expected.peak / GIB]
    assert "peak_memory_gib" not in history  # this machine has no GPU


def test_fit_logs_the_devices_peak_where_the_backend_reports_it(monkeypatch, tmp_path):
    backend = keras_flops.backends.of()
    monkeypatch.setattr(type(backend), "peak_memory", lambda self: 3 * GIB)
    model = mlp(optimizer="sgd")
    x, y = np.zeros((32, 4), "float32"), np.zeros((32, 3), "float32")
    cb = keras_flops.FlopsCallback(verbose=0, log_dir=str(tmp_path))
    history = model.fit(x, y, batch_size=16, epochs=1, callbacks=[cb], verbose=0).history
    assert history["peak_memory_gib"] == [3.0]
    assert history["memory_gib"] == [cb.memory.peak / GIB]


@pytest.mark.parametrize("mode, by_dtype", [
    # Dense(64 -> 32) and Dense(32 -> 16), Keras's variables as tests/traffic_cases.py pins them
    ("float32", {"float32": (64 * 32 + 32 + 32 * 16 + 16) * F32}),  # 10,432
    # int8 kernels 64 x 32 and 32 x 16; per-unit float32 scales and the biases
    ("int8", {"int8": 64 * 32 + 32 * 16, "float32": (32 + 32 + 16 + 16) * F32}),  # 2,560 and 384
    # int4 kernels packed two to a byte, (64, 16) and (32, 8) int8; (1, units) int8 zero points;
    # float32 scales (1, units), g_idx (one per input) and biases
    ("int4", {"int8": 64 * 16 + 32 * 8 + 32 + 16,
              "float32": (32 + 64 + 32) * F32 + (16 + 32 + 16) * F32}),  # 1,328 and 768
])
def test_quantized_weights_at_their_stored_width(mode, by_dtype):
    import traffic_cases  # its dense_model's variables are pinned by tests/test_traffic.py

    m = keras_flops.memory(traffic_cases.dense_model(mode), batch_size=8, training=False)
    assert m.weights == by_dtype


def test_largest_context_stops_at_the_models_own_maximum():
    keras_hub = pytest.importorskip("keras_hub", reason="pip install --no-deps keras-hub (see the README)")
    with keras_flops.without_weights():
        backbone = keras_hub.models.GPT2Backbone(vocabulary_size=10, num_layers=2, num_heads=2, hidden_dim=8,
                                                 intermediate_dim=16, max_sequence_length=64)
    lm = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
    assert keras_flops.largest_context(lm, GIB) == 64  # 64 learned positions, far from 1 GiB
    # a device that holds 40 tokens' generation and not 41's: the answer is 40
    need = {n: keras_flops.profile_generation(lm, 1, n).memory.peak for n in (40, 41)}
    assert need[40] < need[41]
    assert keras_flops.largest_context(lm, need[40]) == 40
    assert keras_flops.largest_context(backbone, need[40]) == 40  # a backbone: in its CausalLM
