"""The JAX backend: Keras 3 on JAX.

Models are traced into jaxprs (:mod:`.trace`) and counted through the
walk's adapter over jaxprs (:mod:`.program`), with JAX's primitives mapped
onto the formulas (:mod:`.formulas`). TensorFlow is never imported: the
callback writes TensorBoard events with the ``tensorboard`` package alone.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import jax
import keras

from keras_flops.backends.jax import partition, program
from keras_flops.backends.jax import trace as tracing
from keras_flops.backends.protocol import Distribution, WithoutTensorFlow


class JaxBackend(WithoutTensorFlow):
    """:class:`keras_flops.backends.protocol.Backend` for JAX."""

    name = "jax"
    label = "JAX"
    modes = ("full",)
    global_batch = True  # Keras traces the whole batch and shards it over the mesh

    trace = staticmethod(tracing.trace)
    trace_call = staticmethod(tracing.trace_call)
    count = staticmethod(program.count)
    spec = staticmethod(tracing.abstract_spec)

    def branches_on_a_tensor(self, err: Exception) -> bool:
        """A tracer used as a Python bool or int (``ConcretizationTypeError``
        and its subclasses ``TracerBoolConversionError`` and
        ``TracerIntegerConversionError``)."""
        return isinstance(err, jax.errors.ConcretizationTypeError)

    def partitioner(self, model):
        """XLA's partitioner over the ``keras.distribution`` set, with the
        model's layouts checked; None without one."""
        distribution = partition.active()
        return None if distribution is None else partition.Partitioner(model, distribution)

    def distribution(self, model) -> Distribution:
        """Keras's distribution: the size of the device mesh's batch axis, and
        of the whole mesh (1 and 1 without one). Every process writes."""
        distribution = keras.distribution.distribution()
        mesh = getattr(distribution, "device_mesh", None)
        if mesh is None:
            return Distribution(1, 1, True)
        sizes = dict(zip(mesh.axis_names, mesh.shape))
        replicas = sizes.get(getattr(distribution, "batch_dim_name", None), 1)
        return Distribution(int(replicas), int(math.prod(mesh.shape)), True)

    def outside_distribution(self, fn):
        return fn()  # JAX has no distribution scope

    def gpu_names(self) -> Tuple[str, ...]:
        return tuple(d.device_kind for d in jax.devices() if d.platform == "gpu")

    def tensor_float_32(self) -> bool:
        # JAX's default matmul precision on GPU is TF32 unless set to "highest"
        return str(jax.config.jax_default_matmul_precision or "").lower() not in ("highest", "float32")

    def peak_memory(self) -> Optional[int]:
        """``peak_bytes_in_use`` of ``Device.memory_stats()``, the largest over the GPUs."""
        peaks = []
        for device in jax.local_devices():
            stats = device.memory_stats() if device.platform == "gpu" else None
            if stats and "peak_bytes_in_use" in stats:
                peaks.append(int(stats["peak_bytes_in_use"]))
        return max(peaks) if peaks else None


BACKEND = JaxBackend()
