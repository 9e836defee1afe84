"""Memory on JAX: the hand-worked tests of tests/test_memory.py (run here, in
the JAX process, with JAX's numbers), and the saved activations against
JAX's own account of what a gradient keeps, ``print_saved_residuals``."""

import contextlib
import io
import re

import jax
import keras
import numpy as np

import keras_flops
from test_memory import (  # noqa: F401  (collected here, on JAX)
    test_a_silu_keeps_by_hand,
    test_a_training_step_keeps_by_hand,
    test_adam_by_name_and_an_unknown_optimizer,
    test_cli_memory,
    test_device_memories,
    test_fit_logs_the_devices_peak_where_the_backend_reports_it,
    test_fit_logs_the_estimate_and_no_measured_peak_without_a_gpu,
    test_fits,
    test_largest_batch_by_hand,
    test_largest_context_stops_at_the_models_own_maximum,
    test_memory_of_a_training_step_by_hand,
    test_memory_of_an_inference_call_by_hand,
    test_optimizer_state_equals_what_keras_builds,
    test_quantized_weights_at_their_stored_width,
    test_summary_saved_column,
    test_weightless_memory_allocates_nothing,
)

L = keras.layers
SIZES = {"f32": 4, "bool": 1, "i32": 4}


def residuals(model, shape):
    """``print_saved_residuals`` of the model's loss (its forward pass with
    training=True and its compiled loss on zero labels) with respect to its
    trainable weights and its input: ``(bytes, line)`` per residual that is
    not an argument."""
    trainable = [v.value for v in model.trainable_variables]
    other = [v.value for v in model.non_trainable_variables]
    x = np.zeros(shape, "float32")

    def loss(trainable, x):
        y_pred, _ = model.stateless_call(trainable, other, x, training=True)
        return model.compute_loss(x, np.zeros(shape, "float32"), y_pred)

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        jax.ad_checkpoint.print_saved_residuals(loss, trainable, x)
    found = []
    for line in out.getvalue().splitlines():
        dtype, dims, what = re.match(r"(\w+)\[([\d,]*)\] (.*)", line).groups()
        if "from the argument" not in what:
            found.append((int(np.prod([int(d) for d in dims.split(",") if d])) * SIZES[dtype], line))
    return found


def saved(model, shape) -> int:
    return keras_flops.profile(model, batch_size=shape[0], input_shape=shape[1:], training=True).saved_bytes


def test_a_transformer_blocks_saved_activations_are_jaxs_residuals():
    x = keras.Input((16, 32))
    a = L.MultiHeadAttention(4, 8, name="mha")(x, x)
    h = L.LayerNormalization(name="ln1")(L.Add()([x, a]))
    f = L.Dense(32, name="ff2")(L.Dense(64, activation="gelu", name="ff1")(h))
    model = keras.Model(x, L.LayerNormalization(name="ln2")(L.Add()([h, f])))
    model.compile(loss="mse")
    found = residuals(model, (2, 16, 32))
    # print_saved_residuals also lists what is not an activation's buffer:
    # two constants written into the program (literals, 4 B each), and each
    # LayerNormalization's gamma reshaped to (1, 1, 32), a view of the weight
    # itself (32 x 4 B each).
    literals = [n for n, line in found if "from a literal" in line]
    gammas = [n for n, line in found if line.startswith("f32[1,1,32] output of reshape")]
    assert literals == [4, 4] and gammas == [128, 128]
    assert saved(model, (2, 16, 32)) == sum(n for n, _ in found) - 2 * 4 - 2 * 32 * 4


def test_a_resnet_blocks_saved_activations_are_jaxs_residuals():
    x = keras.Input((8, 8, 16))
    h = L.ReLU()(L.BatchNormalization(name="bn1")(L.Conv2D(16, 3, padding="same", name="c1")(x)))
    h = L.BatchNormalization(name="bn2")(L.Conv2D(16, 3, padding="same", name="c2")(h))
    model = keras.Model(x, L.ReLU()(L.Add()([x, h])))
    model.compile(loss="mse")
    found = residuals(model, (2, 8, 8, 16))
    # Beyond the activations: each BatchNormalization's gamma reshaped to
    # (1, 1, 1, 16), a view of the weight (16 x 4 B each); and each ReLU's
    # derivative's zeros, broadcast from the literal 0 to (2, 8, 8, 16)
    # (2 x 8 x 8 x 16 x 4 B = 8,192 each): print_saved_residuals' partial
    # evaluation keeps them, while the step that value_and_grad traces (and
    # keras_flops counts) makes them again in the backward pass.
    gammas = [n for n, line in found if line.startswith("f32[1,1,1,16] output of reshape")]
    zeros = [n for n, line in found if line.startswith("f32[2,8,8,16] output of broadcast_in_dim")]
    assert gammas == [64, 64] and zeros == [8192, 8192]
    assert saved(model, (2, 8, 8, 16)) == sum(n for n, _ in found) - 2 * 16 * 4 - 2 * 2 * 8 * 8 * 16 * 4
