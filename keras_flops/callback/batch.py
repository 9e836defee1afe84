"""The batch a fit really trains on: seen in the specs Keras traces its
training step with, or counted by the compiled loss after the first step."""

from __future__ import annotations

import functools
from typing import Optional

from keras_flops import _compat


class LossSpy:
    """Wraps one model's ``compute_loss`` (an instance attribute, removed
    again) to see the x and y specs Keras traces the training step with."""

    def __init__(self):
        self.specs = None  # (x specs, y specs)
        self._model = None

    def install(self, model, backend) -> None:
        bound = model.compute_loss
        spy = self

        @functools.wraps(bound)
        def compute_loss(*args, **kwargs):
            if spy.specs is None:
                x = kwargs.get("x", args[0] if args else None)
                y = kwargs.get("y", args[1] if len(args) > 1 else None)
                spy.specs = (spec_of(x, backend), spec_of(y, backend))
            return bound(*args, **kwargs)

        self._had_own = "compute_loss" in vars(model)
        self._own = vars(model).get("compute_loss")
        object.__setattr__(model, "compute_loss", compute_loss)
        self._model = model

    def remove(self) -> None:
        if self._model is None:
            return
        if self._had_own:
            object.__setattr__(self._model, "compute_loss", self._own)
        else:
            vars(self._model).pop("compute_loss", None)
        self._model = None


def replica_batch(model, x_spec, replicas: int, batch_size: Optional[int], backend) -> int:
    """The per-replica batch: ``batch_size`` (global, as the user gave it)
    split over the replicas, the traced specs' static batch (global when the
    backend traces the whole batch and shards it, as JAX does; else per
    replica, as TensorFlow's strategies trace each replica's step), or the
    samples the loss averaged in its first step."""
    if batch_size is not None:
        return max(1, batch_size // replicas)
    static = _static_batch(x_spec, backend)
    if static:
        return max(1, static // replicas) if backend.global_batch else static
    counted = _compat.loss_sample_count(model)
    if counted:
        per_call = getattr(model, "steps_per_execution", 1)  # a variable in tf_keras
        per_call = int(per_call.numpy() if hasattr(per_call, "numpy") else per_call or 1)
        return max(1, counted // per_call // replicas)
    raise ValueError("could not tell the batch size from the data; pass FlopsCallback(batch_size=...)")


def spec_of(value, backend):
    """The specs (``tf.TensorSpec`` or ``jax.ShapeDtypeStruct``) of traced
    tensors, None for what is not a tensor or has an unknown rank."""
    if value is None:
        return None

    def spec(t):
        dims = _dims(t) if hasattr(t, "dtype") else None
        return None if dims is None else backend.spec(dims, t.dtype)

    return backend.map_structure(spec, value)


def _dims(t) -> Optional[tuple]:
    """A tensor's or spec's shape as a tuple (None for unknown dims), or None
    when its rank is unknown."""
    shape = getattr(t, "shape", None)
    if shape is None or getattr(shape, "rank", 0) is None:
        return None
    return tuple(None if d is None else int(d) for d in shape)


def _static_batch(spec, backend) -> Optional[int]:
    for s in backend.flatten(spec) if spec is not None else ():
        dims = _dims(s) if s is not None else None
        if dims and dims[0] is not None:
            return dims[0]
    return None


def sample_shape(spec, backend):
    """Per-sample shape of a single traced input, if fully known (for models with unknown dims)."""
    if spec is None:
        return None
    flat = [s for s in backend.flatten(spec) if s is not None]
    if len(flat) != 1 or _dims(flat[0]) is None:
        return None
    shape = _dims(flat[0])[1:]
    return shape if all(d is not None for d in shape) else None


def usable_targets(spec, backend):
    """The label specs Keras traced with, if every one is known (profile()
    sets their batch dim to the replica's batch), else None: labels are then
    made for the loss."""
    flat = backend.flatten(spec) if spec is not None else [None]
    if any(s is None or _dims(s) is None for s in flat):
        return None
    return spec
