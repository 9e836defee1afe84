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
import warnings

import tensorflow as tf

from keras_flops import counting, tracing
from keras_flops.profiling import UncountedOpsWarning
from keras_flops.report import FlopsReport, LayerRow

_CALL_PREFIXES = ("StatefulPartitionedCall", "PartitionedCall")


def is_saved_model(path) -> bool:
    return os.path.isdir(path) and (
        os.path.exists(os.path.join(path, "saved_model.pb"))
        or os.path.exists(os.path.join(path, "saved_model.pbtxt"))
    )


def profile_saved_model(
    path, batch_size: int = 1, input_shape=None, signature: str = "serving_default",
    counting_mode: str = "full", warn: bool = True,
) -> FlopsReport:
    """FLOPs and MACs of a SavedModel's serving signature, per name scope."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    loaded = tf.saved_model.load(path)
    if signature not in loaded.signatures:
        raise ValueError(
            f"{path} has no signature {signature!r}; it has {sorted(loaded.signatures)}."
        )
    fn = loaded.signatures[signature]
    _, kwargs = fn.structured_input_signature
    given = _given_shapes(input_shape, kwargs)
    specs = {
        name: tracing._one_spec(name, tuple(spec.shape.as_list()), given.get(name), batch_size, spec.dtype)
        for name, spec in kwargs.items()
    }
    specs = {name: tf.TensorSpec(s.shape, s.dtype, name=name) for name, s in specs.items()}
    concrete = tf.function(lambda **kw: fn(**kw)).get_concrete_function(**specs)
    frozen = convert_variables_to_constants_v2(concrete)
    graph = frozen.graph
    op_layers = {(id(graph), op.name): _scope(op.name) for op in graph.get_operations()}
    op_layers = {k: v for k, v in op_layers.items() if v}
    trace = tracing.Trace(
        function=frozen,
        op_layers=op_layers,
        layers=(),
        input_shapes=tuple((n, tuple(s.shape.as_list())) for n, s in specs.items()),
    )
    ops, uncounted, notes = counting.count(trace, mode=counting_mode)
    scopes = dict.fromkeys(op.layer for op in ops if op.layer != tracing.OUTSIDE)
    report = FlopsReport(
        model_name=os.path.basename(os.path.normpath(path)),
        batch_size=batch_size,
        input_shapes=trace.input_shapes,
        layers=tuple(LayerRow(s, "(name scope)", None, 0, 1) for s in scopes),
        ops=tuple(ops),
        uncounted=tuple(uncounted),
        notes=tuple(notes),
        counting=counting_mode,
    )
    if warn and report.uncounted:
        warnings.warn(report.uncounted_summary(), UncountedOpsWarning, stacklevel=2)
    return report


def _given_shapes(input_shape, kwargs) -> dict:
    if input_shape is None:
        return {}
    if isinstance(input_shape, dict):
        return {k: tuple(v) for k, v in input_shape.items()}
    if len(kwargs) != 1:
        raise tracing.InputShapeError(
            f"The signature has inputs {sorted(kwargs)}; pass input_shape= as a dict by name."
        )
    return {next(iter(kwargs)): tuple(input_shape)}


def _scope(name: str) -> str:
    """The first name scope under the model's own: ".../sequential_1/fc_1/MatMul" -> "fc_1"."""
    parts = [p for p in name.split("/") if not p.startswith(_CALL_PREFIXES) and p != "Func"]
    if len(parts) < 3:
        return ""
    return parts[1]
