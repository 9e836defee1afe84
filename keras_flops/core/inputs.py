"""Input specs, and labels and the loss of a training trace.

Specs are a backend's (``tf.TensorSpec`` on TensorFlow,
``jax.ShapeDtypeStruct`` on JAX, a ``TorchSpec`` on PyTorch), made by the
``backend`` each function is given. Shared by every entry point (``profile``, SavedModels, the callback):
``input_shape`` follows ``keras.Input(shape=...)`` (no batch dim; a tuple for
one input, a list or a dict by name for several) and fills in the dims the
model leaves unknown; ``batch_size`` fixes the batch dim.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import numbers
import operator
from typing import Any, List, Optional, Sequence, Tuple

from keras_flops import _compat
from keras_flops.core.dtypes import dtype_name


class InputShapeError(ValueError):
    """An input's shape cannot be made fully known for tracing."""


@dataclasses.dataclass(frozen=True)
class Inputs:
    """What a model is traced on: ``specs`` in the model's input structure,
    and notes for the report (sparse inputs counted as dense)."""

    specs: Any
    batch_size: int
    notes: Tuple[str, ...] = ()
    names: Tuple[str, ...] = ()  # in flattened order (a JAX spec has no name)
    flat: Tuple[Any, ...] = ()  # the specs, flattened

    @property
    def shapes(self) -> Tuple[Tuple[str, Tuple[int, ...]], ...]:
        """``((name, shape), ...)`` of every input, batch dim included."""
        return tuple(
            (
                getattr(spec, "name", None) or (self.names[i] if i < len(self.names) else f"input {i}"),
                tuple(int(d) for d in spec.shape),
            )
            for i, spec in enumerate(self.flat)
        )


def check_batch_size(batch_size) -> int:
    """``batch_size`` as an int: any positive integer (numpy's too), not a bool."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
    return int(batch_size)


def resolve(model, batch_size, input_shape, backend) -> Inputs:
    """The specs to trace ``model`` on, made by ``backend``, building an
    unbuilt model on ``input_shape`` as its first call would."""
    batch_size = check_batch_size(batch_size)
    _build_if_needed(model, input_shape)
    struct = _compat.inputs_struct(model)
    if struct is None:
        if input_shape is None:
            input_shape = _built_input_shape(model)
        if input_shape is None:
            raise InputShapeError(
                f"Cannot tell the input shape of {describe(model)}: it has no "
                "Input and was never built. Pass input_shape=, the shape of one "
                "sample without the batch dim, e.g. keras_flops.profile(model, "
                "input_shape=(224, 224, 3))."
            )
        specs = _specs_from_shapes(input_shape, batch_size, backend)
        return Inputs(
            specs, batch_size, names=_default_names(input_shape), flat=tuple(backend.flatten(specs))
        )
    flat = backend.flatten(struct)
    names = _names(struct, flat)
    specs = []
    for name, kt, shape in zip(names, flat, align_shapes(input_shape, names)):
        if getattr(kt, "ragged", False):
            raise InputShapeError(
                f"Input {name!r} is ragged: its FLOPs depend on each row's length, so they "
                "cannot be counted from shapes. Profile the model on dense inputs (a model "
                "that takes the padded tensor, e.g. after .to_tensor()), with input_shape= "
                "giving the padded length."
            )
        specs.append(one_spec(name, tuple(kt.shape), shape, batch_size, _dtype(kt), backend.spec))
    notes = tuple(
        f"Input {name!r} is sparse: it was counted as a dense tensor of its "
        "shape, an upper bound (sparse kernels' FLOPs depend on the number of nonzeros)."
        for name, kt in zip(names, flat)
        if getattr(kt, "sparse", False)
    )
    return Inputs(backend.pack_sequence_as(struct, specs), batch_size, notes, tuple(names), tuple(specs))


def _names(struct, flat) -> List[str]:
    """The inputs' names in flattened order: a flat dict's keys (sorted, as
    tf.nest flattens), else each Input's name."""
    if isinstance(struct, dict) and len(struct) == len(flat):
        return sorted(struct)
    return [_input_name(kt, i) for i, kt in enumerate(flat)]


def _input_name(keras_tensor, index: int) -> str:
    return (
        _compat.keras_tensor_layer_name(keras_tensor)
        or getattr(keras_tensor, "name", None)
        or f"input {index}"
    )


def align_shapes(input_shape, names: Sequence[str]) -> List[Optional[tuple]]:
    """``input_shape`` as one shape (or None) per input, in flattened order.

    ``names`` are the inputs' names in that order (a dict of inputs flattens
    in sorted key order); a dict ``input_shape`` is keyed by them.
    """
    if input_shape is None:
        return [None] * len(names)
    if isinstance(input_shape, dict):
        unknown = set(input_shape) - set(names)
        if unknown:
            raise InputShapeError(
                f"input_shape names {sorted(unknown)}, which are not inputs of the model; "
                f"its inputs are {sorted(names)}."
            )
        return [_as_shape(input_shape.get(k)) for k in names]
    if is_shape(input_shape):
        if len(names) != 1:
            raise InputShapeError(
                f"The model has {len(names)} inputs; pass input_shape= as a list "
                "(or a dict by input name) with one shape per input."
            )
        return [_as_shape(input_shape)]
    shapes = list(input_shape)
    if len(shapes) != len(names):
        raise InputShapeError(f"input_shape has {len(shapes)} shapes but the model has {len(names)} inputs.")
    return [_as_shape(s) for s in shapes]


def is_shape(value) -> bool:
    return (isinstance(value, (tuple, list)) or type(value).__name__ == "TensorShape") and all(
        d is None or isinstance(d, numbers.Integral) for d in value
    )


def _as_shape(value) -> Optional[tuple]:
    if value is None:
        return None
    if not is_shape(value):
        raise InputShapeError(f"input_shape entry {value!r} is not a shape (a tuple of ints).")
    return tuple(None if d is None else int(d) for d in value)


def one_spec(name, model_shape, shape, batch_size, dtype, make_spec):
    """The spec of one input: the model's shape with ``shape`` (one sample's,
    from ``input_shape``) filling its unknown dims and ``batch_size`` its
    batch dim; every dim must end known. ``make_spec(shape, dtype, name)``
    is a backend's."""
    sample = tuple(model_shape[1:])
    if shape is not None:
        if len(shape) != len(sample):
            raise InputShapeError(
                f"input_shape {shape} for input {name!r} has {len(shape)} dims, but the "
                f"model's input {name!r} has shape {model_shape}, {len(sample)} dims without "
                "the batch dim. Give the shape of one sample, without the batch dim."
            )
        merged = []
        for i, (m, g) in enumerate(zip(sample, shape)):
            if m is not None and g is not None and m != g:
                raise InputShapeError(
                    f"input_shape {shape} disagrees with the model's input {name!r} "
                    f"{model_shape} at dim {i + 1}: {g} != {m}."
                )
            merged.append(m if g is None else g)
        sample = tuple(merged)
    for i, d in enumerate(sample):
        if d is None:
            example = ", ".join(f"<dim {j + 1}>" if x is None else str(x) for j, x in enumerate(sample))
            raise InputShapeError(
                f"Input {name!r} has shape {model_shape}: dim {i + 1} is unknown, so its "
                "FLOPs cannot be counted. Pass input_shape= with every unknown dim fixed "
                f"and without the batch dim: input_shape=({example})."
            )
    batch = model_shape[0] if model_shape else None
    if batch is not None and batch != batch_size:
        raise InputShapeError(f"Input {name!r} has a fixed batch size of {batch}; pass batch_size={batch}.")
    return make_spec((batch_size,) + tuple(sample), dtype, name=_spec_name(name))


def _specs_from_shapes(input_shape, batch_size, backend):
    if is_shape(input_shape):
        return one_spec("input", (None,) + _as_shape(input_shape), None, batch_size, "float32", backend.spec)
    if isinstance(input_shape, dict):
        return {
            k: one_spec(k, (None,) + _as_shape(v), None, batch_size, "float32", backend.spec)
            for k, v in input_shape.items()
        }
    return [
        one_spec(f"input {i}", (None,) + _as_shape(s), None, batch_size, "float32", backend.spec)
        for i, s in enumerate(input_shape)
    ]


def _dtype(keras_tensor) -> str:
    return dtype_name(getattr(keras_tensor, "dtype", None))


def _default_names(input_shape) -> Tuple[str, ...]:
    """The names :func:`_specs_from_shapes` gives, in flattened order."""
    if is_shape(input_shape):
        return ("input",)
    if isinstance(input_shape, dict):
        return tuple(sorted(input_shape))
    return tuple(f"input {i}" for i in range(len(input_shape)))


def _spec_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "_." else "_" for c in name) or "input"


def describe(model) -> str:
    return f"{type(model).__name__} {getattr(model, 'name', '')!r}".strip()


def _build_if_needed(model, input_shape) -> None:
    """Build an unbuilt model on ``input_shape``, as its first call would."""
    if getattr(model, "built", True) or input_shape is None:
        return
    if not is_shape(input_shape):
        raise InputShapeError(
            f"{describe(model)} is not built; build it (call it on a batch) before "
            "profiling a model with several inputs."
        )
    model.build((None,) + _as_shape(input_shape))


def _built_input_shape(model) -> Optional[tuple]:
    """The per-sample input shape a built subclassed model was built on, if one."""
    shapes = _compat.build_shapes(model)
    if len(shapes) == 1:
        (shape,) = shapes.values()
        if is_shape(shape) and len(shape) >= 1:
            return tuple(shape[1:])
    return None


def filled_shapes(
    model,
    length: int,
    input_shape,
    backend,
    only_rank: Optional[int] = None,
    dims: Optional[Sequence[int]] = None,
):
    """``input_shape`` for ``model`` with unknown non-batch dims set to ``length``
    (a language model's sequence length): every one, or those at ``dims`` of
    inputs whose sample rank is ``only_rank`` (an image's height and width).
    A dict by name for several inputs (or dict inputs), one shape for one.
    Dims that ``input_shape`` gives win."""
    struct = _compat.inputs_struct(model)
    if struct is None:
        raise InputShapeError(
            f"{describe(model)} has no Input, so there are no unknown dims to fill; pass input_shape=."
        )
    flat = backend.flatten(struct)
    names = _names(struct, flat)
    filled, any_filled = [], False
    for kt, shape in zip(flat, align_shapes(input_shape, names)):
        sample = tuple(kt.shape)[1:]
        shape = shape or (None,) * len(sample)
        eligible = only_rank is None or len(sample) == only_rank
        dims_out = []
        for i, (m, g) in enumerate(zip(sample, shape)):
            if g is None and m is None and eligible and (dims is None or i in dims):
                dims_out.append(length)
                any_filled = True
            else:
                dims_out.append(g if g is not None else m)
        filled.append(tuple(dims_out))
    if not any_filled:
        raise InputShapeError(
            f"{describe(model)} has no unknown input dims to set to {length} "
            f"(its inputs: {', '.join(f'{n} {tuple(kt.shape)}' for n, kt in zip(names, flat))}); "
            "a sweep over a length or size needs a model whose inputs leave it unknown."
        )
    if len(filled) == 1 and not isinstance(struct, dict):
        return filled[0]
    return dict(zip(names, filled))


# --------------------------------------------------------------------------
# Labels, for a training trace

NO_LOSS_NOTE = "The model is not compiled with a loss: gradients are of the sum of its outputs."


def has_compiled_loss(model) -> bool:
    return _compat.is_compiled(model) and getattr(model, "loss", None) is not None


def sparse_labels(model, backend) -> bool:
    """Whether the compiled loss takes class ids (a sparse loss) rather than
    labels shaped like the outputs: what labels made for it look like."""
    names = [
        getattr(fn, "__name__", None) or getattr(fn, "name", None) or str(fn)
        for fn in backend.flatten(model.loss)
    ]
    return any("sparse" in str(n).lower() for n in names)


def training_loss(model, x, y, y_pred, notes: List[str], backend, legacy_loss=None):
    """The loss a training step differentiates, as Keras's own step computes
    it: the compiled loss on ``y`` (zero labels shaped for it when ``y`` is
    None: their values do not change the count), or the sum of the outputs,
    with a note, for a model compiled without one. ``legacy_loss(model, y,
    y_pred)`` computes a compiled loss whose ``compute_loss`` takes no
    ``training`` (tf_keras's)."""
    import keras

    ops = keras.ops
    if not has_compiled_loss(model):
        notes.append(NO_LOSS_NOTE)
        terms = [ops.sum(t) for t in backend.flatten(y_pred)]
        return functools.reduce(operator.add, terms)
    if y is None:
        sparse = sparse_labels(model, backend)
        y = backend.map_structure(
            lambda t: ops.zeros(tuple(t.shape)[:-1], "int32") if sparse else ops.zeros_like(t), y_pred
        )
    if legacy_loss is not None and "training" not in inspect.signature(model.compute_loss).parameters:
        return legacy_loss(model, y, y_pred)
    return model.compute_loss(x=x, y=y, y_pred=y_pred, training=True)


def fix_batch(specs, batch_size: int, backend):
    """Specs (labels, say) with their batch dim set to ``batch_size``: the
    labels of one batch, where the specs leave it unknown or give another
    (the global batch a JAX step is traced on, of which one replica takes
    ``batch_size``)."""
    if specs is None:
        return None

    def fix(spec):
        shape = list(spec.shape)
        if shape:
            shape[0] = batch_size
        return backend.spec(shape, spec.dtype)

    return backend.map_structure(fix, specs)
