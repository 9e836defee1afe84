"""Input specs: the structure of ``tf.TensorSpec`` (TensorFlow) or
``jax.ShapeDtypeStruct`` (JAX) a model is traced on.

Shared by every entry point (``profile``, SavedModels, the callback):
``input_shape`` follows ``keras.Input(shape=...)`` (no batch dim; a tuple for
one input, a list or a dict by name for several) and fills in the dims the
model leaves unknown; ``batch_size`` fixes the batch dim.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import List, Optional, Sequence, Tuple

from keras_flops import _compat, backend


class InputShapeError(ValueError):
    """An input's shape cannot be made fully known for tracing."""


@dataclasses.dataclass(frozen=True)
class Inputs:
    """What a model is traced on: ``specs`` in the model's input structure,
    and notes for the report (sparse inputs counted as dense)."""

    specs: object
    batch_size: int
    notes: Tuple[str, ...] = ()
    names: Tuple[str, ...] = ()  # in flattened order (a JAX spec has no name)

    @property
    def shapes(self) -> Tuple[Tuple[str, Tuple[int, ...]], ...]:
        """``((name, shape), ...)`` of every input, batch dim included."""
        return tuple(
            (getattr(spec, "name", None) or (self.names[i] if i < len(self.names) else f"input {i}"),
             tuple(int(d) for d in spec.shape))
            for i, spec in enumerate(backend.flatten(self.specs))
        )


def check_batch_size(batch_size) -> int:
    """``batch_size`` as an int: any positive integer (numpy's too), not a bool."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
    return int(batch_size)


def resolve(model, batch_size, input_shape=None) -> Inputs:
    """The specs to trace ``model`` on, building an unbuilt model on
    ``input_shape`` as its first call would."""
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
        specs = _specs_from_shapes(input_shape, batch_size)
        return Inputs(specs, batch_size, names=_default_names(input_shape))
    flat = backend.flatten(struct)
    names = _names(struct, flat)
    given = align_shapes(input_shape, names)
    specs = []
    for name, kt, shape in zip(names, flat, given):
        if getattr(kt, "ragged", False):
            raise InputShapeError(
                f"Input {name!r} is ragged: its FLOPs depend on each row's length, so they "
                "cannot be counted from shapes. Profile the model on dense inputs (a model "
                "that takes the padded tensor, e.g. after .to_tensor()), with input_shape= "
                "giving the padded length."
            )
        specs.append(one_spec(name, tuple(kt.shape), shape, batch_size, _dtype(kt)))
    notes = tuple(
        f"Input {name!r} is sparse: it was counted as a dense tensor of its "
        "shape, an upper bound (sparse kernels' FLOPs depend on the number of nonzeros)."
        for name, kt in zip(names, flat) if getattr(kt, "sparse", False)
    )
    return Inputs(backend.pack_sequence_as(struct, specs), batch_size, notes, tuple(names))


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
        raise InputShapeError(
            f"input_shape has {len(shapes)} shapes but the model has {len(names)} inputs."
        )
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


def one_spec(name, model_shape, given, batch_size, dtype):
    """The spec of one input: the model's shape with ``given`` filling its
    unknown dims and ``batch_size`` its batch dim; every dim must end known."""
    sample = tuple(model_shape[1:])
    if given is not None:
        if len(given) != len(sample):
            raise InputShapeError(
                f"input_shape {given} for input {name!r} has {len(given)} dims, but the "
                f"model's input {name!r} has shape {model_shape}, {len(sample)} dims without "
                "the batch dim. Give the shape of one sample, without the batch dim."
            )
        merged = []
        for i, (m, g) in enumerate(zip(sample, given)):
            if m is not None and g is not None and m != g:
                raise InputShapeError(
                    f"input_shape {given} disagrees with the model's input {name!r} "
                    f"{model_shape} at dim {i + 1}: {g} != {m}."
                )
            merged.append(m if g is None else g)
        sample = tuple(merged)
    for i, d in enumerate(sample):
        if d is None:
            example = ", ".join(
                f"<dim {j + 1}>" if x is None else str(x) for j, x in enumerate(sample)
            )
            raise InputShapeError(
                f"Input {name!r} has shape {model_shape}: dim {i + 1} is unknown, so its "
                "FLOPs cannot be counted. Pass input_shape= with every unknown dim fixed "
                f"and without the batch dim: input_shape=({example})."
            )
    batch = model_shape[0] if model_shape else None
    if batch is not None and batch != batch_size:
        raise InputShapeError(
            f"Input {name!r} has a fixed batch size of {batch}; pass batch_size={batch}."
        )
    return backend.spec((batch_size,) + tuple(sample), dtype, name=_spec_name(name))


def _specs_from_shapes(input_shape, batch_size):
    if is_shape(input_shape):
        return one_spec("input", (None,) + _as_shape(input_shape), None, batch_size, "float32")
    if isinstance(input_shape, dict):
        return {
            k: one_spec(k, (None,) + _as_shape(v), None, batch_size, "float32")
            for k, v in input_shape.items()
        }
    return [
        one_spec(f"input {i}", (None,) + _as_shape(s), None, batch_size, "float32")
        for i, s in enumerate(input_shape)
    ]


def _dtype(keras_tensor) -> str:
    return backend.dtype_name(getattr(keras_tensor, "dtype", None) or "float32")


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


def filled_shapes(model, length: int, input_shape=None, only_rank: Optional[int] = None,
                  dims: Optional[Sequence[int]] = None):
    """``input_shape`` for ``model`` with unknown non-batch dims set to ``length``
    (a language model's sequence length): every one, or those at ``dims`` of
    inputs whose sample rank is ``only_rank`` (an image's height and width).
    A dict by name for several inputs (or dict inputs), one shape for one.
    Dims that ``input_shape`` gives win."""
    struct = _compat.inputs_struct(model)
    if struct is None:
        raise InputShapeError(
            f"{describe(model)} has no Input, so there are no unknown dims to fill; "
            "pass input_shape=."
        )
    flat = backend.flatten(struct)
    names = _names(struct, flat)
    given = align_shapes(input_shape, names)
    filled, any_filled = [], False
    for kt, shape in zip(flat, given):
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


def sparse_labels(model) -> bool:
    """Whether the compiled loss takes class ids (a sparse loss) rather than
    labels shaped like the outputs: what labels made for it look like."""
    names = [getattr(fn, "__name__", None) or getattr(fn, "name", None) or str(fn)
             for fn in backend.flatten(model.loss)]
    return any("sparse" in str(n).lower() for n in names)


def fix_batch(specs, batch_size: int):
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
