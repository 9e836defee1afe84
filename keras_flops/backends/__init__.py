"""Which backend a model runs on, as a :class:`~keras_flops.backends.protocol.Backend`.

TensorFlow (Keras 3 on TensorFlow, and tf_keras models) is
:mod:`keras_flops.backends.tensorflow`; JAX is :mod:`keras_flops.backends.jax`;
PyTorch is :mod:`keras_flops.backends.torch`.
A backend's module is imported on first use, so that a JAX session never
imports TensorFlow; nothing here imports a framework.
"""

from __future__ import annotations

import importlib

from keras_flops import _compat
from keras_flops.backends.protocol import Backend

SUPPORTED = {
    "tensorflow": "keras_flops.backends.tensorflow.backend",
    "jax": "keras_flops.backends.jax.backend",
    "torch": "keras_flops.backends.torch.backend",
}


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


def of(model=None) -> Backend:
    """The backend ``model`` is traced with: TensorFlow for tf_keras models
    and Keras 3 on TensorFlow, JAX for Keras 3 on JAX; without a model, the
    backend Keras runs on (PyTorch for Keras 3 on PyTorch). A clear error
    for a backend keras_flops cannot trace."""
    name = "tensorflow" if model is not None and _compat.is_tf_keras(model) else keras_backend()
    module = SUPPORTED.get(name)
    if module is None:
        names = [repr(s) for s in SUPPORTED]
        raise UnsupportedBackendError(
            f"keras_flops counts models on the {', '.join(names[:-1])} and {names[-1]} "
            f"backends, but Keras runs on the {name!r} backend. Set KERAS_BACKEND=tensorflow, "
            "KERAS_BACKEND=jax or KERAS_BACKEND=torch before importing keras."
        )
    return importlib.import_module(module).BACKEND


def callbacks():
    """The ``keras.callbacks`` module models of this process call back into:
    the backend's, or Keras's own on a backend keras_flops cannot trace (the
    callback then warns when training begins, and training goes on)."""
    try:
        return of().callbacks()
    except UnsupportedBackendError:
        import keras

        return keras.callbacks


__all__ = ["Backend", "SUPPORTED", "UnsupportedBackendError", "callbacks", "keras_backend", "of"]
