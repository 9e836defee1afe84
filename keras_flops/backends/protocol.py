"""What a backend provides: the :class:`Backend` protocol.

A backend turns a live Keras model into a traced program and answers the few
questions that depend on the framework underneath Keras. Everything else
(inputs and labels, the layer recorder, the walk, formulas, the report,
rendering, the callback's logic) is written once, in :mod:`keras_flops.core`,
:mod:`keras_flops.formulas` and the entry points, and reaches a framework
only through a Backend. docs/architecture.md says how to add one.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple, Optional, Protocol, Sequence, Tuple

from keras_flops.core.records import LayerRow
from keras_flops.core.walk import Counted


class Trace(Protocol):
    """A traced model, as the entry points read it."""

    layers: Tuple[LayerRow, ...]  # the layers called while tracing, in first-call order
    notes: Tuple[str, ...]  # what the report should say about the trace

    @property
    def outputs(self) -> Any:
        """Specs of the traced call's outputs, in their structure."""


class Distribution(NamedTuple):
    """How a fit spreads over devices: data-parallel ``replicas`` (each on
    its share of the batch), ``devices`` in sync (MFU's peak is theirs
    together), and whether this process writes summaries (``chief``)."""

    replicas: int
    devices: int
    chief: bool


class SummaryWriter(Protocol):
    """Writes TensorBoard events into one directory."""

    def scalar(self, tag: str, value: float, step: int) -> None: ...

    def text(self, tag: str, text: str, step: int) -> None: ...

    def flush(self) -> None: ...


def no_distribution(label: str) -> None:
    """None, where no ``keras.distribution`` is set; a clear error where one
    is, on a backend whose Keras does not distribute (Keras's distribution API
    is JAX's)."""
    import keras

    distribution = getattr(getattr(keras, "distribution", None), "distribution", None)
    if distribution is not None and distribution() is not None:
        raise ValueError(
            f"A keras.distribution ({type(distribution()).__name__}) is set, but Keras runs on {label}: "
            "Keras's distribution API (DeviceMesh, LayoutMap, ModelParallel, DataParallel) is implemented "
            "for JAX. Run with KERAS_BACKEND=jax to count each device's program, or unset it "
            "(keras.distribution.set_distribution(None)) to count the whole model."
        )
    return None


class Partitioner(Protocol):
    """What reads each device's program under a ``keras.distribution``."""

    mesh: Mapping[str, int]  # {axis: size}
    replicas: int  # the devices the batch is split over
    notes: Tuple[str, ...]  # the layout's, checked before any trace

    def partition(self, trace: "Trace") -> Any:
        """The trace's per-device program, a :class:`~keras_flops.core.records.Partitioned`."""

    def partition_by_layer(self, specs, chains: Tuple[Tuple[str, ...], ...]) -> Any:
        """The per-device program of the model's inference call on ``specs``,
        each chain of identical calls (reuse by layer's ``LayerTraces.chains``)
        partitioned once for its middle calls: a ``Partitioned``."""


class WithoutTensorFlow:
    """What the backends that never import TensorFlow (JAX, PyTorch) share:
    Keras's own ``keras.tree`` for nested structures, Keras's callbacks
    module, TensorBoard events written by the ``tensorboard`` package alone,
    and ``measure()``'s error (it times layers with TensorFlow's profiler)."""

    name: str
    label: str  # the framework's name in messages: "JAX", "PyTorch"

    @staticmethod
    def map_structure(fn: Callable, structure) -> Any:
        """``fn`` on every leaf, None leaves included."""
        import keras

        return keras.tree.pack_sequence_as(structure, [fn(x) for x in keras.tree.flatten(structure)])

    @staticmethod
    def flatten(structure) -> list:
        import keras

        return keras.tree.flatten(structure)

    @staticmethod
    def pack_sequence_as(structure, flat) -> Any:
        import keras

        return keras.tree.pack_sequence_as(structure, flat)

    def callbacks(self) -> Any:
        import keras

        return keras.callbacks

    @staticmethod
    def layer_classes() -> tuple:
        import keras

        return (keras.layers.Layer,)

    def keep_unallocated(self, variables) -> None:
        pass  # a deferred variable is read only inside a trace, where it is a stand-in

    def partitioner(self, model):
        return no_distribution(self.label)

    def trace_layer(self, layer, call: Callable, specs) -> Any:
        return self.trace_call(layer, call, specs)  # nothing added to Keras 3's Python here

    def summary_writer(self, log_dir: str) -> "SummaryWriter":
        from keras_flops.render.events import EventWriter

        return EventWriter(log_dir)

    def measure(self, report, trace, specs, repeats: int, warmup: int):
        raise ValueError(
            "measure() times layers with TensorFlow's profiler, so it needs the TensorFlow "
            f"backend (KERAS_BACKEND=tensorflow); on {self.label}, keras_flops.profile() counts the "
            "same FLOPs per layer."
        )


class Backend(Protocol):
    """A Keras backend keras_flops can trace and count."""

    name: str  # Keras's name for it: "tensorflow", "jax"
    label: str  # the framework's name in messages: "TensorFlow", "JAX", "PyTorch"
    modes: Tuple[str, ...]  # the counting modes it offers ("full", and "tfprof" on TensorFlow)
    global_batch: bool  # whether Keras traces a distributed step on the global batch (JAX)
    # rather than on each replica's (TensorFlow)

    # ---------------------------------------------------------------- tracing
    def trace(self, model, specs, training: bool = False, targets=None, passthrough=None) -> Trace:
        """``model`` traced on ``specs`` (this backend's :meth:`spec` structure):
        one inference call, or with ``training`` one training step without the
        optimizer (forward with ``training=True``, the compiled loss, the
        gradients with respect to the trainable weights); ``targets`` are the
        labels' specs (labels shaped for the loss are made otherwise). Every op
        gets its owner, (layer path, phase). A model whose weights were never
        allocated is traced on stand-ins, and none is allocated. ``passthrough``
        maps the layers whose calls run nothing to a like layer called before
        (``keras_flops.core.layers.LayerRecorder``; :mod:`keras_flops.core.chains`)."""

    def trace_call(self, model, call: Callable, specs: Sequence, passthrough=None) -> Trace:
        """``call(*args, region)`` traced on ``specs``: a function that runs
        ``model`` or parts of it (a language model's ``call_with_cache``), with
        every op's owner among ``model``'s layers; ``region(name)`` gives the
        ops made inside it, and in no layer, a row of their own. ``passthrough``
        as :meth:`trace`'s."""

    def trace_layer(self, layer, call: Callable, specs: Sequence) -> Trace:
        """One call of a Keras 3 layer graph's node, as reuse by layer
        traces it (:mod:`keras_flops.core.reuse`): :meth:`trace_call`, less
        what a backend adds for Python no Keras 3 layer has (TensorFlow's
        autograph); an error makes reuse trace the whole model instead."""

    def count(
        self,
        trace: Trace,
        counting: str = "full",
        formulas: Optional[Mapping] = None,
        memory: bool = False,
        given: Optional[Sequence[Tuple[Any, Optional[int]]]] = None,
    ) -> Counted:
        """The trace counted by :func:`keras_flops.core.walk.count` through
        this backend's :class:`~keras_flops.core.walk.Program`: the nodes
        with their owners, the bodies they call (calls, loops with trip
        counts, branches), each op's spec and bytes, this backend's formula
        table; with ``memory``, the activations it keeps and holds at once;
        ``given``: for a traced call's arguments, ``(token, cap)`` as one
        whole program passes them (see :func:`keras_flops.core.walk.count`)."""

    # -------------------------------------------------- values and structures
    def spec(self, shape: Sequence[Optional[int]], dtype, name: Optional[str] = None) -> Any:
        """An input spec: ``tf.TensorSpec``, ``jax.ShapeDtypeStruct``."""

    def flatten(self, structure) -> list:
        """The leaves of a nested structure, as this backend's Keras flattens them."""

    def pack_sequence_as(self, structure, flat) -> Any: ...

    def map_structure(self, fn: Callable, structure) -> Any:
        """``fn`` on every leaf, None leaves included."""

    def layer_classes(self) -> Tuple[type, ...]:
        """The classes of the Keras layers and models this backend traces
        (``keras.layers.Layer``; tf_keras's and ``tf.keras``'s too on TensorFlow)."""

    def branches_on_a_tensor(self, err: Exception) -> bool:
        """Whether a trace failed because the model used a traced tensor's
        value as a Python bool or int (a scheduler's number of steps), which
        no trace for all input values can do."""

    def partitioner(self, model) -> Optional[Partitioner]:
        """None where no ``keras.distribution`` is set; else what reads each
        device's program from XLA's partitioner (JAX). A clear ValueError on
        a backend whose Keras has no distribution (TensorFlow, PyTorch)."""

    def keep_unallocated(self, variables) -> None:
        """Make ``variables``, made under ``keras_flops.without_weights()``,
        read outside a trace without allocating (on PyTorch, as zeros on the
        meta device, since Keras reads each variable of a model it builds)."""

    # ------------------------------------------------------- training, devices
    def callbacks(self) -> Any:
        """The ``keras.callbacks`` module models of this backend call back into
        (tf_keras's under ``TF_USE_LEGACY_KERAS=1``)."""

    def distribution(self, model) -> Distribution:
        """How the model's fit is spread over devices."""

    def outside_distribution(self, fn: Callable) -> Any:
        """``fn()`` run where no distribution scope is entered (a gradient
        cannot be traced on distributed variables inside one)."""

    def gpu_names(self) -> Tuple[str, ...]:
        """The names of the GPUs this backend sees here."""

    def tensor_float_32(self) -> bool:
        """Whether float32 matmuls run as TF32 on GPUs that have it."""

    def peak_memory(self) -> Optional[int]:
        """The most bytes in use at once on any of this process's GPUs since
        they started, as the framework reports it; None without a GPU (or
        where the framework does not say)."""

    def summary_writer(self, log_dir: str) -> SummaryWriter:
        """A TensorBoard writer into ``log_dir``."""

    def measure(self, report, trace: Trace, specs, repeats: int, warmup: int):
        """``report`` (the count of ``trace``, traced on ``specs``) with times
        measured per layer on this machine, or a ValueError saying this
        backend cannot time layers."""
