"""Tracing a Keras model on PyTorch: every aten op it runs, and who ran it.

Tracing runs the model once on PyTorch's meta device, where tensors have a
shape and a dtype and no memory, under a dispatch mode (the mechanism
``torch.utils.flop_counter.FlopCounterMode`` counts with) that records each
aten op below autograd: its inputs, its results, its arguments and its
owner. Every variable of the model reads as a meta stand-in that a
``keras.StatelessScope`` maps it to, so no weight is read or allocated and a
weightless 70B config traces the same way; a tensor a layer holds outside
its variables (a constant) is given to each op as a meta copy.

Owners: the layer recorder (:class:`~keras_flops.core.layers.LayerRecorder`)
keeps a stack of the layer calls running; a forward op belongs to the
innermost. A training step is ``torch.autograd.grad`` of the compiled loss
with respect to the trainable stand-ins. Each autograd node the forward pass
makes is tagged with the owner of the op that made it (in the node's
``metadata``); while the backward pass runs, each op belongs to the node
being run, so to the layer whose forward op it differentiates.

The op recorder itself, and the values it gives the walk, are
:mod:`.recorder`'s.
"""

from __future__ import annotations

import dataclasses
from typing import Any, List, Optional, Sequence, Tuple

import keras
import torch

from keras_flops.backends.torch import _compat
from keras_flops.backends.torch.recorder import META, Functions, Op, OpRecorder, tensors
from keras_flops.core import collector, inputs, weightless
from keras_flops.core.dtypes import dtype_name
from keras_flops.core.layers import LayerRecorder
from keras_flops.core.records import LOSS, OUTSIDE, LayerRow


@dataclasses.dataclass(frozen=True)
class TorchSpec:
    """An input's spec on PyTorch: its shape, its dtype's name, a name (a
    leaf of every nested structure, as ``tf.TensorSpec`` and
    ``jax.ShapeDtypeStruct`` are)."""

    shape: Tuple[int, ...]
    dtype: str
    name: Optional[str] = None


def spec(shape, dtype, name=None) -> TorchSpec:
    return TorchSpec(tuple(None if d is None else int(d) for d in shape), dtype_name(dtype), name)


def torch_dtype(dtype) -> torch.dtype:
    name = dtype_name(dtype)
    found = getattr(torch, name, None)
    if not isinstance(found, torch.dtype):
        raise ValueError(f"PyTorch has no dtype {name!r}")
    return found


def meta_tensor(s: TorchSpec, requires_grad: bool = False) -> torch.Tensor:
    if any(d is None for d in s.shape):
        raise ValueError(f"the spec {s.name or ''} has an unknown dim: {s.shape}")
    t = torch.empty(s.shape, dtype=torch_dtype(s.dtype), device=META)
    return t.requires_grad_(True) if requires_grad else t


def _spec_of(t) -> Any:
    if isinstance(t, torch.Tensor):
        return TorchSpec(tuple(t.shape), dtype_name(t.dtype))
    return t


# --------------------------------------------------------------------------
# Tracing


class StackRecorder(LayerRecorder):
    """The layers running, innermost last: a forward op's owner is the innermost."""

    def __init__(self, model, passthrough=None, viewed: bool = True):
        super().__init__(model, keras.tree.flatten, passthrough, viewed)
        self.stack: List[str] = []
        self.ops: Optional[OpRecorder] = None

    def mark(self, path: str):
        return _Marked(self, path)

    def current(self) -> str:
        return self.stack[-1] if self.stack else OUTSIDE


class _Marked:
    __slots__ = ("recorder", "path")

    def __init__(self, recorder: StackRecorder, path: str):
        self.recorder, self.path = recorder, path

    def __enter__(self):
        ops = self.recorder.ops
        if ops is not None:
            ops.settle()  # the last op before the call is its caller's
        self.recorder.stack.append(self.path)

    def __exit__(self, *exc):
        ops = self.recorder.ops
        if ops is not None:
            ops.settle()
        self.recorder.stack.pop()
        return False


@dataclasses.dataclass(frozen=True)
class TorchTrace:
    """A traced model: the ops it ran in order, the keys of its results, the
    layers called in first-call order."""

    ops: Tuple[Op, ...]
    results: Tuple[Any, ...]
    layers: Tuple[LayerRow, ...] = ()
    notes: Tuple[str, ...] = ()
    outputs: Any = None  # specs of the traced call's outputs, in their structure
    arguments: Tuple[Any, ...] = ()  # a trace_call's: the keys of its arguments' tensors
    returns: Tuple[Any, ...] = ()  # and of the tensors it returns (None for one no op made)
    loose: Tuple[str, ...] = ()  # passed-through calls given a value of their own (LayerRecorder.loose)


def _stand_ins(variables, trainable_ids=()):
    """A meta tensor per variable; the trainable floating-point ones require gradients."""
    values = []
    for s, v in zip(weightless.value_specs(variables, spec), variables):
        t = meta_tensor(s)
        values.append(t.requires_grad_(True) if id(v) in trainable_ids and t.is_floating_point() else t)
    return values


def _run(model, fn, specs: Sequence, values: list, training: bool, passthrough=None):
    """``fn(layers, ops, args, values)`` run on meta stand-ins of ``specs``
    and of the variables (``values``) under the op recorder; ``(the layer
    recorder, the op recorder, the keys of the results)``."""
    with collector.paused():  # the trace keeps every tensor it sees: full collections cost more than it
        return _traced(model, fn, specs, values, training, passthrough)


def _traced(model, fn, specs: Sequence, values: list, training: bool, passthrough=None):
    with (
        StackRecorder(model, passthrough, viewed=not training) as layers,
        _compat.torch_device(META),
        _compat.no_torch_generators(),
    ):
        ops = OpRecorder(layers.current, training)
        layers.ops = ops
        args = keras.tree.map_structure(lambda s: None if s is None else _input(ops, s), list(specs))
        with ops, Functions(ops):
            results = fn(layers, ops, args, values)
        ops.finish()
    keys = [ops.key(t) for t in tensors(keras.tree.flatten(results)) if ops.knows(t)]
    return layers, ops, keys


def _input(ops: OpRecorder, s: TorchSpec) -> torch.Tensor:
    """A meta tensor for an input. An integer scalar (a generation's cache
    index) is a constant 0: PyTorch runs eagerly, so a model that slices at
    it needs a value, and what it computes does not depend on which."""
    t = meta_tensor(s)
    if not s.shape and not t.is_floating_point():
        ops.constant(t, torch.zeros((), dtype=t.dtype))
    return t


def trace_call(model, call, specs: Sequence, passthrough=None) -> TorchTrace:
    """Trace ``call(*args, region)`` on ``specs``: a function that runs
    ``model`` or parts of it, as the TensorFlow backend's ``trace_call``.
    ``passthrough``: the layers whose calls run nothing (see ``LayerRecorder``)."""
    variables = weightless.all_variables(model)
    structure = []

    ends = []

    def fn(layers, ops, args, values):
        with torch.no_grad(), weightless.values_for(variables, values) as scope:
            outputs = call(*args, layers.region)
            structure.append(keras.tree.map_structure(_spec_of, outputs))
            ends.append((args, outputs))
            return [outputs, weightless.updates(scope, variables, values)]

    layers, ops, keys = _run(model, fn, specs, _stand_ins(variables), training=False, passthrough=passthrough)

    def keys_of(structure):
        return tuple(
            ops.key(t) if isinstance(t, torch.Tensor) else None for t in keras.tree.flatten(structure)
        )

    args, outputs = ends[0]
    return TorchTrace(
        tuple(ops.ops),
        tuple(keys),
        layers.layers(),
        outputs=structure[0],
        arguments=keys_of(args),
        returns=keys_of(outputs),
        loose=tuple(layers.loose),
    )


def trace(model, specs, training: bool = False, targets=None, passthrough=None) -> TorchTrace:
    """Trace ``model`` on ``specs``: one inference call, or with ``training``
    one training step without the optimizer (forward with ``training=True``,
    the compiled loss, the gradients with respect to the trainable weights).
    ``passthrough``: the layers whose calls run nothing (see ``LayerRecorder``)."""
    if not training:
        return trace_call(model, lambda x, region: model(x, training=False), [specs], passthrough)
    variables = weightless.all_variables(model)
    trainable_ids = {id(v) for v in model.trainable_variables}
    notes: List[str] = []

    def step(layers, ops, args, values):
        x, labels = args[0], (args[1] if len(args) > 1 else None)
        train_values = [t for t in values if t.requires_grad]
        with torch.enable_grad():
            with weightless.values_for(variables, values) as scope:
                y_pred = model(x, training=True)
                with layers.mark(LOSS):
                    loss = inputs.training_loss(model, x, labels, y_pred, notes, keras.tree)
                updates = weightless.updates(scope, variables, values)
            ops.finish()
            ops.backward = True
            grads = torch.autograd.grad(loss, train_values, allow_unused=True) if train_values else []
            ops.backward = False
        return [loss, [g for g in grads if g is not None], updates]

    specs_ = [specs] + ([targets] if targets is not None else [])
    layers, ops, keys = _run(
        model, step, specs_, _stand_ins(variables, trainable_ids), training=True, passthrough=passthrough
    )
    return TorchTrace(
        tuple(ops.ops), tuple(keys), layers.layers(), tuple(dict.fromkeys(notes)), loose=tuple(layers.loose)
    )
