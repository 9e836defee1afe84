"""Which Keras backend a model runs on, and the few things that differ by it
above the trace: nested structures and input specs.

TensorFlow (Keras 3 on TensorFlow, and tf_keras) is traced into a graph by
:mod:`keras_flops.tracing`; JAX into a jaxpr by :mod:`keras_flops.jax_backend`.
Everything else (records, report, rendering, callback logic) is shared. This
module imports neither framework until asked.
"""

from __future__ import annotations

from keras_flops import _compat

SUPPORTED = ("tensorflow", "jax")


class UnsupportedBackendError(ValueError):
    """Keras runs on a backend keras_flops cannot trace."""


def keras_backend() -> str:
    """Keras 3's backend, without importing TensorFlow ("tensorflow" when only
    tf_keras is installed)."""
    try:
        import keras
    except ImportError:  # pragma: no cover - keras is a dependency
        return "tensorflow"
    config = getattr(keras, "config", None)
    name = getattr(config, "backend", None) or getattr(keras.backend, "backend", None)
    return name() if callable(name) else "tensorflow"


def of(model=None) -> str:
    """The backend ``model`` is traced with: "tensorflow" for tf_keras models
    and Keras 3 on TensorFlow, "jax" for Keras 3 on JAX; a clear error otherwise."""
    if model is not None and _compat.is_tf_keras(model):
        return "tensorflow"
    name = keras_backend()
    if name not in SUPPORTED:
        raise UnsupportedBackendError(
            f"keras_flops counts models on the {' and '.join(repr(s) for s in SUPPORTED)} "
            f"backends, but Keras runs on the {name!r} backend. Set KERAS_BACKEND=tensorflow "
            "or KERAS_BACKEND=jax before importing keras."
        )
    return name


def is_jax(model=None) -> bool:
    return of(model) == "jax"


def tracer(model):
    """The module that traces and counts ``model`` on its backend, each with
    ``trace(model, specs, training, targets)``, ``trace_call(model, call,
    specs)`` and ``count(trace, mode, formulas)``: :mod:`keras_flops.tracing`
    (TensorFlow) or :mod:`keras_flops.jax_backend`."""
    if is_jax(model):
        from keras_flops import jax_backend

        return jax_backend
    from keras_flops import tracing

    return tracing


# --------------------------------------------------------------------------
# Nested structures and specs


def _nest():
    """The nested-structure functions of the backend in use: ``tf.nest`` on
    TensorFlow (tf_keras included), ``keras.tree`` on JAX."""
    if keras_backend() == "jax":
        import keras

        return keras.tree
    import tensorflow as tf

    return tf.nest


def flatten(struct):
    return _nest().flatten(struct)


def pack_sequence_as(struct, flat):
    return _nest().pack_sequence_as(struct, flat)


def map_structure(fn, struct):
    """``fn`` on every leaf (None leaves included, on both backends)."""
    nest = _nest()
    return nest.pack_sequence_as(struct, [fn(x) for x in nest.flatten(struct)])


def dtype_name(dtype) -> str:
    """"float32" for a numpy, TensorFlow, JAX or Keras dtype (or its name)."""
    if isinstance(dtype, str):
        return dtype
    name = getattr(dtype, "name", None)
    if isinstance(name, str):
        return name
    import numpy as np

    return np.dtype(dtype).name


def spec(shape, dtype, name=None):
    """A fully shaped input spec: ``tf.TensorSpec`` on TensorFlow,
    ``jax.ShapeDtypeStruct`` on JAX (which has no name: keep it beside)."""
    shape = tuple(None if d is None else int(d) for d in shape)
    if keras_backend() == "jax":
        import jax

        return jax.ShapeDtypeStruct(shape, dtype_name(dtype))
    import tensorflow as tf

    return tf.TensorSpec(shape, tf.as_dtype(dtype_name(dtype)), name=name)
