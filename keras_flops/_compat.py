"""Every access to a private Keras, tf_keras or keras_hub name, in one place.

Each function reads one private thing, says what and from which versions,
and has a test in tests/test_compat.py that fails loudly when a new release
renames or removes it. Nothing else in keras_flops imports ``keras.src``,
reads another object's private attribute, inspects frames, or assigns into a
Keras module, except each backend's own compat module for its framework's
private names (``keras_flops/backends/<name>/_compat.py``: TensorFlow's
graphs and profiler, PyTorch's dispatcher, JAX's jaxprs), which reuses
:class:`CompatError` and :func:`required_attr` from here.

No framework is imported here (tests/test_architecture.py checks it).

Checked on Keras 3.0-3.15, tf_keras 2.16-2.21.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any, Dict, List, Optional


class CompatError(RuntimeError):
    """A private name keras_flops relies on is missing from this Keras or TensorFlow."""


def required_attr(obj, name: str, what: str):
    """``obj.<name>``, or a CompatError that says what is missing: never a silent default."""
    try:
        return getattr(obj, name)
    except AttributeError:
        raise CompatError(
            f"keras_flops could not read {what} ({type(obj).__name__}.{name}) from this "
            "Keras/TensorFlow; this release may have renamed it. Please report it with "
            "your Keras and TensorFlow versions."
        ) from None


# --------------------------------------------------------------------------
# Layers and models


def sublayers(layer) -> List[Any]:
    """A layer's direct sublayers, in tracking order.

    Keras 3 and tf_keras: ``Layer._flatten_layers(include_self=False,
    recursive=False)``, the walk that ``layer.layers`` and ``weights`` use.
    """
    if not hasattr(layer, "built"):
        return []  # a Keras op (keras.ops.add in a functional model), not a layer
    flatten = required_attr(layer, "_flatten_layers", "a layer's sublayers")
    return list(flatten(include_self=False, recursive=False))


def functional_operations(model) -> List[Any]:
    """The Keras operations a functional model applies (its layers and ops
    such as ``keras.ops.add``), in graph order; [] for other models.

    Keras 3: ``Functional._operations`` (tf_keras has no such list).
    """
    return list(getattr(model, "_operations", None) or ())


def is_functional(model) -> bool:
    """Whether a Keras 3 model is functional (``keras.Model(inputs, outputs)``),
    Sequential excluded. Keras 3: ``keras.src.models.Functional``."""
    try:
        from keras.src.models import Functional, Sequential
    except ImportError:  # pragma: no cover - not Keras 3
        return False
    return isinstance(model, Functional) and not isinstance(model, Sequential)


def layer_graph(model):
    """The Keras 3 functional graph that runs when ``model`` is called, or
    None: a functional model, a keras_hub Backbone or task (functional
    subclasses), or a Sequential with an ``Input`` (its ``_functional``),
    none of whose classes defines its own ``call``; None for tf_keras, for a
    subclassed model, and for one whose call adds to the graph.

    Keras 3: ``keras.src.models.Functional``, ``Sequential._functional``.
    """
    try:
        from keras.src.models import Functional, Sequential
    except ImportError:  # pragma: no cover - not Keras 3
        return None
    if is_tf_keras(model):
        return None
    if isinstance(model, Sequential):
        if type(model).call is not Sequential.call:
            return None
        model = getattr(model, "_functional", None)
        if model is None:
            return None
    if not isinstance(model, Functional) or type(model).call is not Functional.call:
        return None
    if getattr(model, "_nnx_op_mapping", None):
        return None  # Flax NNX maps nodes to other operations
    return model


def graph_nodes(graph) -> List[Any]:
    """The nodes of a functional graph in the order ``Functional.call`` runs
    them (deepest first, each depth in its order), input nodes left out.

    Keras 3: ``Function._nodes_by_depth``, ``Node.is_input``, the order of
    ``Function._run_through_graph``.
    """
    by_depth = required_attr(graph, "_nodes_by_depth", "a functional model's nodes")
    nodes = []
    for depth in sorted(by_depth, reverse=True):
        nodes += [
            n
            for n in by_depth[depth]
            if n.operation is not None and not required_attr(n, "is_input", "whether a node is an input")
        ]
    return nodes


def graph_ends(graph):
    """``(inputs, outputs)`` of a functional graph: its flat KerasTensors, in
    the order ``Functional.call`` matches them. Keras 3: ``Function._inputs``,
    ``Function._outputs``."""
    return (
        list(required_attr(graph, "_inputs", "a functional model's inputs")),
        list(required_attr(graph, "_outputs", "a functional model's outputs")),
    )


def node_call(node):
    """``(operation, arguments, input tensors, outputs)`` of a graph node:
    its call's symbolic arguments (Keras 3 ``SymbolicArguments``, whose
    ``fill_in`` maps tensors to values) and its flat KerasTensors."""
    arguments = required_attr(node, "arguments", "a node's call arguments")
    return node.operation, arguments, list(node.input_tensors), list(node.outputs)


def fill_in(arguments, values: Dict[int, Any]):
    """``(args, kwargs)`` of a node's call with each KerasTensor replaced by
    ``values[id(tensor)]``. Keras 3: ``SymbolicArguments.fill_in``."""
    return required_attr(arguments, "fill_in", "a node's argument filling")(values)


def symbolic_arguments(arguments):
    """``(args, kwargs)`` of a node's call as recorded, KerasTensors in place.
    Keras 3: ``SymbolicArguments.args`` and ``.kwargs``."""
    return (
        required_attr(arguments, "args", "a node's positional arguments"),
        required_attr(arguments, "kwargs", "a node's keyword arguments"),
    )


def call_in_graph(operation, args, kwargs, training):
    """``operation(*args, **kwargs)`` as ``Functional.call`` runs it: with
    ``training`` where the operation takes it. Keras 3:
    ``keras.src.models.functional.operation_fn``."""
    from keras.src.models import functional

    fn = required_attr(functional, "operation_fn", "the functional model's call of each node")
    return fn(operation, training=training)(*args, **kwargs)


@contextlib.contextmanager
def serializing_without_tensorflow():
    """Inside, Keras's serialization (every layer's ``get_config()``, for
    its dtype policy) does not import TensorFlow to ask whether a value is a
    ``tf.TensorShape``, where TensorFlow is not imported yet: on JAX and
    PyTorch that import costs a second and half a gigabyte, and no value
    there is TensorFlow's. Keras 3: the LazyModule
    ``keras.src.utils.module_utils.tensorflow`` and its ``_available``.
    """
    if "tensorflow" in sys.modules:
        yield
        return
    from keras.src.utils import module_utils

    lazy = required_attr(module_utils, "tensorflow", "Keras's lazy TensorFlow module")
    if required_attr(lazy, "_available", "whether Keras found TensorFlow") is not None:
        yield  # already decided
        return
    lazy._available = False
    try:
        yield
    finally:
        lazy._available = None


def keras_mask(tensor):
    """The mask Keras propagates with a tensor (symbolic or traced), or None.
    Keras 3: ``_keras_mask``."""
    return getattr(tensor, "_keras_mask", None)


def is_tf_keras(model) -> bool:
    """Whether the object comes from tf_keras (Keras 2) rather than Keras 3."""
    return any(c.__module__.split(".")[0] == "tf_keras" for c in type(model).__mro__)


def inputs_struct(model):
    """The model's symbolic inputs as the user passed them (one, a list or a
    dict), or None when it has none.

    Keras 3: ``Functional._inputs_struct``; a Sequential with an ``Input``
    keeps its functional model in ``Sequential._functional``. tf_keras and
    older forms fall back to the public ``model.inputs``.
    """
    struct = getattr(model, "_inputs_struct", None)
    if struct is None:
        struct = getattr(getattr(model, "_functional", None), "_inputs_struct", None)
    if struct is None:
        try:
            inputs = model.inputs
        except (AttributeError, ValueError):
            inputs = None
        if inputs:
            struct = inputs[0] if len(inputs) == 1 else list(inputs)
    return struct


def keras_tensor_layer_name(keras_tensor) -> Optional[str]:
    """Name of the layer (the ``Input``) that made a symbolic tensor.

    Keras 3: ``KerasTensor._keras_history.operation``; tf_keras: ``.layer``.
    """
    history = getattr(keras_tensor, "_keras_history", None)
    layer = getattr(history, "operation", None) or getattr(history, "layer", None)
    return getattr(layer, "name", None)


def build_shapes(model) -> Dict[str, Any]:
    """The shapes a built layer was built on, by ``build`` argument name.

    Keras 3: ``Layer._build_shapes_dict`` (tf_keras: none, returns {}).
    """
    shapes = getattr(model, "_build_shapes_dict", None)
    return dict(shapes) if isinstance(shapes, dict) else {}


def is_graph_network(layer) -> bool:
    """tf_keras: whether a model is functional or Sequential
    (``Functional._is_graph_network``); False for other layers."""
    return bool(getattr(layer, "_is_graph_network", False))


def is_allocated(variable) -> bool:
    """Whether a Keras 3 variable holds a value: False for one created under
    ``StatelessScope(initialize_variables=False)`` and not initialized since.

    Keras 3: ``Variable._value`` is None until ``_deferred_initialize``;
    tf_keras variables always hold one.
    """
    if not hasattr(variable, "_deferred_initialize"):
        return True  # a tf.Variable, a tf_keras weight
    return required_attr(variable, "_value", "whether a variable is allocated") is not None


def keep_deferred(variables) -> None:
    """Take ``variables`` off Keras 3's list of variables to initialize, so
    that the next ``StatelessScope()`` to exit (a Lambda layer's shape
    inference, say) leaves them unallocated: a weightless 70B stays weightless.

    Keras 3: ``keras.src.backend.common.global_state``'s
    ``"uninitialized_variables"``, which ``initialize_all_variables`` reads.
    """
    from keras.src.backend.common import global_state

    pending = global_state.get_global_attribute("uninitialized_variables")
    if pending is None:
        return
    if not isinstance(pending, list):
        raise RuntimeError(
            "keras_flops reads Keras's list of variables to initialize "
            f"('uninitialized_variables'), and this Keras ({_keras_version()}) keeps a "
            f"{type(pending).__name__} there; please report it."
        )
    dropped = {id(v) for v in variables}
    pending[:] = [v for v in pending if id(v) not in dropped]


def is_valued_variable_in_stateless_scope(err: BaseException) -> bool:
    """Whether ``err`` is Keras refusing a variable made from a value (not an
    initializer) inside a ``StatelessScope``, such as an optimizer's
    iteration counter. Keras 3: the ValueError of ``Variable.__init__``,
    "You are attempting to create a variable while in a stateless scope"."""
    return isinstance(err, ValueError) and "create a variable while in a stateless scope" in str(err)


def pending_variables() -> list:
    """The variables Keras 3 will initialize when the next ``StatelessScope()`` exits."""
    from keras.src.backend.common import global_state

    return list(global_state.get_global_attribute("uninitialized_variables") or [])


def _keras_version() -> str:
    import keras

    return getattr(keras, "__version__", "?")


def remat_mode(layer):
    """The rematerialization a Keras 3 layer was built under
    (``keras.RematScope``), or None. Keras 3.9+: ``Layer._remat_mode``."""
    return getattr(layer, "_remat_mode", None)


def is_compiled(model) -> bool:
    """Whether ``compile()`` was called. Keras 3: ``model.compiled``;
    tf_keras: ``model._is_compiled``."""
    return bool(getattr(model, "compiled", False) or getattr(model, "_is_compiled", False))


# --------------------------------------------------------------------------
# model.summary(): what Keras prints per row


def summary_layers(model) -> List[Any]:
    """The layers (and ops) ``model.summary()`` prints a row for, in its order.

    Keras 3: a functional model's ``_operations`` (its InputLayers and Keras
    ops included), ``model.layers`` otherwise; tf_keras: ``model.layers``.
    """
    if not is_tf_keras(model) and is_functional(model):
        return functional_operations(model)
    return list(model.layers)


def _graph_nodes(model) -> Optional[List[Any]]:
    """Keras 3 / tf_keras: ``model._nodes_by_depth``, as one list; None when
    the model is not a graph network."""
    by_depth = getattr(model, "_nodes_by_depth", None)
    if by_depth is None:
        return None
    return [node for nodes in by_depth.values() for node in nodes]


def _node_inputs(node) -> list:
    """tf_keras: ``Node.keras_inputs``; Keras 3: ``Node.input_tensors`` (a
    list there; in tf_keras the same name is the call's first argument)."""
    inputs = getattr(node, "keras_inputs", None)
    if inputs is None:
        inputs = required_attr(node, "input_tensors", "a node's input tensors")
    return list(inputs)


def _inbound_nodes(layer) -> list:
    """Keras 3 and tf_keras: ``Layer._inbound_nodes``, the calls on symbolic tensors."""
    return list(getattr(layer, "_inbound_nodes", None) or ())


def is_sequential_like(model) -> bool:
    """Whether ``model.summary()`` prints the three-column form (no
    "Connected to"): every depth of the graph has one node with one input,
    and no layer is reused. The rule of both Keras 3's and tf_keras's
    ``print_summary``."""
    import keras

    if type(model).__name__ == "Sequential":
        return True
    if is_tf_keras(model) and not is_graph_network(model):
        return True
    if not is_tf_keras(model) and not is_functional(model):
        return True
    by_depth = getattr(model, "_nodes_by_depth", None) or {}
    nodes = []
    for level in by_depth.values():
        if len(level) > 1 or (len(level) == 1 and len(keras.tree.flatten(_node_inputs(level[0]))) > 1):
            return False
        nodes += level
    for layer in model.layers:
        if sum(1 for node in _inbound_nodes(layer) if node in nodes) > 1:
            return False
    return True


def connections(model, layer) -> List[str]:
    """The "Connected to" cells of a layer: ``name[node][tensor]`` per input.

    Keras 3: ``Node.input_tensors`` and ``KerasTensor._keras_history``
    (operation, node_index, tensor_index); tf_keras: ``Node.iterate_inbound()``.
    """
    relevant = _graph_nodes(model) or []
    out = []
    for node in _inbound_nodes(layer):
        if relevant and node not in relevant:
            continue
        if hasattr(node, "iterate_inbound"):  # tf_keras
            for inbound, node_index, tensor_index, _ in node.iterate_inbound():
                out.append(f"{inbound.name}[{node_index}][{tensor_index}]")
            continue
        for kt in _node_inputs(node):
            history = kt._keras_history
            out.append(f"{history.operation.name}[{history.node_index}][{history.tensor_index}]")
    return out


def output_shapes(layer, fmt):
    """The output shape(s) ``model.summary()`` shows for a Keras 3 layer, each
    shape turned into text by ``fmt``: a string or a structure of strings, or
    None where Keras prints "?".

    Keras 3: the last inbound node's ``output_tensors``, else
    ``compute_output_shape(**layer._build_shapes_dict)``.
    """
    import keras

    nodes = list(required_attr(layer, "_inbound_nodes", "a layer's calls on symbolic tensors"))
    if nodes:
        return keras.tree.map_structure(lambda t: fmt(tuple(t.shape)), nodes[-1].output_tensors)
    built_on = build_shapes(layer)
    if not built_on:
        return None
    try:
        if hasattr(layer, "output_shape"):
            return fmt(layer.output_shape)
        return _map_shapes(fmt, layer.compute_output_shape(**built_on))
    except NotImplementedError:
        return None


def _map_shapes(fn, structure):
    """``fn`` applied to every shape (a tuple of ints and Nones) in a structure."""
    if isinstance(structure, (tuple, list)) and all(d is None or isinstance(d, int) for d in structure):
        return fn(tuple(structure))
    if isinstance(structure, dict):
        return {k: _map_shapes(fn, v) for k, v in structure.items()}
    return type(structure)(_map_shapes(fn, v) for v in structure)


def optimizer_weights(model) -> list:
    """The optimizer's variables, counted by Keras 3's summary once the
    optimizer is built; [] otherwise."""
    optimizer = getattr(model, "optimizer", None)
    if not is_compiled(model) or optimizer is None or not getattr(optimizer, "built", False):
        return []
    return list(optimizer.variables)


def dtype_bits(dtype) -> int:
    """Bits per element as Keras's summary counts them (bool is 1 bit).

    Keras 3: ``keras.src.utils.dtype_utils.dtype_size``.
    """
    from keras.src.backend import standardize_dtype
    from keras.src.utils import dtype_utils

    return dtype_utils.dtype_size(standardize_dtype(dtype))


# --------------------------------------------------------------------------
# Training


def loss_sample_count(model) -> Optional[int]:
    """Samples the compiled loss has been averaged over since the fit began
    (all replicas), or None if unknown. One read, one device sync.

    Keras 3: ``Trainer._loss_tracker`` (a Mean metric); tf_keras:
    ``compiled_loss._total_loss_mean``. Both count samples in ``count``.
    """
    tracker = getattr(model, "_loss_tracker", None)
    if tracker is None:
        tracker = getattr(getattr(model, "compiled_loss", None), "_total_loss_mean", None)
    count = getattr(tracker, "count", None)
    if count is None:
        return None
    try:
        return int(count.numpy() if hasattr(count, "numpy") else count)
    except Exception:  # pragma: no cover - a strategy's mirrored value, say
        return None


def calling_callbacks(depth: int = 2) -> list:
    """The callbacks of the CallbackList that is calling the caller's hook.

    Keras gives a callback no handle on its siblings; the CallbackList calling
    ``on_train_begin`` is that frame's ``self`` (Keras 3 and tf_keras).
    ``depth`` counts frames up from this function.
    """
    frame = sys._getframe(depth)
    callback_list = frame.f_locals.get("self") if frame is not None else None
    return list(getattr(callback_list, "callbacks", None) or ())


# --------------------------------------------------------------------------
# keras.distribution


def layout_map(distribution):
    """The LayoutMap of a ``keras.distribution.ModelParallel``, or None for a
    distribution without one (DataParallel). Keras 3:
    ``ModelParallel._layout_map``, which ``get_variable_layout`` reads (a
    path no rule matches gets a replicated layout, silently)."""
    return getattr(distribution, "_layout_map", None)


# --------------------------------------------------------------------------
# keras_hub


def build_cache(causal_lm):
    """A keras_hub CausalLM's prefill: the method ``generate()`` runs on the
    prompt (padded to the maximum length) to fill the key/value cache, or
    None when the model has none.

    keras_hub 0.x: ``CausalLM._build_cache(token_ids)`` returning
    ``(hidden_states, cache)``.
    """
    return getattr(causal_lm, "_build_cache", None)
