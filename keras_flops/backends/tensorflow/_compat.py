"""Every access to a private TensorFlow name, in one place: its graphs'
called functions, its registered "flops" statistics, its profiler's trace,
and the freezing of a concrete function.

Each function reads one private thing, says what and from which versions,
and has a test in tests/test_compat.py that fails loudly when a release
renames or removes it. Only the TensorFlow backend imports this module.

Checked on TensorFlow 2.16-2.21.
"""

from __future__ import annotations

import contextlib

from keras_flops._compat import CompatError, required_attr


def function_graph(graph, name: str):
    """The FuncGraph of a function a graph's op calls by name, looked up in
    the graph and the graphs enclosing it; None when it is not at hand.

    TensorFlow 2.x: ``FuncGraph._functions`` (name -> AtomicFunction /
    _EagerDefinedFunction, whose ``graph`` is the body).
    """
    while graph is not None:
        fn = required_attr(graph, "_functions", "the functions a graph calls").get(name)
        if fn is not None:
            return getattr(fn, "graph", None)
        graph = getattr(graph, "outer_graph", None)
    return None


_OPS = None  # tensorflow.python.framework.ops, once its flops statistics are registered


def _stats_registry():
    """TensorFlow's ``framework.ops`` module, whose ``_stats_registry`` holds
    the statistics; importing ``profiler.internal.flops_registry`` registers
    the "flops" ones. Read only, never written."""
    global _OPS
    if _OPS is None:
        from tensorflow.python.framework import ops

        try:
            from tensorflow.python.profiler.internal import flops_registry  # noqa: F401
        except ImportError:  # pragma: no cover - stripped TensorFlow
            pass
        _OPS = ops
    return _OPS


def tf_flops_op_types() -> frozenset:
    """Op types TensorFlow registers a "flops" statistic for."""
    registry = _stats_registry()._stats_registry
    return frozenset(key.rsplit(",", 1)[0] for key in registry.list() if key.endswith(",flops"))


def tf_flops(op) -> int:
    """FLOPs of a graph op by TensorFlow's registered statistic, what
    tf.compat.v1.profiler counts: ``ops.get_stats_for_node_def``. Raises
    ValueError where TensorFlow's formula does. Call it inside
    :func:`quiet_tf_formulas`."""
    stats = _stats_registry().get_stats_for_node_def(op.graph, op.node_def, "flops")
    return int(stats.value) if stats.value else 0


@contextlib.contextmanager
def quiet_tf_formulas():
    """TensorFlow's formulas call a deprecated helper that logs on first use:
    ``tensorflow.python.util.deprecation.silence`` for the length of a count."""
    try:
        from tensorflow.python.util import deprecation
    except ImportError:  # pragma: no cover
        yield
        return
    with deprecation.silence():
        yield


def profiler_ops(logdir: str):
    """The op executions TensorFlow's profiler recorded under ``logdir``, as
    ``(op name, start ps, duration ps)``, and the windows of each function
    call, ``(start ps, end ps)``.

    TensorFlow 2.x: the trace is an ``XSpace`` protobuf (``*.xplane.pb``,
    ``tsl.profiler.protobuf.xplane_pb2``); op events are named
    "<op name>:<op type>" on the host plane's "tf_Compute" lines, and each
    call of a function is an "EagerLocalExecute" event on the calling
    thread's line (not always recorded: then there are no windows).
    """
    import glob
    import os

    try:
        from tsl.profiler.protobuf import xplane_pb2
    except ImportError:
        from tensorflow.tsl.profiler.protobuf import xplane_pb2
    paths = glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)
    if not paths:
        raise CompatError(f"TensorFlow's profiler wrote no *.xplane.pb under {logdir}.")
    space = xplane_pb2.XSpace()
    with open(sorted(paths)[-1], "rb") as f:
        space.ParseFromString(f.read())
    ops, calls = [], []
    for plane in space.planes:
        names = plane.event_metadata
        for line in plane.lines:
            base = line.timestamp_ns * 1000
            for event in line.events:
                name = names[event.metadata_id].name
                start = base + event.offset_ps
                if line.name.startswith("tf_Compute") and ":" in name and "::" not in name:
                    ops.append((name.rsplit(":", 1)[0], start, event.duration_ps))
                elif name.startswith("EagerLocalExecute"):
                    calls.append((start, start + event.duration_ps))
    return ops, calls


def freeze(concrete_function):
    """A concrete function with its variables turned into constants and its
    called functions inlined, so every shape is known:
    ``convert_to_constants.convert_variables_to_constants_v2``."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    return convert_variables_to_constants_v2(concrete_function)
