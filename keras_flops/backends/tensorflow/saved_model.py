"""Profiling a TensorFlow SavedModel directory, which holds no Keras layers.

A SavedModel keeps only functions, traced with an unknown batch dim. Calling
a serving signature at a fixed batch and freezing the variables into
constants inlines those functions, so every shape becomes known. Freezing is
slower than tracing a live Keras model (see the README), and rows are
TensorFlow name scopes rather than layers: Keras's scope names carry
uniquifying suffixes ("dense_1").
"""

from __future__ import annotations

import os

import tensorflow as tf

from keras_flops.backends.tensorflow import _compat as compat
from keras_flops.backends.tensorflow import trace
from keras_flops.backends.tensorflow.program import count
from keras_flops.core import inputs
from keras_flops.core.records import OUTSIDE, LayerRow
from keras_flops.core.report import FlopsReport
from keras_flops.core.walk import MODES

_CALL_PREFIXES = ("StatefulPartitionedCall", "PartitionedCall")


def profile_saved_model(path, batch_size: int, input_shape, signature: str, counting: str) -> FlopsReport:
    """FLOPs and MACs of a SavedModel's serving signature, per name scope
    (the entry point :func:`keras_flops.profile_saved_model` warns of
    uncounted ops).

    ``input_shape`` fills unknown dims: one shape for a one-input signature,
    or a list (in sorted name order) or a dict by input name; ``counting``
    is ``profile``'s.
    """
    if counting not in MODES:
        raise ValueError(f"counting must be one of {MODES}, got {counting!r}.")
    batch_size = inputs.check_batch_size(batch_size)
    loaded = tf.saved_model.load(path)
    if signature not in loaded.signatures:
        raise ValueError(f"{path} has no signature {signature!r}; it has {sorted(loaded.signatures)}.")
    fn = loaded.signatures[signature]
    _, kwargs = fn.structured_input_signature
    names = sorted(kwargs)
    shapes = dict(zip(names, inputs.align_shapes(input_shape, names)))
    specs = {
        name: inputs.one_spec(
            name,
            tuple(kwargs[name].shape.as_list()),
            shapes[name],
            batch_size,
            kwargs[name].dtype,
            trace.tensor_spec,
        )
        for name in names
    }
    specs = {name: tf.TensorSpec(s.shape, s.dtype, name=name) for name, s in specs.items()}
    concrete = tf.function(lambda **kw: fn(**kw)).get_concrete_function(**specs)
    frozen = compat.freeze(concrete)
    graph = frozen.graph
    scopes = {(id(graph), op.name): _scope(op.name) for op in graph.get_operations()}
    traced = trace.Trace(frozen, trace.attribute(graph, {k: v for k, v in scopes.items() if v}))
    counted = count(traced, counting)
    layers = dict.fromkeys(op.layer for op in counted.ops if op.layer != OUTSIDE)
    report = FlopsReport(
        model_name=os.path.basename(os.path.normpath(path)),
        batch_size=batch_size,
        input_shapes=tuple((name, tuple(spec.shape.as_list())) for name, spec in sorted(specs.items())),
        layers=tuple(LayerRow(s, "(name scope)", None, 0, 1) for s in layers),
        ops=counted.ops,
        uncounted=counted.uncounted,
        notes=counted.notes,
        counting=counting,
    )
    return report


def _scope(name: str) -> str:
    """The first name scope under the model's own: ".../sequential_1/fc_1/MatMul" -> "fc_1"."""
    parts = [p for p in name.split("/") if not p.startswith(_CALL_PREFIXES) and p != "Func"]
    if len(parts) < 3:
        return ""
    return parts[1]
