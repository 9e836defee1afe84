"""Every private Keras/TensorFlow name keras_flops reads, one test each.

Each test names the private thing it relies on, so that a Keras or
TensorFlow release that renames it fails here, loudly, by name.
"""

import ast
import pathlib
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_flops
from keras_flops import _compat
from keras_flops.backends.tensorflow import _compat as tf_compat


def two_inputs():
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    added = keras.layers.Add(name="add")([a, b])
    return keras.Model([a, b], keras.layers.Dense(2, name="d")(added), name="two")


class Sub(keras.Model):
    def __init__(self):
        super().__init__()
        self.d = keras.layers.Dense(3, name="inner")

    def call(self, x):
        return self.d(x)


PACKAGE = pathlib.Path(keras_flops.__file__).parent
COMPAT = {"_compat.py", "backends/tensorflow/_compat.py", "backends/jax/_compat.py", "backends/torch/_compat.py"}


def test_no_private_name_outside_compat():
    private = re.compile(r"keras\.src|tensorflow\.python|_getframe|getattr\([^,]+, \"_[a-z]")
    offenders = [
        f"{path.relative_to(PACKAGE)}:{n}"
        for path in PACKAGE.rglob("*.py") if str(path.relative_to(PACKAGE)) not in COMPAT
        for n, line in enumerate(path.read_text().splitlines(), 1) if private.search(line)
    ]
    assert offenders == []


def test_no_module_reads_another_modules_private_names():
    """``registry._USER`` read from outside the registry, say: a private name
    of another module, through an import of it or imported by name."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if str(path.relative_to(PACKAGE)) in COMPAT:
            continue
        tree = ast.parse(path.read_text())
        modules = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                modules.update(a.asname or a.name for a in node.names)
                offenders += [f"{path.relative_to(PACKAGE)}:{node.lineno} imports {a.name}"
                              for a in node.names if a.name.startswith("_") and node.module != "__future__"
                              and not a.name.startswith("__") and a.name != "_compat"]
        offenders += [
            f"{path.relative_to(PACKAGE)}:{node.lineno} reads {node.value.id}.{node.attr}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id in modules and node.attr.startswith("_") and not node.attr.startswith("__")
        ]
    assert offenders == []


def test_sublayers_read_flatten_layers():
    assert hasattr(keras.layers.Layer, "_flatten_layers")
    assert [l.name for l in _compat.sublayers(two_inputs())] == ["a", "b", "add", "d"]
    assert _compat.sublayers(keras.ops.add) == []  # an op, not a layer


def test_functional_operations():
    model = two_inputs()
    assert hasattr(model, "_operations")
    assert [type(o).__name__ for o in _compat.functional_operations(model)] == [
        "InputLayer", "InputLayer", "Add", "Dense"]
    assert _compat.functional_operations(Sub()) == []


def test_is_functional_and_tf_keras():
    assert _compat.is_functional(two_inputs())
    assert not _compat.is_functional(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))
    assert not _compat.is_functional(Sub())
    assert not _compat.is_tf_keras(two_inputs())


def test_inputs_struct_and_input_names():
    model = two_inputs()
    assert hasattr(model, "_inputs_struct")
    struct = _compat.inputs_struct(model)
    assert [t.shape for t in struct] == [(None, 4), (None, 4)]
    assert [_compat.keras_tensor_layer_name(t) for t in struct] == ["a", "b"]
    sequential = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    assert hasattr(sequential, "_functional")
    assert tuple(_compat.inputs_struct(sequential).shape) == (None, 3)
    assert _compat.inputs_struct(Sub()) is None


def test_build_shapes():
    model = Sub()
    model(np.zeros((2, 5), "float32"))
    assert hasattr(model, "_build_shapes_dict")
    assert _compat.build_shapes(model) == {"input_shape": (2, 5)}


def test_compiled_and_optimizer_weights():
    model = two_inputs()
    assert not _compat.is_compiled(model)
    model.compile(optimizer="adam", loss="mse")
    assert _compat.is_compiled(model) and _compat.optimizer_weights(model) == []  # not built yet
    model.fit([np.zeros((4, 4))] * 2, np.zeros((4, 2)), batch_size=2, verbose=0)
    # Adam: iterations, learning rate, and m and v for each of d's kernel and bias
    assert len(_compat.optimizer_weights(model)) == 2 + 2 * 2


def test_summary_structure_reads_nodes():
    model = two_inputs()
    assert hasattr(model, "_nodes_by_depth") and hasattr(model.get_layer("add"), "_inbound_nodes")
    assert [l.name for l in _compat.summary_layers(model)] == ["a", "b", "add", "d"]
    assert not _compat.is_sequential_like(model)  # Add has two inputs
    assert _compat.connections(model, model.get_layer("add")) == ["a[0][0]", "b[0][0]"]
    assert _compat.is_sequential_like(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))


def test_output_shapes_from_nodes_and_build_shapes():
    model = two_inputs()
    assert _compat.output_shapes(model.get_layer("d"), str) == ["(None, 2)"]
    sub = Sub()
    sub(np.zeros((2, 5), "float32"))
    assert _compat.output_shapes(sub.d, str) == "(2, 3)"  # compute_output_shape on the build shape
    assert _compat.output_shapes(keras.layers.Dense(2), str) is None  # never called: Keras prints "?"


def test_dtype_bits():
    assert [_compat.dtype_bits(d) for d in ("bool", "float16", "bfloat16", "float32", "int64")] == [
        1, 16, 16, 32, 64]


def test_loss_sample_count():
    model = two_inputs()
    model.compile(optimizer="sgd", loss="mse")
    assert hasattr(model, "_loss_tracker")
    model.fit([np.zeros((6, 4))] * 2, np.zeros((6, 2)), batch_size=3, epochs=1, verbose=0)
    assert _compat.loss_sample_count(model) == 6  # two steps of 3


def test_calling_callbacks_finds_the_siblings():
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.extend(_compat.calling_callbacks(depth=2))

    tb = keras.callbacks.CSVLogger("/dev/null")
    spy = Spy()
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.zeros((2, 2)), np.zeros((2, 1)), verbose=0, callbacks=[tb, spy])
    assert tb in seen and spy in seen


def test_function_graph_reads_func_graph_functions():
    @tf.function
    def loop(x):
        return tf.while_loop(lambda i, y: i < 3, lambda i, y: (i + 1, y * 2.0), (0, x))

    graph = loop.get_concrete_function(tf.TensorSpec((), tf.float32)).graph
    (op,) = [op for op in graph.get_operations() if op.type in ("While", "StatelessWhile")]
    assert hasattr(graph, "_functions")
    body = tf_compat.function_graph(graph, op.get_attr("body").name)
    assert any(o.type == "Mul" for o in body.get_operations())
    assert tf_compat.function_graph(graph, "no_such_function") is None


def test_tensorflow_flops_statistics():
    types = tf_compat.tf_flops_op_types()
    assert {"Conv2D", "MatMul", "BiasAdd"} <= types and "Einsum" not in types

    @tf.function
    def matmul(a, b):
        return tf.matmul(a, b)

    graph = matmul.get_concrete_function(tf.TensorSpec((2, 3)), tf.TensorSpec((3, 4))).graph
    (op,) = [op for op in graph.get_operations() if op.type == "MatMul"]
    assert tf_compat.tf_flops(op) == 2 * 3 * (2 * 4)  # 2 x inner dim x outputs
    # op types are the registry's "<op type>,flops" keys with the statistic's name cut off
    assert all("," not in t and t[:1].isupper() for t in types)


def test_freeze_inlines_variables():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    concrete = tf.function(lambda x: model(x)).get_concrete_function(tf.TensorSpec((1, 3)))
    frozen = tf_compat.freeze(concrete)
    types = {op.type for op in frozen.graph.get_operations()}
    assert "MatMul" in types and "ReadVariableOp" not in types


def test_a_missing_private_fails_loudly():
    class NotAGraph:
        outer_graph = None

    with pytest.raises(_compat.CompatError, match="NotAGraph._functions"):
        tf_compat.function_graph(NotAGraph(), "f")


def test_profiler_trace_reads_xplane(tmp_path):
    @tf.function
    def f(a, b):
        return tf.matmul(a, b)

    a = tf.ones((64, 64))
    f(a, a)
    tf.profiler.experimental.start(str(tmp_path))
    for _ in range(2):
        f(a, a).numpy()
    tf.profiler.experimental.stop()
    ops, calls = tf_compat.profiler_ops(str(tmp_path))
    assert any(name == "MatMul" and duration > 0 for name, _, duration in ops)
    # one window per call of the function, when the profiler records the calls
    # (it does not in every process; measure() then falls back to one window)
    assert len(calls) in (0, 2)


def test_the_layer_graph_reuse_by_layer_walks():
    model = two_inputs()
    graph = _compat.layer_graph(model)
    assert graph is model and hasattr(model, "_nodes_by_depth") and hasattr(model, "_inputs")
    sequential = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    assert _compat.layer_graph(sequential) is sequential._functional
    assert _compat.layer_graph(Sub()) is None  # its own call
    nodes = _compat.graph_nodes(graph)
    assert [n.operation.name for n in nodes] == ["add", "d"]  # the order Functional.call runs them
    inputs, outputs = _compat.graph_ends(graph)
    assert [t.shape for t in inputs] == [(None, 4), (None, 4)] and [t.shape for t in outputs] == [(None, 2)]
    op, arguments, ins, outs = _compat.node_call(nodes[0])
    assert op.name == "add" and len(ins) == 2 and len(outs) == 1
    args, kwargs = _compat.symbolic_arguments(arguments)
    assert len(args[0]) == 2 and kwargs == {}
    filled, _ = _compat.fill_in(arguments, {id(ins[0]): np.ones((1, 4)), id(ins[1]): np.ones((1, 4))})
    assert np.allclose(_compat.call_in_graph(op, filled, {}, training=False), 2.0)
    assert _compat.keras_mask(outs[0]) is None
    masked = keras.layers.Embedding(5, 2, mask_zero=True)(keras.Input((3,), dtype="int32"))
    assert _compat.keras_mask(masked) is not None


def test_serializing_without_tensorflow_reads_the_lazy_module():
    from keras.src.utils import module_utils

    assert hasattr(module_utils.tensorflow, "_available")
    with _compat.serializing_without_tensorflow():  # TensorFlow is imported here: nothing changes
        assert keras.layers.Dense(2).get_config()["units"] == 2


def test_the_layout_map_of_a_model_parallel_distribution():
    # keras.distribution.ModelParallel._layout_map, which get_variable_layout reads
    mesh = keras.distribution.DeviceMesh((1,), ["model"], keras.distribution.list_devices()[:1])
    layout = keras.distribution.LayoutMap(mesh)
    layout["dense/kernel"] = (None, "model")
    assert _compat.layout_map(keras.distribution.ModelParallel(layout_map=layout)) is layout
    assert _compat.layout_map(keras.distribution.DataParallel(devices=keras.distribution.list_devices()[:1])) is None


def test_a_layers_remat_mode():
    # keras.layers.Layer._remat_mode, set from the RematScope a layer is built in
    with keras.RematScope(mode="full"):
        inside = keras.layers.Dense(2)
    assert _compat.remat_mode(inside).mode == "full"
    assert _compat.remat_mode(keras.layers.Dense(2)) is None


def test_keras_refuses_a_valued_variable_in_a_stateless_scope():
    # keras.Variable.__init__'s ValueError for a value (not an initializer) in a StatelessScope
    with pytest.raises(ValueError) as err:
        with keras.StatelessScope():
            keras.Variable(0, dtype="int64")
    assert _compat.is_valued_variable_in_stateless_scope(err.value)
    assert not _compat.is_valued_variable_in_stateless_scope(ValueError("another"))
