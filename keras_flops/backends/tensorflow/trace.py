"""Tracing a live Keras model into a TensorFlow graph, and who made each op.

``trace`` wraps every sublayer's ``call`` while
a concrete function traces the model (:func:`concrete_function`), and records
which graph ops each layer call created. Keras 3 name scopes get
uniquifying suffixes ("dense" lands in scope "dense_1"), so scope names
cannot be parsed back into layers; recording op ranges during the call can.
Every layer is restored afterwards, also when tracing raises.

The result maps every op, in the traced graph and in every function it
calls, to its owner: ``(layer path, phase)``. Counting only looks it up.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import keras
import tensorflow as tf

from keras_flops import _compat
from keras_flops.backends.tensorflow import graph as graphs
from keras_flops.backends.tensorflow import training_step
from keras_flops.backends.tensorflow.graph import GRADIENT_PREFIX
from keras_flops.core import weightless
from keras_flops.core.layers import LayerRecorder, passed_over
from keras_flops.core.records import BACKWARD, FORWARD, LOSS, LOSS_PHASE, OUTSIDE, LayerRow

Key = Tuple[int, str]  # (id(graph), op name)
Owner = Tuple[str, str]  # (layer path, phase)


@dataclasses.dataclass(frozen=True)
class Trace:
    """A traced model: its concrete function, every op's owner, and the
    layers that were called, in first-call order."""

    function: Any  # tf.types.experimental.ConcreteFunction
    owners: Mapping[Key, Owner]
    layers: Tuple[LayerRow, ...] = ()
    notes: Tuple[str, ...] = ()
    arguments: Tuple[int, ...] = ()  # a trace_call's: the keys of its arguments' placeholders
    returns: Tuple[Optional[int], ...] = ()  # and of the values it returns, None for a small constant
    loose: Tuple[str, ...] = ()  # passed-through calls given a value of their own (LayerRecorder.loose)

    @property
    def graph(self):
        return self.function.graph

    @property
    def outputs(self):
        """Specs of the traced call's outputs (a :func:`trace_call`'s, not its
        variables' updates), in their structure."""
        outputs, _ = self.function.structured_outputs
        return tf.nest.map_structure(lambda t: tf.TensorSpec(t.shape, t.dtype), outputs)

    def owner(self, op) -> Owner:
        """``(layer path, phase)`` of an op of the traced graph or of a
        function it calls; phase is "forward", "loss" or "backward"."""
        return self.owners[(id(op.graph), op.name)]


def tensor_spec(shape, dtype, name=None):
    """A ``tf.TensorSpec``: an input's, a label's, or a variable's stand-in."""
    shape = tuple(None if d is None else int(d) for d in shape)
    return tf.TensorSpec(shape, tf.as_dtype(dtype), name=name)


# --------------------------------------------------------------------------
# Recording layer calls


class GraphRecorder(LayerRecorder):
    """Records the graph ops each layer call creates: Keras 3 name scopes get
    uniquifying suffixes ("dense" lands in scope "dense_1"), so scope names
    cannot be parsed back into layers; recording op ranges during the call can."""

    def __init__(self, model, passthrough=None, viewed: bool = True):
        super().__init__(model, tf.nest.flatten, passthrough, viewed)
        self._calls: List[Tuple[str, Any, int, int]] = []  # path, graph, start, end
        self._zeros: Dict[Tuple[int, int], Any] = {}  # (graph, rank): an update's indices

    def view(self, value):
        """One Identity (a view), where keras.ops makes two reshapes and their shapes' constants."""
        return tf.identity(value)

    def update(self, value):
        """keras.ops.slice_update (one XlaDynamicUpdateSlice) writing ``value`` into
        itself, at indices made once per graph: a 7B's 30 cache slices, 90
        constants and 30 slices fewer than the default's."""
        rank = value.shape.rank
        if not rank:
            return value
        graph = tf.compat.v1.get_default_graph()
        zeros = self._zeros.get((id(graph), rank))
        if zeros is None:  # an immediate (a small constant), held by no buffer
            zeros = self._zeros[(id(graph), rank)] = tf.constant([0] * rank, tf.int32)
        return keras.ops.slice_update(value, zeros, value)

    @contextlib.contextmanager
    def mark(self, path: str):
        graph = tf.compat.v1.get_default_graph()
        start = graphs.num_ops(graph)
        try:
            yield
        finally:
            self._calls.append((path, graph, start, graphs.num_ops(graph)))

    def op_layers(self) -> Dict[Key, str]:
        """Map each recorded op to the innermost layer call that created it.

        Calls finish inner before outer, so walking them in finish order and
        keeping the first claim gives the innermost layer.
        """
        owner: Dict[Key, str] = {}
        ops_cache: Dict[int, list] = {}  # the trace is over: each graph's ops, once
        for path, graph, start, end in self._calls:
            ops = ops_cache.get(id(graph))
            if ops is None:
                ops = ops_cache[id(graph)] = graph.get_operations()
            for op in ops[start:end]:
                owner.setdefault((id(graph), op.name), path)
        return owner


# --------------------------------------------------------------------------
# Tracing


def trace_layer(layer, call: Callable, specs: List) -> Trace:
    """One call of a Keras 3 layer graph's node, as reuse by layer traces it:
    :func:`trace_call` without autograph. A Keras 3 layer runs on every
    backend, so its Python has no control flow on tensors to convert; the
    conversion took most of a decoder block's trace. A layer that needs it
    fails here, and reuse falls back to the whole trace."""
    return trace_call(layer, call, specs, autograph=False)


def trace(model, specs, training: bool = False, targets=None, passthrough=None) -> Trace:
    """Trace ``model`` on ``specs`` into a concrete function, with every op's owner.

    With ``training=True`` the function is one training step without the
    optimizer: the forward pass with ``training=True``, the compiled loss,
    and the gradients with respect to the trainable weights (see
    :mod:`.training_step`). ``targets`` are the labels' specs.
    A model whose weights were never allocated is traced on placeholders for
    its variables (see :mod:`keras_flops.core.weightless`). ``passthrough``:
    the layers whose calls run nothing (see ``LayerRecorder``).
    """
    if not training:
        return trace_call(
            model, lambda inputs, region: model(inputs, training=False), [specs], passthrough=passthrough
        )
    inputs = (specs,) + ((targets,) if targets is not None else ())
    return weightless_trace(
        model,
        passthrough,
        len(tf.nest.flatten(inputs)),
        functools.partial(_trace_step, model, inputs, targets is not None, passthrough),
    )


def _trace_step(model, inputs, has_targets: bool, passthrough, variables, sharing) -> Trace:
    values = (sharing.specs(variables, tensor_spec),) if variables is not None else ()

    def traced(autograph: bool):
        step = training_step.TrainingStep(model, has_targets, variables, sharing)
        with GraphRecorder(model, passthrough, viewed=False) as recorder:
            return (
                step,
                recorder,
                concrete_function(step.step, [*inputs, *values], autograph, variables is not None),
            )

    step, recorder, concrete = without_autograph_first(model, traced)
    return check_run_time_shapes(
        Trace(
            function=concrete,
            owners=attribute(concrete.graph, recorder.op_layers(), step.phases),
            layers=recorder.layers(),
            notes=tuple(dict.fromkeys(step.notes)),
            loose=tuple(recorder.loose),
        )
    )


def weightless_trace(model, passthrough, taken: int, traced: Callable) -> Trace:
    """``traced(variables, sharing)``: a trace of ``model`` whose ``taken``
    first inputs are its arguments; for a weightless model, on placeholders
    for its variables (:mod:`keras_flops.core.weightless`), those that only
    passed-through calls hold sharing one per shape and dtype (a 7B whose
    blocks but two are passed through takes 28 for its 293 variables).
    Where the program read one of those after all (a layer reading a weight
    it does not hold), it is traced again with a placeholder per variable."""
    variables = weightless.deferred_variables(model)
    if variables is None:
        return traced(None, None)
    sharing = weightless.slots(variables, passed_over(model, passthrough))
    trace = traced(variables, sharing)
    inputs = trace.graph.inputs
    if any(inputs[taken + slot].consumers() for slot in sharing.shared):
        trace = traced(variables, weightless.slots(variables))
    return trace


def concrete_function(fn: Callable, specs: list, autograph: bool, weightless: bool):
    """``fn`` traced on ``specs`` into a concrete function.

    A weightless model's program (every variable a placeholder, and every
    value assigned to one returned: :func:`weightless.updates`) writes no
    state it does not return, so it needs none of the control dependencies
    ``tf.function`` adds to order writes to state (a pass over every op);
    ``tf.compat.v1.wrap_function`` traces it without them (and without
    autograph). A model with weights, whose writes to its variables are ops
    of the program's own, and a model traced with autograph, go through
    ``tf.function``."""
    if weightless and not autograph:
        return tf.compat.v1.wrap_function(fn, signature=specs)
    return tf.function(fn, autograph=autograph).get_concrete_function(*specs)


def without_autograph_first(model, traced: Callable):
    """``traced(autograph)``: for a Keras 3 model first without autograph,
    again with it where the model's Python branches or loops on a tensor.

    A Keras 3 model's Python runs on every backend, so it seldom has control
    flow on tensors to convert, and the conversion took a third of a 7B
    training step's trace; a model written for TensorFlow alone may have
    such flow, and TensorFlow says so at once without autograph
    (``OperatorNotAllowedInGraphError``). A tf_keras model is traced with
    autograph, as its ``fit`` runs it."""
    if _compat.is_tf_keras(model):
        return traced(True)
    try:
        return traced(False)
    except tf.errors.OperatorNotAllowedInGraphError:
        return traced(True)


def trace_call(
    model, call: Callable, specs: List, autograph: Optional[bool] = None, passthrough=None
) -> Trace:
    """Trace ``call(*args, region)`` on ``specs``: a function that runs
    ``model`` or parts of it (a language model's ``call_with_cache``, say),
    with every op's owner among ``model``'s layers. ``region(name)`` is a
    context manager that gives the ops created inside it, and in no layer, a
    row of their own (the sampler of a generation step, say). Weightless
    models are traced on placeholders, as by :func:`trace`. ``autograph``:
    convert Python control flow on tensors into graph ops (TensorFlow's
    autograph); by default only where it is needed
    (:func:`without_autograph_first`)."""
    return weightless_trace(
        model,
        passthrough,
        len(tf.nest.flatten(list(specs))),
        functools.partial(_trace_call, model, call, specs, autograph, passthrough),
    )


def _trace_call(model, call, specs, autograph, passthrough, variables, sharing) -> Trace:
    values = [sharing.specs(variables, tensor_spec)] if variables is not None else []

    def fn(*args):
        args, placeholders = (args[:-1], sharing.spread(args[-1])) if variables is not None else (args, None)
        with weightless.values_for(variables, placeholders) as scope:
            outputs = call(*args, recorder.region)
            return outputs, weightless.updates(scope, variables, placeholders)

    recorder = None

    def traced(autograph: bool):
        nonlocal recorder
        with GraphRecorder(model, passthrough) as recorder:
            return recorder, concrete_function(fn, [*specs, *values], autograph, variables is not None)

    if autograph is None:
        recorder, concrete = without_autograph_first(model, traced)
    else:
        recorder, concrete = traced(autograph)
    graph = concrete.graph
    returned = len(tf.nest.flatten(concrete.structured_outputs[0]))
    return check_run_time_shapes(
        Trace(
            function=concrete,
            owners=attribute(graph, recorder.op_layers()),
            layers=recorder.layers(),
            arguments=tuple(id(t) for t in graph.inputs[: len(tf.nest.flatten(list(specs)))]),
            returns=tuple(None if graphs.constant_result(t) else id(t) for t in graph.outputs[:returned]),
            loose=tuple(recorder.loose),
        )
    )


class RunTimeShapeError(ValueError):
    """The traced graph would fail when it runs: a shape check TensorFlow
    leaves to run time fails on the traced shapes."""


def check_run_time_shapes(trace: Trace) -> Trace:
    """``trace``, once every shape check that TensorFlow leaves to run time
    passes on its static shapes; else a RunTimeShapeError naming the layer.

    TensorFlow's graph accepts a ``Slice`` past the end of its input (a
    position embedding of 64 rows sliced for 128 positions) and fails only
    when the graph runs; JAX and eager mode refuse it at once. A count for
    an input the model cannot take would be silently wrong.
    """
    pending, seen = [trace.graph], set()
    while pending:
        graph = pending.pop()
        if id(graph) in seen:
            continue
        seen.add(id(graph))
        for op in graph.get_operations():
            if op.type == "Slice":
                problem = _slice_problem(op)
                if problem:
                    layer = trace.owner(op)[0]
                    raise RunTimeShapeError(
                        f"layer {layer!r} cannot run on these shapes: its {op.type} op "
                        f"{op.name!r} would fail when the graph runs, with TensorFlow's own "
                        f"words: {problem}"
                    )
            elif op.type in graphs.FUNCTION_OPS:
                pending.extend(g for _, g in graphs.called_graphs(op) or ())
    return trace


def _slice_problem(op) -> Optional[str]:
    """What TensorFlow's Slice kernel would say of ``op``'s static shapes, or None."""
    shape = op.inputs[0].shape
    begin, size = tf.get_static_value(op.inputs[1]), tf.get_static_value(op.inputs[2])
    if shape.rank is None or begin is None or size is None:
        return None
    for i, (dim, b, s) in enumerate(zip(shape.as_list(), begin.tolist(), size.tolist())):
        if dim is None:
            continue
        if not 0 <= b <= dim:
            return f"Expected begin[{i}] in [0, {dim}], but got {b}"
        s = dim - b if s == -1 else s
        if not 0 <= s <= dim - b:
            return f"Expected size[{i}] in [0, {dim - b}], but got {s}"
    return None


def attribute(top, recorded: Mapping[Key, str], phases: Mapping[str, str] = None) -> Dict[Key, Owner]:
    """The owner of every op of graph ``top`` and of the functions it calls.

    An op belongs to the innermost layer call that created it (``recorded``).
    A gradient op has no layer of its own; TensorFlow names it
    "gradient_tape/<forward op name>/...", which leads back to the forward op
    and so to its layer, or to the loss. A gradient op with no forward name
    to go by (the AddN summing a shared weight's gradients, a loss's gradient
    at the root scope) goes to the loss if the loss or the labels feed it,
    else to its inputs' layer; one whose inputs have no forward name either
    (a custom gradient's, as a SiLU's) to the layer of the ops it reads. Ops
    of a called function that no layer call created belong to the op that
    calls them. The rest of the top graph is
    "(model)", or "(loss)" in the loss phase. ``phases`` gives top-graph ops'
    phases (default "forward"); a called function's ops take their caller's.
    """
    phases = phases or {}
    loss_scopes = frozenset(
        "/".join(parts[:i])
        for name, phase in phases.items()
        if phase == LOSS_PHASE
        for parts in [name.split("/")]
        for i in range(1, len(parts) + 1)
    )
    scopes = _scope_layers(recorded)
    recorded_anywhere: Dict[str, str] = {}  # by op name alone, in whichever graph
    for (_, name), layer in recorded.items():
        recorded_anywhere.setdefault(name, layer)
    owners: Dict[Key, Owner] = {}
    pending: List[Tuple[Any, Optional[Owner]]] = [(top, None)]
    done = set()
    while pending:
        graph, caller = pending.pop()
        graph_id = id(graph)
        if graph_id in done:
            continue  # a function called twice keeps its first caller
        done.add(graph_id)
        by_name = functools.partial(_layer_by_name, recorded, scopes, loss_scopes, graph_id)
        for op in graph.get_operations():
            name = op.name
            phase = phases.get(name, FORWARD) if caller is None else caller[1]
            layer = by_name(name)
            if layer is None and phase == BACKWARD and caller is not None:
                layer = _in_gradient_body(recorded_anywhere, name)
            if layer is None and phase == BACKWARD:
                layer = _backward_owner(op, by_name, phases if caller is None else {})
            if layer is None and phase == BACKWARD:  # a custom gradient's op (a SiLU's): its inputs' layer
                layer = _made_by(op, owners, graph_id)
            if layer is None:
                layer = LOSS if phase == LOSS_PHASE else (OUTSIDE if caller is None else caller[0])
            owners[(graph_id, name)] = (layer, phase)
            if op.type in graphs.FUNCTION_OPS:
                for _, body in graphs.called_graphs(op) or ():
                    pending.append((body, (layer, phase)))
    return owners


def _scope_layers(recorded: Mapping[Key, str]) -> Dict[Key, str]:
    """The layer of each name scope whose recorded ops (those directly in it)
    all belong to one layer: the scope "mha/einsum" of the op
    "mha/einsum/Einsum" belongs to its layer. A scope shared by two layers
    names neither."""
    found: Dict[Key, set] = {}
    for (graph_id, name), layer in recorded.items():
        scope = name.rpartition("/")[0]
        if scope:
            found.setdefault((graph_id, scope), set()).add(layer)
    return {key: next(iter(layers)) for key, layers in found.items() if len(layers) == 1}


def _longest_prefix(parts: List[str], lookup: Callable[[str], Optional[str]]) -> Optional[str]:
    """``lookup`` of the longest "/"-joined prefix of ``parts`` it answers for."""
    for end in range(len(parts), 0, -1):
        found = lookup("/".join(parts[:end]))
        if found is not None:
            return found
    return None


def _layer_by_name(recorded, scopes, loss_scopes, graph_id: int, name: str) -> Optional[str]:
    """The recorded layer of an op, or of the forward op a gradient op is named after.

    TensorFlow names a gradient op "gradient_tape/<scope>/...", <scope> the
    name scope its forward op was recorded in: often the forward op's own
    name ("query/MatMul"), but for an op made inside a function's scope (the
    attention's "mha/einsum/Einsum") the scope that holds it. The longest
    prefix that is a forward op or such a scope gives the layer.
    """
    layer = recorded.get((graph_id, name))
    if layer is not None or not name.startswith(GRADIENT_PREFIX):
        return layer

    def lookup(prefix: str) -> Optional[str]:
        layer = recorded.get((graph_id, prefix)) or scopes.get((graph_id, prefix))
        return layer or (LOSS if prefix in loss_scopes else None)

    return _longest_prefix(name[len(GRADIENT_PREFIX) :].split("/"), lookup)


def _in_gradient_body(recorded_anywhere: Mapping[str, str], name: str) -> Optional[str]:
    """The layer of the forward op that an op of a gradient function (a
    loop's backward body) differentiates: TensorFlow names it
    ".../gradients/<forward op in the forward body>_grad/...", and that
    forward op lives in another graph, the forward loop's body."""
    start = name.rfind("gradients/")
    if start < 0:
        return None
    parts = name[start + len("gradients/") :].split("/")
    return _longest_prefix(parts, lambda prefix: recorded_anywhere.get(prefix.removesuffix("_grad")))


def _made_by(op, owners: Mapping[Key, Owner], graph_id: int) -> Optional[str]:
    """The layer of the first of ``op``'s inputs that a layer's backward or
    forward op made (ops come in the order they were made, so their inputs
    have owners already); None where none did."""
    for tensor in op.inputs:
        owner = owners.get((graph_id, tensor.op.name))
        if owner is not None and owner[0] not in (OUTSIDE, LOSS):
            return owner[0]
    return None


def _backward_owner(op, by_name: Callable, phases: Mapping[str, str]) -> Optional[str]:
    sources = [t.op for t in op.inputs]
    if any(phases.get(s.name) == LOSS_PHASE for s in sources):
        return LOSS
    if op.type in graphs.FUNCTION_OPS:
        # the gradient of a function the forward pass called (a grouped
        # convolution's): it takes that call's outputs, and belongs to its layer
        for source in sources:
            if source.type in graphs.FUNCTION_OPS and phases.get(source.name, FORWARD) == FORWARD:
                layer = by_name(source.name)
                if layer is not None:
                    return layer
    return next(filter(None, (by_name(s.name) for s in sources)), None)
