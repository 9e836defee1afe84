"""``memory``, ``largest_batch`` and ``largest_context``: will it fit? (the memory footprint)

The memory a model needs is read from the same traced program that
``profile`` counts: the activations a training step keeps for its backward
pass, the values live at once, a generation's key/value cache; the weights
and the optimizer state from the model's variables and the optimizer's
config. Nothing is allocated, so weightless 7B and 70B configs answer too.
"""

from __future__ import annotations

from typing import List, Tuple

from keras_flops import backends
from keras_flops.core import inputs as inputs_lib
from keras_flops.core import memory as core
from keras_flops.core.memory import Fit, MemoryReport, capacity, solve, spec_bytes
from keras_flops.profiling import profile_and_trace


def memory(
    model, batch_size: int = 1, input_shape=None, *, training: bool = True, optimizer=None, targets=None
) -> MemoryReport:
    """The memory ``model`` needs for one training step (``training=True``)
    or one inference call on a batch of ``batch_size``, in bytes, by part
    (see :class:`keras_flops.core.memory.MemoryReport` and its ``peak``).

    Args:
      model: a built Keras model, with or without weights.
      batch_size: as in ``keras_flops.profile``.
      input_shape: as in ``keras_flops.profile``.
      training: a training step (weights, gradients, optimizer state, saved
        activations, the largest transient) or an inference call (weights
        and the largest set of activations live at once).
      optimizer: the optimizer whose state to count: a Keras optimizer or a
        name ("adam", "sgd"); by default the model's compiled one. Its
        config is read; it is never built.
      targets: as in ``keras_flops.profile``.
    """
    profiled = profile_and_trace(
        model, batch_size, input_shape, training=training, targets=targets, memory=True
    )
    backend = backends.of(model)
    batch = spec_bytes(profiled.inputs.specs, backend.flatten)
    if training and targets is not None:
        batch += spec_bytes(
            inputs_lib.fix_batch(targets, profiled.report.batch_size, backend), backend.flatten
        )
    return from_report(model, profiled.report, batch, optimizer)


def from_report(model, report, batch_bytes: int, optimizer=None) -> MemoryReport:
    """The :class:`MemoryReport` of ``model`` from a report already counted
    (``report.training`` says which kind) and the bytes of its batch; under
    a ``keras.distribution``, of one device (:func:`_one_device`)."""
    if report.per_device is not None:
        return _one_device(model, report, batch_bytes, optimizer)
    trainable = list(getattr(model, "trainable_variables", None) or [])
    notes: List[str] = []
    gradients = state = 0
    name = ""
    if report.training:
        gradients = sum(core.variable_bytes(v) for v in trainable)
        name, state = _optimizer(model, optimizer, trainable, core.variable_bytes, notes)
    notes += [note for note in report.notes if note == inputs_lib.NO_LOSS_NOTE]
    acts = report.activations
    return MemoryReport(
        model_name=model.name,
        batch_size=report.batch_size,
        training=report.training,
        weights=core.weights_by_dtype(getattr(model, "variables", None) or []),
        inputs=batch_bytes,
        gradients=gradients,
        optimizer=name,
        optimizer_state=state,
        saved=acts.saved,
        transient=acts.transient if report.training else 0,
        activations=0 if report.training else acts.peak,
        layer_weights=core.layer_weights(model),
        notes=tuple(notes),
    )


def _optimizer(model, optimizer, trainable, size, notes: List[str]) -> Tuple[str, int]:
    """``(name, bytes)`` of the optimizer's state for ``trainable``, each
    variable's slots at ``size(variable)`` bytes; a note says what it keeps."""
    chosen = optimizer if optimizer is not None else getattr(model, "optimizer", None)
    if chosen is None:
        notes.append(
            "No optimizer: the model is not compiled with one and none was given "
            "(optimizer=), so its state is not counted."
        )
        return "", 0
    found = core.optimizer_state(chosen, trainable)
    slot_bytes = found.slots * sum(size(v) for v in trainable)
    notes.append(
        f"{found.name} keeps {found.slots} slot(s) per trainable weight ({slot_bytes:,} B) and "
        f"{found.scalar_bytes} B of scalars (its iteration counter and learning rate)."
    )
    return found.name, slot_bytes + found.scalar_bytes


def _one_device(model, report, batch_bytes: int, optimizer=None) -> MemoryReport:
    """One device's memory under a ``keras.distribution``: weights,
    gradients and optimizer slots at each variable's shard (its layout), its
    share of the batch, and as activations the temporary buffers of its
    program as XLA compiled it (``device_memory["temp_bytes"]``)."""
    device = report.per_device
    shards = dict(device.weight_shards)

    def shard(variable) -> int:
        return shards.get(variable.path, core.variable_bytes(variable))

    trainable = list(getattr(model, "trainable_variables", None) or [])
    mesh = " x ".join(f"{axis} {size}" for axis, size in device.mesh.items())
    notes: List[str] = [
        f"One device of a mesh of {mesh}: weights, gradients and optimizer slots at each variable's "
        "shard; the activations are the temporary buffers of the device's program as XLA compiled it "
        "(fused, for the platform it was compiled for: on host CPU devices XLA may keep float32 copies "
        "of bfloat16 matmul operands, which a GPU's program does not)."
    ]
    gradients, name, state = 0, "", 0
    if report.training:
        gradients = sum(shard(v) for v in trainable)
        name, state = _optimizer(model, optimizer, trainable, shard, notes)
    notes += [note for note in report.notes if note == inputs_lib.NO_LOSS_NOTE]
    temp = int((device.device_memory or {}).get("temp_bytes", 0))
    return MemoryReport(
        model_name=model.name,
        batch_size=device.batch_size,
        training=report.training,
        weights=core.weights_by_dtype(getattr(model, "weights", None) or [], shard),
        inputs=batch_bytes * device.batch_size // max(report.batch_size, 1),
        gradients=gradients,
        optimizer=name,
        optimizer_state=state,
        transient=temp if report.training else 0,
        activations=0 if report.training else temp,
        layer_weights=core.layer_weights(model, shard),
        notes=tuple(notes),
    )


def smallest_model_axis(
    model, device, batch_size: int = 1, input_shape=None, *, training: bool = True, optimizer=None,
    sizes: Tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64),
) -> int:  # fmt: skip
    """The smallest model axis (of ``sizes``) on which ``model`` fits
    ``device`` (a GPU name, a ``keras_flops.Device`` with ``memory_gb``, or
    bytes), for a training step or inference: for each size N, a (1, N) mesh
    with the model's own layout map (``get_layout_map(mesh)``, as keras_hub's
    backbones have), and :func:`memory` of one device; 0 when none of them
    fits. JAX only; the process needs N devices
    (``XLA_FLAGS=--xla_force_host_platform_device_count=N`` gives CPU ones).
    Build the model without a distribution: one built under another keeps
    that one's layouts."""
    import keras

    layout_of = getattr(getattr(model, "backbone", model), "get_layout_map", None)
    if layout_of is None:
        raise ValueError(
            f"{type(model).__name__} {model.name!r} has no get_layout_map(mesh) (keras_hub's backbones "
            "have one): give it one, or set a keras.distribution yourself and call memory()."
        )
    if backends.of(model).name != "jax":
        raise ValueError(
            "smallest_model_axis partitions with keras.distribution, which is JAX's: KERAS_BACKEND=jax."
        )
    available = keras.distribution.list_devices()
    previous = keras.distribution.distribution()
    size, _ = capacity(device)
    try:
        for n in sizes:
            if n > len(available):
                raise ValueError(
                    f"{model.name!r} fits no model axis up to {len(available)}, the devices this process "
                    f"has; set XLA_FLAGS=--xla_force_host_platform_device_count={max(sizes)} before JAX "
                    "starts to try more."
                )
            mesh = keras.distribution.DeviceMesh((1, n), ["batch", "model"], available[:n])
            keras.distribution.set_distribution(
                keras.distribution.ModelParallel(layout_map=layout_of(mesh), batch_dim_name="batch")
            )
            need = memory(model, batch_size, input_shape, training=training, optimizer=optimizer).peak
            if need <= size:
                return n
        return 0
    finally:
        keras.distribution.set_distribution(previous)


def largest_batch(model, device, input_shape=None, *, training: bool = True, optimizer=None) -> int:
    """The largest batch for which :func:`memory`'s peak fits ``device`` (a GPU
    name, a ``keras_flops.Device`` with ``memory_gb``, or bytes); 0 when not
    even a batch of 1 does.

    Found from how the need grows with the batch, not by trying allocations:
    the need at batches 1 and 2 gives a line, solved for the device; the
    need at the answer is then counted, and the line redrawn through it, until
    the answer holds (a few traces, whatever the answer)."""
    size, _ = capacity(device)

    def need(batch: int) -> int:
        return memory(model, batch, input_shape, training=training, optimizer=optimizer).peak

    return _largest(need, size, (1, 2))


def largest_context(causal_lm, device, *, batch_size: int = 1) -> int:
    """The longest generation (``max_length``, prompt and generated tokens
    together) for which ``causal_lm``'s memory fits ``device``: weights, the
    key/value cache and the largest transient of the prefill or a decode step
    (:attr:`GenerationReport.memory`); 0 when not even one token fits. A model
    with a fixed maximum (its backbone's ``max_sequence_length``, as GPT-2's
    1,024 learned positions) answers at most that.

    Found as :func:`largest_batch` finds a batch, through a quadratic: the
    cache grows linearly with the length, a prefill's attention scores with
    its square."""
    from keras_flops.generation import causal_lm_for, profile_generation

    size, _ = capacity(device)
    causal_lm = causal_lm_for(causal_lm)
    backbone = getattr(causal_lm, "backbone", causal_lm)
    limit = getattr(backbone, "max_sequence_length", None)

    def need(length: int) -> int:
        return profile_generation(causal_lm, 1, length, batch_size, warn=False).memory.peak

    if isinstance(limit, int) and limit > 0:
        if need(limit) <= size:
            return limit  # the model's own maximum fits
        return min(
            limit - 1, _largest(need, size, tuple(sorted({max(1, limit // 4), max(1, limit // 2), limit})))
        )
    return _largest(need, size, (2048, 4096, 8192))


def _largest(need, size: int, start: Tuple[int, ...]) -> int:
    """The largest x with ``need(x) <= size``: the polynomial through the
    needs counted so far is solved, the need at its answer counted, until
    the answer is counted and fits with the next one over."""
    points = {start[0]: need(start[0])}
    if start[0] == 1 and points[1] > size:
        return 0  # not even one
    points.update((x, need(x)) for x in start[1:])
    answer = 0
    for _ in range(8):
        nearest = sorted(sorted(points, key=lambda x: abs(x - answer))[: len(start)])
        answer = solve(nearest, [points[x] for x in nearest], size)
        if answer == 0:
            if 1 not in points:
                points[1] = need(1)
            if points[1] > size:
                return 0
            answer = 1
        for x in (answer, answer + 1):
            if x not in points:
                points[x] = need(x)
        if points[answer] <= size < points[answer + 1]:
            return answer
    fitting = [x for x, n in points.items() if n <= size]
    return max(fitting) if fitting else 0


__all__ = ["Fit", "MemoryReport", "largest_batch", "largest_context", "memory"]
