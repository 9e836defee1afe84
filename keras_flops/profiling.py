"""``profile``: trace a model, count its ops, and build a FlopsReport."""

from __future__ import annotations

import re
import warnings
from typing import Mapping, Optional

from keras_flops import counting as counting_
from keras_flops import tracing
from keras_flops.report import FlopsReport, LayerRow


class UncountedOpsWarning(UserWarning):
    """Some ops may cost FLOPs but have no formula; see ``report.uncounted``."""


class ProfileError(RuntimeError):
    """The model could not be traced; the message says why and what to do."""


def profile(
    model,
    batch_size: int = 1,
    input_shape=None,
    *,
    training: bool = False,
    targets=None,
    counting: str = "full",
    formulas: Optional[Mapping] = None,
    warn: bool = True,
) -> FlopsReport:
    """Count the FLOPs and MACs of one forward pass of ``model``, per layer.

    Args:
      model: a built Keras model (functional, Sequential or subclassed) or layer.
      batch_size: the batch the counts are for; counts scale linearly with it.
      input_shape: shape of one sample, without the batch dim, for models
        whose input has unknown dims or that have no ``Input``: a tuple, or a
        list or dict of tuples for several inputs. A model that was never
        built is built on it, as its first call would build it.
      training: count one training step instead: the forward pass with
        ``training=True``, the compiled loss, and the gradients with respect to
        the trainable weights (not the optimizer's update). ``report.flops``
        is then the forward pass and loss, ``report.backward_flops`` the
        gradients, ``report.train_flops`` both, and the per-layer table has
        backward columns.
      targets: specs (``tf.TensorSpec``) of the labels for ``training=True``;
        by default labels shaped for the compiled loss are made in the graph.
      counting: ``"full"`` (default) counts every op with a formula, enters
        loops, branches and called functions, and skips ops that feed no
        output; ``"tfprof"`` reproduces tf.compat.v1.profiler exactly:
        TensorFlow's formulas only, every op of the top graph, no functions.
      formulas: ``{op_type: formula}`` used for this call only, before every
        other formula (see ``keras_flops.register_flops``).
      warn: warn once, naming them, when some ops could not be counted.

    The model is traced into a TensorFlow graph and left exactly as it was.
    """
    _check_model(model)
    if counting not in counting_.MODES:
        raise ValueError(f"counting must be one of {counting_.MODES}, got {counting!r}.")
    tracing.build_if_needed(model, input_shape)
    if input_shape is None and tracing._model_inputs(model) is None:
        input_shape = tracing.built_input_shape(model)
    specs = tracing.input_specs(model, batch_size, input_shape)
    try:
        traced = tracing.trace(model, specs, training=training, targets=_targets(targets, batch_size))
    except Exception as err:
        shapes = ", ".join(str(tuple(s.shape.as_list())) for s in _flat(specs))
        raise ProfileError(
            f"Tracing {type(model).__name__} {model.name!r} on inputs of shape {shapes} "
            f"failed: {_reason(err)} Check that the model runs on such a batch "
            "(model(x) in eager mode), or pass input_shape= / batch_size=."
        ) from err
    ops, uncounted, notes = counting_.count(traced, formulas, mode=counting)
    report = FlopsReport(
        model_name=model.name,
        batch_size=batch_size,
        input_shapes=traced.input_shapes,
        layers=_rows(model, traced, ops, uncounted),
        ops=tuple(ops),
        uncounted=tuple(uncounted),
        notes=tuple(tracing.input_notes(model) + notes),
        counting=counting,
        training=training,
    )
    if warn and report.uncounted:
        warnings.warn(report.uncounted_summary(), UncountedOpsWarning, stacklevel=2)
    return report


def _rows(model, traced, ops, uncounted):
    rows = [
        LayerRow(i.path, i.class_name, i.output_shape, i.params, i.calls) for i in traced.layers
    ]
    own_params = tracing.own_variable_params(model)
    outside = [op for op in ops if op.layer == tracing.OUTSIDE and op.flops]
    if outside or own_params or any(u.layer == tracing.OUTSIDE for u in uncounted):
        rows.append(LayerRow(tracing.OUTSIDE, type(model).__name__, None, own_params, 1))
    return tuple(rows)


def _targets(targets, batch_size):
    """Label specs with the batch dim fixed to ``batch_size``."""
    if targets is None:
        return None
    import tensorflow as tf

    def fix(spec):
        shape = list(spec.shape)
        if shape and shape[0] is None:
            shape[0] = batch_size
        return tf.TensorSpec(shape, spec.dtype)

    return tf.nest.map_structure(fix, targets)


def _reason(err: Exception) -> str:
    """The error's own words, without AutoGraph's staged traceback, Keras's
    argument listing or terminal colours."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err))
    kept, in_code = [], False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("File ") or stripped == "in user code:":
            in_code = stripped.startswith("File ")
            continue
        if in_code and line.startswith("        "):  # the source line under a File line
            continue
        in_code = False
        if not stripped or stripped.startswith(("Arguments received", "•")):
            continue
        kept.append(stripped)
    reason = " ".join(kept) or type(err).__name__
    if not reason.startswith(type(err).__name__):
        reason = f"{type(err).__name__}: {reason}"
    return reason if reason.endswith(".") else reason + "."


def _flat(specs):
    import tensorflow as tf

    return tf.nest.flatten(specs)


def _check_model(model) -> None:
    if not (hasattr(model, "_flatten_layers") and callable(getattr(model, "call", None))):
        raise TypeError(
            f"keras_flops.profile expects a Keras model or layer, got {type(model).__name__}. "
            "Build one with keras.Model, keras.Sequential or a keras.layers.Layer subclass."
        )
    module = type(model).__module__
    if module.startswith("keras"):
        import keras

        backend = keras.backend.backend()
        if backend != "tensorflow":
            raise ValueError(
                f"keras_flops counts TensorFlow graphs, but Keras runs on the {backend!r} "
                "backend. Set KERAS_BACKEND=tensorflow before importing keras."
            )
