"""Models counted on both backends, the same way: imported by the JAX suite,
and run as a script under KERAS_BACKEND=tensorflow to give the TensorFlow
counts the suite compares with (``python cases.py OUT.json NAME[:train] ...``)."""

import json
import pathlib
import sys

import keras

import keras_flops

sys.path.insert(0, str(pathlib.Path(__file__).parent.parent))  # tests/: hub_zoo
import hub_zoo  # noqa: E402

APPLICATIONS = ("ResNet50", "MobileNetV2", "EfficientNetB0")
RNNS = ("LSTM", "GRU", "Bidirectional")
# The differential cases (tests/jax_suite/test_differential.py): every traceable
# keras_hub backbone forward; task models and Keras's own layers in training.
HUB_CASES = tuple(f"hub:{name}" for name in hub_zoo.TRACEABLE)
TASK_CASES = tuple(f"task:{name}:train" for name in hub_zoo.TASKS)
KERAS_TRAINING = ("transformer_block:train", "LSTM:train", "GRU:train", "conv1d:train")
EXECUTE_DIFFERENTLY = ("dilated_conv", "upsampling")


def build(name):
    """(model, profile keyword arguments) of a case: also "hub:<backbone>" (a
    keras_hub backbone from its small test config) and "task:<task model>"
    (tests/hub_zoo.py)."""
    kind, _, hub_name = name.partition(":")
    if kind == "hub":
        return hub_zoo.build(hub_name), {"input_shape": hub_zoo.input_shape(hub_name)}
    if kind == "task":
        model, shapes = hub_zoo.build_task(hub_name)
        return model, {"input_shape": shapes}
    if name == "conv1d":
        x = keras.Input((20, 4))
        y = keras.layers.Conv1D(8, 3, strides=2, padding="same", activation="relu", name="c1")(x)
        y = keras.layers.Conv1D(4, 5, dilation_rate=2, name="c2")(y)
        model = keras.Model(x, keras.layers.GlobalAveragePooling1D(name="pool")(y))
        model.compile(loss="mse")
        return model, {}
    if name == "dilated_conv":  # a dilation larger than the image (DeepLabV3's atrous pyramid)
        model = keras.Sequential([keras.Input((6, 6, 2)),
                                  keras.layers.Conv2D(4, 3, dilation_rate=12, padding="same", name="atrous")])
        return model, {}
    if name == "upsampling":
        x = keras.Input((4, 4, 3))
        y = keras.layers.UpSampling2D(2, interpolation="bilinear", name="up")(x)
        return keras.Model(x, keras.layers.Resizing(5, 6, name="resize")(y)), {}
    if name in APPLICATIONS:
        model = getattr(keras.applications, name)(weights=None)
        model.compile(loss="categorical_crossentropy")
        return model, {}
    if name == "transformer_block":
        x = keras.Input((16, 32))
        a = keras.layers.MultiHeadAttention(4, 8, name="mha")(x, x)
        a = keras.layers.LayerNormalization(name="ln")(x + a)
        f = keras.layers.Dense(64, activation="gelu", name="ff1")(a)
        model = keras.Model(x, keras.layers.Dense(32, name="ff2")(f))
        model.compile(loss="mse")
        return model, {}
    if name in RNNS:  # 50 steps
        x = keras.Input((50, 8))
        if name == "Bidirectional":
            rnn = keras.layers.Bidirectional(keras.layers.LSTM(16), name="rnn")
        else:
            rnn = getattr(keras.layers, name)(16, name="rnn")
        model = keras.Model(x, keras.layers.Dense(3, name="d")(rnn(x)))
        model.compile(loss="mse")
        return model, {}
    if name == "conv_forms":  # dilated, grouped, depthwise, separable, transposed, pooling, 1-D
        x = keras.Input((16, 16, 4))
        y = keras.layers.Conv2D(8, 3, dilation_rate=2, padding="same", name="dilated")(x)
        y = keras.layers.Conv2D(8, 3, groups=2, padding="same", name="grouped")(y)
        y = keras.layers.DepthwiseConv2D(3, strides=2, depth_multiplier=2, padding="same",
                                         name="depthwise")(y)
        y = keras.layers.SeparableConv2D(8, 3, strides=2, name="separable")(y)
        y = keras.layers.Conv2DTranspose(6, 3, strides=2, padding="same", name="transposed_same")(y)
        y = keras.layers.Conv2DTranspose(4, 3, strides=2, name="transposed_valid")(y)
        y = keras.layers.AveragePooling2D(2, name="avg")(y)
        y = keras.layers.MaxPooling2D(2, name="max")(y)
        y = keras.layers.Reshape((-1, 4))(y)
        y = keras.layers.Conv1D(4, 3, strides=2, padding="same", name="conv1d")(y)
        model = keras.Model(x, y)
        model.compile(loss="mse")
        return model, {}
    if name == "conv3d":
        x = keras.Input((8, 8, 8, 2))
        y = keras.layers.Conv3D(4, 3, strides=2, padding="same", name="c3")(x)
        y = keras.layers.Conv3DTranspose(2, 3, strides=2, padding="same", name="t3")(y)
        model = keras.Model(x, y)
        model.compile(loss="mse")
        return model, {}
    if name == "gpt2":
        import keras_hub

        model = keras_hub.models.GPT2Backbone(
            vocabulary_size=101, num_layers=2, num_heads=2, hidden_dim=16,
            intermediate_dim=32, max_sequence_length=24)
        return model, {"input_shape": {"token_ids": (12,), "padding_mask": (12,)}}
    raise KeyError(name)


def strided_model(kernel, padding):
    """A 1x1 conv (so the strided one needs its input gradient), then the
    strided conv under test: one channel in and out, on 4x4."""
    model = keras.Sequential([
        keras.Input((4, 4, 1)),
        keras.layers.Conv2D(1, 1, name="a"),
        keras.layers.Conv2D(1, kernel, strides=2, padding=padding, use_bias=False, name="b"),
        keras.layers.Flatten(),
    ])
    model.compile(loss="mse")
    return model


def counts(case):
    """``{"flops", "macs", "backward_flops", "backward_macs", "layers": {path:
    [macs, backward_macs, flops, backward_flops]}, "uncounted", "differ"}`` of
    ``NAME`` (a batch of 2; "layers" holds [macs, flops]) or ``NAME:train``
    (one training step, a batch of 8; keras_hub's task models 2). "differ"
    lists the layers with ops that TensorFlow executes differently from JAX
    (a resize kernel, a space-to-batch): empty on JAX, read from the
    TensorFlow process's counts."""
    name, training = (case[:-len(":train")], True) if case.endswith(":train") else (case, False)
    keras.backend.clear_session()  # Keras's automatic names restart: the same paths in both processes
    model, kwargs = build(name)
    # keras_hub's task models train on a batch of 2, the rest on 8
    batch = (2 if name.startswith("task:") else 8) if training else 2
    report = keras_flops.profile(model, batch_size=batch, training=training, warn=False, **kwargs)
    frame = report.to_dataframe()
    columns = ["macs", "backward_macs", "flops", "backward_flops"] if training else ["macs", "flops"]
    resizing = {op.layer for op in report.ops if op.op_type in RESIZES}
    return {
        "flops": report.flops, "macs": report.macs,
        "backward_flops": report.backward_flops, "backward_macs": report.backward_macs,
        "layers": {path: [int(frame.loc[path, c]) for c in columns] for path in frame.index},
        "uncounted": [u.op_type for u in report.uncounted],
        # layers that resize, or convolve through a space-to-batch (TensorFlow's
        # dilated convolution where the dilation does not divide the padded
        # image): they execute different arithmetic on the two backends
        "differ": sorted(resizing | {op.layer for op in report.ops if op.op_type == "SpaceToBatchND"}),
    }


def folded(layers, top):
    """``layers`` (a case's counts) with every row under ``top`` summed into one row ``top``."""
    rows = {p: v for p, v in layers.items() if not p.startswith(top)}
    rows[top] = [sum(v[i] for p, v in layers.items() if p.startswith(top)) for i in range(4)]
    return rows


def layer_macs(layers, skip=()):
    """{layer: MACs (forward, backward)} of the layers with MACs, but ``skip``."""
    return {path: tuple(v[:2]) if len(v) == 4 else (v[0],) for path, v in layers.items()
            if path not in skip and any(v[:2] if len(v) == 4 else v[:1])}


# Whole-model FLOPs where resizes dominate (dense contractions on JAX).
RESIZED = {"hub:BASNetBackbone", "hub:DeepLabV3Backbone", "hub:DepthAnythingBackbone",
           "hub:SegFormerBackbone"}

# TensorFlow's resize kernels (JAX resizes by dense contractions, dot_general)
RESIZES = frozenset({"ResizeBilinear", "ResizeBicubic", "ResizeArea", "ResizeNearestNeighbor",
                     "ScaleAndTranslate"})


def tensorflow_counts(cases, out):
    """The TensorFlow backend's counts of ``cases``, from one TensorFlow
    process writing ``out``. Where the suites share a file
    (KERAS_FLOPS_TF_COUNTS, set by tests/conftest.py's run_suite), the counts
    one suite wrote serve the next, when they hold every case it needs."""
    import os
    import subprocess

    shared = os.environ.get("KERAS_FLOPS_TF_COUNTS")
    if shared and os.path.exists(shared):
        found = json.loads(pathlib.Path(shared).read_text())
        if all(case in found for case in cases):
            return found
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, str(pathlib.Path(__file__)), str(out), *cases],
                          env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-4000:]
    text = pathlib.Path(out).read_text()
    if shared:
        pathlib.Path(shared).write_text(text)
    return json.loads(text)


if __name__ == "__main__":
    out, *cases = sys.argv[1:]
    with open(out, "w") as f:
        json.dump({case: counts(case) for case in cases}, f)
