"""A dtype's name, the one way every part of keras_flops writes it."""

from __future__ import annotations

from typing import Any, Dict

_NAMES: Dict[Any, str] = {}


def dtype_name(dtype) -> str:
    """ "float32" for a dtype of any framework Keras runs on (numpy,
    TensorFlow, JAX, PyTorch), a Keras dtype, or a name; "float32" for None.
    Keras's own ``keras.backend.standardize_dtype`` reads the frameworks'
    dtypes; a name Keras does not allow (a TensorFlow resource) is kept as
    its framework writes it."""
    if isinstance(dtype, str):
        return dtype
    if dtype is None:
        return "float32"
    try:
        return _NAMES[dtype]
    except (KeyError, TypeError):
        pass
    name = getattr(dtype, "name", None)
    if not isinstance(name, str):
        import keras

        try:
            name = keras.backend.standardize_dtype(dtype)
        except ValueError:
            name = str(dtype)
    try:
        _NAMES[dtype] = name
    except TypeError:  # an unhashable dtype-like value
        pass
    return name
