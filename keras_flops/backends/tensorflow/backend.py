"""The TensorFlow backend: Keras 3 on TensorFlow, and tf_keras.

Models are traced into TensorFlow graphs (:mod:`.trace`, with the training
step of :mod:`.training_step`) and counted through the walk's adapter over
graphs (:mod:`.program`), with TensorFlow's own audited statistics
(:mod:`.statistics`) and keras_flops' formulas for TensorFlow's op types
(:mod:`.formulas`). SavedModels (:mod:`.saved_model`) and measured layer
times (:mod:`.measure`) are TensorFlow's alone.
"""

from __future__ import annotations

import sys
import threading
from typing import Optional, Tuple

import tensorflow as tf

from keras_flops.backends.protocol import Distribution, no_distribution
from keras_flops.backends.tensorflow import measure as measuring
from keras_flops.backends.tensorflow import program
from keras_flops.backends.tensorflow import trace as tracing


class TensorFlowBackend:
    """:class:`keras_flops.backends.protocol.Backend` for TensorFlow."""

    name = "tensorflow"
    label = "TensorFlow"
    modes = ("full", "tfprof")
    global_batch = False  # a strategy traces each replica's step on its share of the batch

    trace = staticmethod(tracing.trace)
    trace_call = staticmethod(tracing.trace_call)
    trace_layer = staticmethod(tracing.trace_layer)
    count = staticmethod(program.count)
    spec = staticmethod(tracing.tensor_spec)
    flatten = staticmethod(tf.nest.flatten)
    pack_sequence_as = staticmethod(tf.nest.pack_sequence_as)
    map_structure = staticmethod(tf.nest.map_structure)  # None is a leaf

    def callbacks(self):
        """``tf.keras.callbacks``: Keras 3's, or tf_keras's under ``TF_USE_LEGACY_KERAS=1``."""
        return tf.keras.callbacks

    @staticmethod
    def layer_classes() -> Tuple[type, ...]:
        """Keras 3's layers, ``tf.keras``'s, and tf_keras's where it is imported."""
        import keras

        classes = [keras.layers.Layer]
        if hasattr(tf, "keras"):
            classes.append(tf.keras.layers.Layer)
        legacy = sys.modules.get("tf_keras")  # imported by whoever made a tf_keras model
        if legacy is not None:
            classes.append(legacy.layers.Layer)
        return tuple(classes)

    def branches_on_a_tensor(self, err: Exception) -> bool:
        """A symbolic tensor used as a Python bool (``OperatorNotAllowedInGraphError``)."""
        return isinstance(err, tf.errors.OperatorNotAllowedInGraphError)

    def keep_unallocated(self, variables) -> None:
        pass  # a deferred variable is read only inside a trace, where it is a placeholder

    def partitioner(self, model):
        """None: tf.distribute runs each replica's step, counted per replica;
        a ``keras.distribution`` (JAX's) is a clear error."""
        return no_distribution("TensorFlow")

    def distribution(self, model) -> Distribution:
        """The model's distribution strategy: each replica a device of its own."""
        strategy = getattr(model, "distribute_strategy", None) or tf.distribute.get_strategy()
        replicas = int(strategy.num_replicas_in_sync)
        extended = getattr(strategy, "extended", None)
        return Distribution(replicas, replicas, bool(getattr(extended, "should_save_summary", True)))

    def outside_distribution(self, fn):
        """Run ``fn`` where no distribution strategy's scope is entered: tf_keras
        calls callbacks inside the scope, where a gradient tape cannot read
        distributed variables. A scope is per thread, so a fresh thread has none."""
        if not tf.distribute.has_strategy():
            return fn()
        result = {}

        def run():
            try:
                result["value"] = fn()
            except BaseException as err:  # re-raised in the caller's thread
                result["error"] = err

        thread = threading.Thread(target=run, name="keras_flops-profile")
        thread.start()
        thread.join()
        if "error" in result:
            raise result["error"]
        return result.get("value")

    def gpu_names(self) -> Tuple[str, ...]:
        names = []
        for gpu in tf.config.list_physical_devices("GPU"):
            try:
                names.append(tf.config.experimental.get_device_details(gpu).get("device_name", ""))
            except (ValueError, RuntimeError):  # pragma: no cover
                names.append("")
        return tuple(names)

    def tensor_float_32(self) -> bool:
        return bool(tf.config.experimental.tensor_float_32_execution_enabled())

    def peak_memory(self) -> Optional[int]:
        """``tf.config.experimental.get_memory_info``'s ``peak``, the largest over the GPUs."""
        peaks = []
        for device in tf.config.list_logical_devices("GPU"):
            try:
                peaks.append(int(tf.config.experimental.get_memory_info(device.name)["peak"]))
            except (ValueError, KeyError):  # a device that keeps no statistics
                continue
        return max(peaks) if peaks else None

    def summary_writer(self, log_dir: str) -> "SummaryWriter":
        return SummaryWriter(log_dir)

    def measure(self, report, traced, specs, repeats: int, warmup: int):
        return measuring.measure(report, traced, specs, repeats, warmup)


class SummaryWriter:
    """``tf.summary`` into one directory."""

    def __init__(self, log_dir: str):
        self._writer = tf.summary.create_file_writer(log_dir)

    def scalar(self, tag: str, value: float, step: int) -> None:
        with self._writer.as_default(step=step):
            tf.summary.scalar(tag, value)

    def text(self, tag: str, text: str, step: int) -> None:
        with self._writer.as_default(step=step):
            tf.summary.text(tag, text)

    def flush(self) -> None:
        self._writer.flush()


BACKEND = TensorFlowBackend()
