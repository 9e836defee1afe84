"""Tracing a live Keras model into a TensorFlow graph, and who made each op.

``trace`` builds input ``tf.TensorSpec``s with a fixed batch, wraps every
sublayer's ``call`` while ``tf.function(...).get_concrete_function`` traces the
model, and records which graph ops each layer call created. Keras 3 name
scopes get uniquifying suffixes ("dense" lands in scope "dense_1"), so scope
names cannot be parsed back into layers; recording op ranges during the call
can. Every layer is restored afterwards, also when tracing raises.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from typing import Any, Dict, List, Optional, Sequence, Tuple

import tensorflow as tf

OUTSIDE = "(model)"  # the row for ops created outside every sublayer
LOSS = "(loss)"  # the row for the loss and its gradient, in a training trace
GRADIENT_PREFIX = "gradient_tape/"


class InputShapeError(ValueError):
    """An input's shape cannot be made fully known for tracing."""


@dataclasses.dataclass
class LayerInfo:
    """A layer (or Keras op) of the profiled model that was called while tracing."""

    path: str
    class_name: str
    params: int
    output_shape: Any = None
    calls: int = 0
    order: int = -1


@dataclasses.dataclass(frozen=True)
class Trace:
    """The result of tracing: the concrete function and op attribution.

    A training trace also knows each top-level op's phase: "forward", "loss"
    or "backward" (ops created by ``tape.gradient``).
    """

    function: Any  # tf.types.experimental.ConcreteFunction
    op_layers: Dict[Tuple[int, str], str]  # (id(graph), op name) -> layer path
    layers: Tuple[LayerInfo, ...]  # called layers, in first-call order
    input_shapes: Tuple[Tuple[str, Tuple[int, ...]], ...]
    phases: Dict[str, str] = dataclasses.field(default_factory=dict)  # top-graph op name -> phase
    notes: Tuple[str, ...] = ()
    loss_scopes: frozenset = frozenset()  # every name prefix of a loss op

    def layer_of(self, op) -> Optional[str]:
        """Layer path of a graph op, or None if no layer created it.

        A gradient op has no layer of its own; TensorFlow names it
        "gradient_tape/<forward op name>/...", which leads back to the
        forward op and so to its layer.
        """
        key = (id(op.graph), op.name)
        if key in self.op_layers:
            return self.op_layers[key]
        if op.name.startswith(GRADIENT_PREFIX):
            parts = op.name[len(GRADIENT_PREFIX):].split("/")
            for end in range(len(parts), 0, -1):
                name = "/".join(parts[:end])
                layer = self.op_layers.get((id(op.graph), name))
                if layer is not None:
                    return layer
                if name in self.loss_scopes:
                    return LOSS
        return None

    def phase_of(self, op, default: str = "forward") -> str:
        return self.phases.get(op.name, default) if op.graph is self.function.graph else default


# --------------------------------------------------------------------------
# Input specs


def input_specs(model, batch_size: int, input_shape=None):
    """The structure of ``tf.TensorSpec`` to call ``model`` with.

    ``input_shape`` follows ``keras.Input(shape=...)``: without the batch dim;
    a tuple for one input, a list of tuples or a dict for several. It fills in
    the dims the model leaves unknown.
    """
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
    struct = _model_inputs(model)
    if struct is None:
        if input_shape is None:
            raise InputShapeError(
                f"Cannot tell the input shape of {_describe(model)}: it has no "
                "Input and was never built. Pass input_shape=, the shape of one "
                "sample without the batch dim, e.g. keras_flops.profile(model, "
                "input_shape=(224, 224, 3))."
            )
        return _specs_from_shapes(input_shape, batch_size)
    flat = tf.nest.flatten(struct)
    given = _align_given_shapes(input_shape, struct, flat)
    specs = []
    for i, (kt, shape) in enumerate(zip(flat, given)):
        name = _input_name(kt, i)
        if getattr(kt, "ragged", False):
            raise InputShapeError(
                f"Input {name!r} is ragged: its FLOPs depend on each row's length, so they "
                "cannot be counted from shapes. Profile the model on dense inputs (a model "
                "that takes the padded tensor, e.g. after .to_tensor()), with input_shape= "
                "giving the padded length."
            )
        specs.append(_one_spec(name, tuple(kt.shape), shape, batch_size, _dtype(kt)))
    return tf.nest.pack_sequence_as(struct, specs)


def input_notes(model) -> List[str]:
    """What the report should say about the model's inputs (sparse ones)."""
    struct = _model_inputs(model)
    flat = tf.nest.flatten(struct) if struct is not None else []
    return [
        f"Input {_input_name(kt, i)!r} is sparse: it was counted as a dense tensor of its "
        "shape, an upper bound (sparse kernels' FLOPs depend on the number of nonzeros)."
        for i, kt in enumerate(flat) if getattr(kt, "sparse", False)
    ]


def _input_name(keras_tensor, index: int) -> str:
    history = getattr(keras_tensor, "_keras_history", None)
    layer = getattr(history, "operation", None) or getattr(history, "layer", None)
    return getattr(layer, "name", None) or getattr(keras_tensor, "name", None) or f"input {index}"


def _model_inputs(model):
    """The model's symbolic inputs (single, list or dict), or None if unknown."""
    struct = getattr(model, "_inputs_struct", None)
    if struct is None:
        functional = getattr(model, "_functional", None)  # Sequential with an Input
        struct = getattr(functional, "_inputs_struct", None)
    if struct is None:
        try:
            inputs = model.inputs
        except (AttributeError, ValueError):
            inputs = None
        if inputs:
            struct = inputs[0] if len(inputs) == 1 else list(inputs)
    return struct


def _align_given_shapes(input_shape, struct, flat) -> List[Optional[tuple]]:
    if input_shape is None:
        return [None] * len(flat)
    if isinstance(input_shape, dict):
        if not isinstance(struct, dict):
            raise InputShapeError("input_shape is a dict but the model's inputs are not named in a dict.")
        unknown = set(input_shape) - set(struct)
        if unknown:
            raise InputShapeError(
                f"input_shape names {sorted(unknown)}, which are not inputs of the model; "
                f"its inputs are {sorted(struct)}."
            )
        # tf.nest flattens a dict in sorted key order
        return [_as_shape(input_shape.get(k)) for k in sorted(struct)]
    if _is_shape(input_shape):
        if len(flat) != 1:
            raise InputShapeError(
                f"The model has {len(flat)} inputs; pass input_shape= as a list "
                "(or a dict by input name) with one shape per input."
            )
        return [_as_shape(input_shape)]
    shapes = list(input_shape)
    if len(shapes) != len(flat):
        raise InputShapeError(
            f"input_shape has {len(shapes)} shapes but the model has {len(flat)} inputs."
        )
    return [_as_shape(s) for s in shapes]


def _is_shape(value) -> bool:
    return isinstance(value, (tuple, list, tf.TensorShape)) and all(
        d is None or isinstance(d, int) for d in value
    )


def _as_shape(value) -> Optional[tuple]:
    if value is None:
        return None
    if not _is_shape(value):
        raise InputShapeError(f"input_shape entry {value!r} is not a shape (a tuple of ints).")
    return tuple(value)


def _one_spec(name, model_shape, given, batch_size, dtype) -> tf.TensorSpec:
    sample = model_shape[1:]
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
    return tf.TensorSpec((batch_size,) + tuple(sample), dtype, name=_spec_name(name))


def _specs_from_shapes(input_shape, batch_size):
    if _is_shape(input_shape):
        return _one_spec("input", (None,) + tuple(input_shape), None, batch_size, tf.float32)
    if isinstance(input_shape, dict):
        return {
            k: _one_spec(k, (None,) + tuple(_as_shape(v)), None, batch_size, tf.float32)
            for k, v in input_shape.items()
        }
    return [
        _one_spec(f"input {i}", (None,) + tuple(_as_shape(s)), None, batch_size, tf.float32)
        for i, s in enumerate(input_shape)
    ]


def _dtype(keras_tensor):
    dtype = getattr(keras_tensor, "dtype", None) or "float32"
    return tf.as_dtype(getattr(dtype, "name", dtype))


def _spec_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "_." else "_" for c in name) or "input"


def _describe(model) -> str:
    return f"{type(model).__name__} {getattr(model, 'name', '')!r}".strip()


def build_if_needed(model, input_shape) -> None:
    """Build an unbuilt model on ``input_shape``, as its first call would."""
    if getattr(model, "built", True) or input_shape is None:
        return
    if not _is_shape(input_shape):
        raise InputShapeError(
            f"{_describe(model)} is not built; build it (call it on a batch) before "
            "profiling a model with several inputs."
        )
    model.build((None,) + tuple(input_shape))


def built_input_shape(model) -> Optional[tuple]:
    """The per-sample input shape a built subclassed model was built on, if one."""
    shapes = getattr(model, "_build_shapes_dict", None)
    if isinstance(shapes, dict) and len(shapes) == 1:
        (shape,) = shapes.values()
        if _is_shape(shape) and len(shape) >= 1:
            return tuple(shape[1:])
    return None


# --------------------------------------------------------------------------
# Layer wrapping


def _children(layer) -> List[Any]:
    """Direct sublayers, and for functional models the Keras ops they apply."""
    flatten = getattr(layer, "_flatten_layers", None)
    kids = list(flatten(include_self=False, recursive=False)) if flatten else []
    seen = {id(k) for k in kids}
    for op in getattr(layer, "_operations", None) or ():
        if id(op) not in seen and hasattr(op, "call"):
            kids.append(op)
            seen.add(id(op))
    return kids


def layer_tree(model) -> List[Tuple[str, Any]]:
    """Every sublayer of ``model`` with its path, depth first; each layer once."""
    out: List[Tuple[str, Any]] = []
    seen = {id(model)}
    used_paths = set()

    def visit(parent, prefix):
        for child in _children(parent):
            if id(child) in seen:
                continue  # shared: keeps its first path
            seen.add(id(child))
            path = prefix + child.name
            n = 2
            while path in used_paths:
                path = f"{prefix}{child.name}#{n}"
                n += 1
            used_paths.add(path)
            out.append((path, child))
            visit(child, path + "/")

    visit(model, "")
    return out


def _own_params(layer, children) -> int:
    """Parameters of the weights a layer holds itself, not through sublayers."""
    weights = getattr(layer, "weights", None) or []
    inner = {id(w) for c in children for w in (getattr(c, "weights", None) or [])}
    return int(sum(_size(w) for w in weights if id(w) not in inner))


def _size(weight) -> int:
    n = 1
    for d in weight.shape:
        n *= int(d)
    return n


def _num_ops(graph) -> int:
    """How many ops the graph has: their positions in get_operations() grow
    by one per op. num_operations() asks the C++ graph, in constant time."""
    count = getattr(graph, "num_operations", None)
    return count() if callable(count) else len(graph.get_operations())


def _shapes_of(outputs):
    def shape(t):
        s = getattr(t, "shape", None)
        return tuple(s) if s is not None else None

    flat = [shape(t) for t in tf.nest.flatten(outputs)]
    return flat[0] if len(flat) == 1 else flat


class LayerRecorder:
    """Wraps each sublayer's ``call`` to record the graph ops it creates.

    Use as a context manager around the trace. On exit every layer is put
    back exactly as it was: the instance attribute ``call`` is removed again
    (or restored, if the layer had one of its own).
    """

    _MISSING = object()

    def __init__(self, model):
        self.model = model
        self._entries = layer_tree(model)
        self._saved: List[Tuple[Any, Any]] = []
        self.infos: Dict[str, LayerInfo] = {}
        self._calls: List[Tuple[str, Any, int, int]] = []  # path, graph, start, end
        self._order = 0

    def __enter__(self):
        try:
            for path, layer in self._entries:
                self._wrap(path, layer)
        except BaseException:
            self._restore()
            raise
        return self

    def __exit__(self, *exc):
        self._restore()
        return False

    def _wrap(self, path, layer):
        original = layer.__dict__.get("call", self._MISSING)
        bound = layer.call
        info = LayerInfo(
            path=path,
            class_name=type(layer).__name__,
            params=_own_params(layer, _children(layer)) if hasattr(layer, "weights") else 0,
        )
        recorder = self

        @functools.wraps(bound)
        def call(*args, **kwargs):
            graph = tf.compat.v1.get_default_graph()
            start = _num_ops(graph)
            try:
                outputs = bound(*args, **kwargs)
            finally:
                recorder._calls.append((path, graph, start, _num_ops(graph)))
            if info.calls == 0:
                info.output_shape = _shapes_of(outputs)
                info.order = recorder._order
                recorder._order += 1
            info.calls += 1
            return outputs

        self._saved.append((layer, original))
        object.__setattr__(layer, "call", call)
        self.infos[path] = info

    def _restore(self):
        while self._saved:
            layer, original = self._saved.pop()
            if original is self._MISSING:
                layer.__dict__.pop("call", None)
            else:
                object.__setattr__(layer, "call", original)

    def op_layers(self) -> Dict[Tuple[int, str], str]:
        """Map each recorded op to the innermost layer call that created it.

        Calls finish inner before outer, so walking them in finish order and
        keeping the first claim gives the innermost layer.
        """
        owner: Dict[Tuple[int, str], str] = {}
        ops_cache: Dict[int, list] = {}  # the trace is over: each graph's ops, once
        for path, graph, start, end in self._calls:
            ops = ops_cache.get(id(graph))
            if ops is None:
                ops = ops_cache[id(graph)] = graph.get_operations()
            for op in ops[start:end]:
                owner.setdefault((id(graph), op.name), path)
        return owner

    def called_layers(self) -> Tuple[LayerInfo, ...]:
        called = [i for i in self.infos.values() if i.calls]
        return tuple(sorted(called, key=lambda i: i.order))


def trace(model, specs, training: bool = False, targets=None) -> Trace:
    """Trace ``model`` on ``specs`` into a concrete function, attributing ops to layers.

    With ``training=True`` the function is one training step without the
    optimizer: the forward pass with ``training=True``, the compiled loss,
    and the gradients with respect to the trainable weights. ``targets`` are
    the labels' specs; without them, labels shaped for the compiled loss are
    made inside the graph (zeros: their values do not change the count).
    """
    phases: Dict[str, str] = {}
    notes: List[str] = []
    if training:
        fn = _training_step(model, targets is not None, phases, notes)
        args = (specs, targets) if targets is not None else (specs,)
    else:
        fn = tf.function(lambda inputs: model(inputs, training=False))
        args = (specs,)
    with LayerRecorder(model) as recorder:
        concrete = fn.get_concrete_function(*args)
    shapes = tuple(
        (spec.name or f"input {i}", tuple(spec.shape.as_list()))
        for i, spec in enumerate(tf.nest.flatten(specs))
    )
    return Trace(
        function=concrete,
        op_layers=recorder.op_layers(),
        layers=recorder.called_layers(),
        input_shapes=shapes,
        phases=phases,
        notes=tuple(dict.fromkeys(notes)),
        loss_scopes=frozenset(
            "/".join(parts[:i])
            for name, phase in phases.items() if phase == "loss"
            for parts in [name.split("/")] for i in range(1, len(parts) + 1)
        ),
    )


def _training_step(model, has_targets: bool, phases: Dict[str, str], notes: List[str]):
    """A tf.function for one forward + loss + backward pass, recording op phases."""

    def step(inputs, targets=None):
        graph = tf.compat.v1.get_default_graph()
        mark = [_num_ops(graph)]
        for label in tf.nest.flatten(targets) if targets is not None else ():
            phases[label.op.name] = "loss"  # the labels feed only the loss

        def close(phase):
            ops = graph.get_operations()
            for op in ops[mark[0]:]:
                phases[op.name] = phase
            mark[0] = len(ops)

        with tf.GradientTape() as tape:
            y_pred = model(inputs, training=True)
            close("forward")
            loss = _loss(model, inputs, targets, y_pred, notes)
            close("loss")
        gradients = tape.gradient(loss, model.trainable_weights)
        close("backward")
        return loss, gradients

    if has_targets:
        return tf.function(lambda inputs, targets: step(inputs, targets))
    return tf.function(lambda inputs: step(inputs))


def _loss(model, x, y, y_pred, notes: List[str]):
    compiled = getattr(model, "compiled", False) or getattr(model, "_is_compiled", False)
    if not compiled or getattr(model, "loss", None) is None:
        notes.append(
            "The model is not compiled with a loss: gradients are of the sum of its outputs."
        )
        return tf.add_n([tf.reduce_sum(t) for t in tf.nest.flatten(y_pred)])
    if y is None:
        y = _made_targets(model, y_pred)
    if "training" in inspect.signature(model.compute_loss).parameters:  # Keras 3
        return model.compute_loss(x=x, y=y, y_pred=y_pred, training=True)
    return _tf_keras_loss(model, y, y_pred)


def _tf_keras_loss(model, y, y_pred):
    """tf_keras's compiled loss without the metric updates of compute_loss
    (they need a replica context under a distribution strategy)."""
    losses = model.loss
    outputs, targets = tf.nest.flatten(y_pred), tf.nest.flatten(y)
    if isinstance(losses, dict):
        losses = [losses[name] for name in model.output_names]
    fns = list(losses) if isinstance(losses, (list, tuple)) else [losses] * len(outputs)
    terms = [tf.keras.losses.get(fn)(t, p) for fn, t, p in zip(fns, targets, outputs)]
    terms = [tf.reduce_mean(t) for t in terms] + list(model.losses)
    return tf.add_n(terms)


def _made_targets(model, y_pred):
    """Zero labels shaped for the compiled loss: class ids for sparse losses."""
    loss = model.loss
    names = [getattr(l, "__name__", None) or getattr(l, "name", None) or str(l) for l in tf.nest.flatten(loss)]
    sparse = any("sparse" in str(n).lower() for n in names)

    def make(t):
        if sparse:
            return tf.zeros(tf.shape(t)[:-1], tf.int32)
        return tf.zeros_like(t)

    return tf.nest.map_structure(make, y_pred)


def own_variable_params(model) -> int:
    """Parameters held by the model itself rather than any sublayer."""
    return _own_params(model, _children(model))
