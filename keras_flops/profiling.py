"""``profile``, ``measure`` and ``without_weights``: check the model, resolve
its inputs, trace, count, report; on the backend the model runs on."""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Mapping, NamedTuple, Optional

from keras_flops import _compat, backends
from keras_flops.core import chains, collector, inputs, weightless
from keras_flops.core.activations import Activations
from keras_flops.core.assemble import build_report, with_per_device
from keras_flops.core.layers import layer_tree, steady
from keras_flops.core.report import FlopsReport
from keras_flops.core.reuse import chains_in_graph, count_by_layer, find_chains, why_whole
from keras_flops.core.walk import MODES
from keras_flops.errors import ProfileError, UncountedOpsWarning, reason


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
    reuse: bool = True,
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
        backward columns and ``saved_bytes`` (the activations the step keeps
        for its backward pass; what it holds at once is
        ``keras_flops.memory``'s).
      targets: specs of the labels for ``training=True``, anything with a
        ``shape`` and a ``dtype`` (``keras.KerasTensor``, ``tf.TensorSpec``);
        by default labels shaped for the compiled loss are made in the graph.
      counting: ``"full"`` (default) counts every op with a formula, enters
        loops, branches and called functions, and skips ops that feed no
        output; ``"tfprof"`` reproduces tf.compat.v1.profiler exactly:
        TensorFlow's formulas only, every op of the top graph, no functions.
      formulas: ``{op_type: formula}`` used for this call only, before every
        other formula (see ``keras_flops.register_flops``).
      warn: warn once, naming them, when some ops could not be counted.
      reuse: trace each distinct layer call once and give its count to every
        call like it (a 70B's 80 decoder blocks are traced once), for
        functional models and Sequentials in inference; where that cannot be
        exact, and with ``reuse=False``, the whole model is traced at once
        (``report.notes`` says why). A training step, and a model traced
        whole, is traced with fewer of its decoder blocks (a chain of like
        calls) and the others counted from them. Both give the same counts.

    The model is traced on the backend Keras runs on (into a TensorFlow
    graph, a jaxpr, or PyTorch's aten ops on the meta device) and left
    exactly as it was.
    """
    report = profile_and_trace(
        model,
        batch_size,
        input_shape,
        training=training,
        targets=targets,
        counting=counting,
        formulas=formulas,
        reuse=reuse,
    ).report
    if warn and report.uncounted:
        warnings.warn(report.uncounted_summary(), UncountedOpsWarning, stacklevel=2)
    if warn and report.per_device is not None and report.per_device.uncounted:
        summary = report.per_device.uncounted_summary()
        warnings.warn(f"In one device's program: {summary}", UncountedOpsWarning, stacklevel=2)
    return report


def measure(
    model, batch_size: int = 1, input_shape=None, *, repeats: int = 10, warmup: int = 3
) -> FlopsReport:
    """``profile(model)``, plus measured times: ``report.time_ms`` (the median
    forward pass), and per layer ``time_ms`` (median), ``time_iqr_ms`` (its
    interquartile range) and ``tflops_per_sec`` achieved. ``warmup`` untimed
    runs come first; then ``repeats`` timed runs, and ``repeats`` runs under
    TensorFlow's profiler (TensorFlow only)."""
    backend = _check_model(model)
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be at least 1 and warmup at least 0, got {repeats} and {warmup}.")
    if weightless.deferred_variables(model) is not None:
        raise ValueError(
            f"measure() runs {model.name!r}, but its weights were never allocated (it was built "
            "under keras_flops.without_weights()); build it with weights, or count it with profile()."
        )
    profiled = profile_and_trace(model, batch_size, input_shape, reuse=False)  # it runs the whole trace
    return backend.measure(profiled.report, profiled.trace, profiled.inputs.specs, repeats, warmup)


def profile_saved_model(
    path,
    batch_size: int = 1,
    input_shape=None,
    signature: str = "serving_default",
    counting: str = "full",
    warn: bool = True,
) -> FlopsReport:
    """FLOPs and MACs of a TensorFlow SavedModel's serving signature, per name
    scope (a SavedModel keeps no Keras layers). ``input_shape`` fills unknown
    dims: one shape for a one-input signature, or a list (in sorted name
    order) or a dict by input name; ``counting`` and ``warn`` are ``profile``'s."""
    from keras_flops.backends.tensorflow import saved_model  # TensorFlow's format

    report = saved_model.profile_saved_model(path, batch_size, input_shape, signature, counting)
    if warn and report.uncounted:
        warnings.warn(report.uncounted_summary(), UncountedOpsWarning, stacklevel=2)
    return report


class Profiled(NamedTuple):
    """A report, the trace it counts, and the inputs it was traced on."""

    report: FlopsReport
    trace: Any
    inputs: inputs.Inputs


@collector.pausing
def profile_and_trace(
    model,
    batch_size=1,
    input_shape=None,
    *,
    training=False,
    targets=None,
    counting="full",
    formulas=None,
    memory=None,
    reuse=True,
) -> Profiled:
    """``profile``'s report, with the trace it counted (``measure`` runs it:
    give ``reuse=False`` for one trace of the whole model). ``memory``: True
    reads the activations the program keeps and those it holds at once (its
    peak: :func:`keras_flops.memory`); ``"saved"`` those it keeps alone (a
    training step's ``saved_bytes``), the default for a training step; False
    neither, the default for an inference call."""
    backend = _check_model(model)
    if counting not in MODES:
        raise ValueError(f"counting must be one of {MODES}, got {counting!r}.")
    if counting not in backend.modes:
        raise ValueError(
            f"counting={counting!r} reproduces TensorFlow's profiler, which counts TensorFlow graphs; "
            f"Keras runs on {backend.name} here. Use counting='full' (the default)."
        )
    partitioner = backend.partitioner(model)  # the layouts checked before any trace
    resolved = inputs.resolve(model, batch_size, input_shape, backend)
    with steady():  # the model is built: its layers do not change while it is counted
        memory = ("saved" if training else False) if memory is None else memory
        whole = why_whole(training, counting, memory) if reuse else None
        if reuse and whole is None:
            by_layer = count_by_layer(model, resolved.specs, backend, counting, formulas)
            if not isinstance(by_layer, str):
                traced, counted = by_layer
                notes = partitioner.notes if partitioner is not None else ()
                profiled = _profiled(model, traced, counted, backend, resolved, notes, counting, training)
                if partitioner is None:
                    return profiled
                partitioned = partitioner.partition_by_layer(resolved.specs, traced.chains)
                return profiled._replace(
                    report=with_per_device(profiled.report, partitioned, partitioner.replicas)
                )
            whole = by_layer
        fixed_targets = inputs.fix_batch(targets, resolved.batch_size, backend)
        by_chains = None
        if reuse and partitioner is None and counting == "full":
            by_chains = _count_by_chains(
                model, resolved.specs, backend, training, fixed_targets, formulas, memory
            )
        if isinstance(by_chains, tuple):
            traced, counted = by_chains
        else:
            try:
                traced = backend.trace(model, resolved.specs, training=training, targets=fixed_targets)
            except Exception as err:
                shapes = ", ".join(str(shape) for _, shape in resolved.shapes)
                raise ProfileError(
                    f"Tracing {type(model).__name__} {model.name!r} on inputs of shape {shapes} "
                    f"failed: {reason(err)} {_advice(model, err, backend)}"
                ) from err
            counted = backend.count(traced, counting, formulas, memory=bool(memory))
        if memory == "saved":  # what the program holds at once is not read: none, rather than part of it
            counted = dataclasses.replace(counted, activations=Activations(counted.activations.saved))
        notes = (f"Traced as one program, not layer by layer: {whole}.",) if whole is not None else ()
        if isinstance(by_chains, str):
            notes += (f"Traced every call of a chain of like calls: {by_chains}.",)
        if partitioner is None:
            return _profiled(model, traced, counted, backend, resolved, notes, counting, training)
        profiled = _profiled(
            model, traced, counted, backend, resolved, notes + partitioner.notes, counting, training
        )
        # an inference call's chains of like calls partition by layer (exactly; a
        # training step's do not: XLA combines its gradients' all-reduces by their number)
        found = (
            chains.long_chains(find_chains(model, resolved.specs, backend)) if reuse and not training else ()
        )
        if found:
            partitioned = partitioner.partition_by_layer(resolved.specs, found)
        else:
            partitioned = partitioner.partition(traced)
        report = with_per_device(profiled.report, partitioned, partitioner.replicas)
        return profiled._replace(report=report)


def _count_by_chains(model, specs, backend, training, targets, formulas, memory):
    """``(trace, counted)`` of the whole program from programs with fewer
    calls of its long chains of like calls (:mod:`keras_flops.core.chains`);
    None without such a chain; the reason (a string) where that is not exact."""
    found = chains.to_shorten(chains_in_graph(model, backend))
    if not found:
        return None

    def trace(passthrough):
        return backend.trace(model, specs, training=training, targets=targets, passthrough=passthrough)

    def count(traced, standing):  # a program's held at once, read as if its stand-ins ran: where it is read
        return backend.count(
            traced, "full", formulas, memory=standing if memory is True and standing else bool(memory)
        )

    return chains.count_by_chains(
        model,
        found,
        trace,
        count,
        one_program=memory is not True,
        read_as_run=memory is True and not training,
    )


def _profiled(model, traced, counted, backend, resolved, notes, counting, training) -> Profiled:
    """The report of a counted trace, the trace, and its inputs; ``notes``
    after the inputs' and the trace's."""
    report = build_report(
        model,
        traced,
        counted,
        backend,
        batch_size=resolved.batch_size,
        input_shapes=resolved.shapes,
        notes=resolved.notes + traced.notes + tuple(notes),
        counting=counting,
        training=training,
    )
    return Profiled(report, traced, resolved)


def _advice(model, err: Exception, backend) -> str:
    """What to do about a failed trace."""
    if backend.branches_on_a_tensor(err):
        parts = [
            f"model.{name}"
            for name, value in vars(model).items()
            if not name.startswith("_")
            and isinstance(value, backend.layer_classes())
            and hasattr(value, "inputs")
            and value is not model
        ]
        hint = (
            " Profile its parts instead, each a model of its own, with the shapes they "
            f"take: {', '.join(parts)}."
            if parts
            else ""
        )
        return (
            "The model branches in Python on the value of an input tensor (it uses a "
            "tensor as a Python bool or int, as a scheduler's number of steps), so what "
            "it computes is not fixed by the input shapes and cannot be traced once for "
            f"all values.{hint}"
        )
    rematerialized = [path for path, layer in layer_tree(model) if _compat.remat_mode(layer) is not None]
    if rematerialized or _compat.remat_mode(model) is not None:
        where = f" ({', '.join(rematerialized[:3])}{', ...' if len(rematerialized) > 3 else ''})"
        return (
            f"The model's layers were built in a keras.RematScope{where if rematerialized else ''}, and "
            f"their rematerialized calls could not be traced on {backend.label}. Build the model outside "
            "the RematScope to count it (rematerialization changes no model FLOPs, it only runs part of "
            "the forward pass again in the backward one), or count it with KERAS_BACKEND=jax, where the "
            "recompute is counted and named (report.recompute_flops, the callback's hfu)."
        )
    return (
        "Check that the model runs on such a batch (model(x) in eager mode), or pass "
        "input_shape= / batch_size=."
    )


def _check_model(model):
    """The backend of a Keras model or layer; a clear error for anything else."""
    backend = backends.of(model)  # a clear error on a backend keras_flops cannot trace
    if not isinstance(model, backend.layer_classes()):
        raise TypeError(
            f"keras_flops.profile expects a Keras model or layer, got {type(model).__name__}. "
            "Build one with keras.Model, keras.Sequential or a keras.layers.Layer subclass."
        )
    return backend


def without_weights():
    """Build models inside this block without allocating their weights::

        with keras_flops.without_weights():
            model = keras_hub.models.LlamaBackbone(**config)
        keras_flops.profile(model, input_shape={...})

    Each variable made inside has a shape, a dtype and an initializer, and
    no value: Keras does not allocate it when a later scope exits, and
    profiling never allocates it; build the model outside this block to have
    weights. On PyTorch, such a variable read outside a trace is zeros on the
    meta device, so that a task model built around a weightless backbone
    (Keras on PyTorch reads each of its variables) allocates nothing either.
    """
    try:
        keep = backends.of().keep_unallocated
    except backends.UnsupportedBackendError:
        keep = None
    return weightless.without_weights(keep)
