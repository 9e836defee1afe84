"""Will it fit: the memory a model needs to train or to run, per part and
per layer, and whether a device holds it.

:class:`MemoryReport` holds the parts, in bytes: weights by dtype at their
stored width, gradients, optimizer state, the batch, activations (saved for
the backward pass, or live at once), the key/value cache of a generation,
and the largest transient; ``peak`` adds them up by the rule in its
docstring. Keras only: no framework is imported here.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Dict, NamedTuple, Sequence, Tuple, Union

import pandas as pd

from keras_flops.core import hardware
from keras_flops.core.dtypes import dtype_name
from keras_flops.core.hardware import Device
from keras_flops.core.layers import children, layer_tree


def dtype_bytes(dtype) -> float:
    """Bytes per element of a dtype by its name: ``bfloat16`` 2, ``int8`` 1,
    ``int4`` 0.5, ``bool`` 1 (as frameworks store it)."""
    name = dtype_name(dtype)
    if name == "bool":
        return 1
    bits = re.search(r"\d+", name)
    if bits is None:
        raise ValueError(f"no size known for dtype {name!r}")
    return int(bits.group()) / 8


def variable_bytes(variable) -> int:
    """Bytes a variable holds: its elements at its dtype's width (rounded up)."""
    n = math.prod(int(d) for d in variable.shape)
    return math.ceil(n * dtype_bytes(variable.dtype))


def weights_by_dtype(variables, size=variable_bytes) -> Dict[str, int]:
    """``{dtype: bytes}`` of ``variables``, largest first; ``size`` gives a
    variable's bytes (a device's shard of it, under a distribution)."""
    found: Dict[str, int] = {}
    for v in variables:
        name = dtype_name(v.dtype)
        found[name] = found.get(name, 0) + size(v)
    return dict(sorted(found.items(), key=lambda item: -item[1]))


def layer_weights(model, size=variable_bytes) -> Tuple[Tuple[str, int], ...]:
    """``(layer path, bytes)`` of the weights each layer holds itself;
    ``size`` as :func:`weights_by_dtype`'s."""
    rows = []
    for path, layer in [("(model)", model)] + layer_tree(model):
        inner = {id(w) for c in children(layer) for w in (getattr(c, "weights", None) or [])}
        own = [w for w in (getattr(layer, "weights", None) or []) if id(w) not in inner]
        if own:
            rows.append((path, sum(size(w) for w in own)))
    return tuple(rows)


# --------------------------------------------------------------------------
# Optimizer state

# Slot variables a Keras optimizer keeps per trainable variable, each of the
# variable's shape and dtype (Keras 3's keras/src/optimizers/*.py ``build``).
# fmt: off
SLOTS = {
    "SGD": lambda c: 1 if c.get("momentum") else 0,  # momentums, only with momentum
    "Adam": lambda c: 3 if c.get("amsgrad") else 2,  # momentums, velocities (velocity_hats)
    "AdamW": lambda c: 3 if c.get("amsgrad") else 2,
    "Adamax": lambda c: 2,  # m, u
    "Nadam": lambda c: 2,  # momentums, velocities (and one scalar, u_product)
    "Lamb": lambda c: 2,
    "Adadelta": lambda c: 2,  # accumulated grads, accumulated deltas
    "Ftrl": lambda c: 2,  # accumulators, linears
    "Adagrad": lambda c: 1,  # accumulators
    "Lion": lambda c: 1,  # momentums
    "RMSprop": lambda c: 1 + (1 if c.get("momentum") else 0) + (1 if c.get("centered") else 0),
}
# fmt: on
# Scalars of its own an optimizer keeps beside its iteration counter and its
# learning rate.
_SCALARS = {"Nadam": 4}  # u_product, float32


class OptimizerState(NamedTuple):
    """An optimizer's state in bytes: ``slots`` per trainable variable, the
    ``slot_bytes`` they hold together, and ``scalar_bytes`` (its iteration
    counter, its learning rate, any scalars of its own)."""

    name: str
    slots: int
    slot_bytes: int
    scalar_bytes: int

    @property
    def total(self) -> int:
        return self.slot_bytes + self.scalar_bytes


def optimizer_state(optimizer, trainable) -> OptimizerState:
    """The state ``optimizer`` (a Keras optimizer, or a name Keras knows:
    "adam") keeps for the ``trainable`` variables: its slots, counted from
    its config by the rule of its class in :data:`SLOTS` (an exponential
    moving average of the weights adds one), and its scalars. Read from its
    config only: it is never built, so nothing is allocated."""
    if isinstance(optimizer, str):
        import keras

        optimizer = keras.optimizers.get(optimizer)
    name = type(optimizer).__name__
    config = optimizer.get_config()
    counter = getattr(optimizer, "iterations", None)  # int32 on JAX, int64 on TensorFlow
    counter_bytes = variable_bytes(counter) if counter is not None else 8
    if name == "LossScaleOptimizer":
        inner = getattr(optimizer, "inner_optimizer", None)
        if inner is None:
            raise ValueError("a LossScaleOptimizer without an inner_optimizer")
        state = optimizer_state(inner, trainable)
        # its own counter and learning rate, its step counter (an int as the
        # counter) and its dynamic scale (float32), beside its inner optimizer's
        return OptimizerState(
            f"LossScaleOptimizer({state.name})",
            state.slots,
            state.slot_bytes,
            state.scalar_bytes + 2 * counter_bytes + 4 + 4,
        )
    rule = SLOTS.get(name)
    if rule is None:
        known = ", ".join(sorted(SLOTS))
        raise ValueError(
            f"keras_flops does not know the state of the optimizer {name}; it knows {known} (and "
            "LossScaleOptimizer around one). Pass one of them as optimizer=, or optimizer=None "
            "to leave the optimizer state out."
        )
    slots = rule(config) + (1 if config.get("use_ema") else 0)
    # its iteration counter and, unless a schedule gives it, its learning rate (a float32 variable)
    schedule = isinstance(config.get("learning_rate"), dict)  # a serialized LearningRateSchedule
    scalars = counter_bytes + (0 if schedule else 4) + _SCALARS.get(name, 0)
    return OptimizerState(name, slots, slots * sum(variable_bytes(v) for v in trainable), scalars)


# --------------------------------------------------------------------------
# The report


class Fit(NamedTuple):
    """Whether a need fits a device: ``needed`` and ``capacity`` in bytes,
    ``margin`` = capacity - needed (negative when it does not fit). True
    when it fits."""

    fits: bool
    needed: int
    capacity: int
    margin: int
    device: str

    def __bool__(self) -> bool:
        return self.fits

    def __str__(self) -> str:
        verdict = "fits" if self.fits else "does not fit"
        return (
            f"{_gb(self.needed)} {verdict} on {self.device} ({_gb(self.capacity)}): "
            f"{_gb(abs(self.margin))} {'to spare' if self.fits else 'short'}"
        )


def capacity(device: Union[str, Device, int]) -> Tuple[int, str]:
    """(bytes, name) of a device given by name ("H100", "A100 40GB"), as a
    ``keras_flops.Device`` with ``memory_gb``, or as a number of bytes."""
    if isinstance(device, bool):
        raise TypeError("device must be a GPU name, a keras_flops.Device or a number of bytes, got a bool.")
    if isinstance(device, (int, float)):
        if device <= 0:
            raise ValueError(f"a device's memory must be positive, got {device}.")
        return int(device), f"{_gb(int(device))} device"
    if isinstance(device, Device):
        if device.memory_gb is None:
            raise ValueError(f"{device.name} has no memory_gb: give keras_flops.Device(..., memory_gb=...).")
        return int(device.memory_gb * hardware.GIB), device.name
    if not isinstance(device, str):
        raise TypeError(
            f"device must be a GPU name, a keras_flops.Device or a number of bytes, "
            f"got {type(device).__name__}."
        )
    found = hardware.memory_bytes(device)
    if found is None:
        known = "H200, H100, A100 (40GB, 80GB), V100 (16GB, 32GB), L4, T4, TPU v4, TPU v5e, TPU v5p"
        raise ValueError(
            f"no memory size known for {device!r}: known devices are {known}; give "
            "keras_flops.Device(..., memory_gb=...) or the bytes."
        )
    return found, device


@dataclasses.dataclass(frozen=True)
class MemoryReport:
    """The memory a model needs, in bytes, by part.

    - ``weights``: ``{dtype: bytes}`` of every variable at its stored width
      (an int8 or int4 layer's packed kernel and its scales);
    - ``gradients``: one per trainable variable, at its dtype (training);
    - ``optimizer_state``: its slots and scalars (training, with an optimizer);
    - ``inputs``: the batch (and the labels);
    - ``saved``: ``(layer, bytes)`` of the activations the training step
      keeps for its backward pass;
    - ``transient``: the largest set of values live at once beside those;
    - ``activations``: for inference, the largest set of values live at once;
    - ``kv_cache``: a generation's key/value cache.

    Counted from the traced program without fusion: each op's result is a
    buffer of its own while it is read (docs/memory.md).
    """

    model_name: str
    batch_size: int
    training: bool
    weights: Dict[str, int]
    inputs: int = 0
    gradients: int = 0
    optimizer: str = ""
    optimizer_state: int = 0
    saved: Tuple[Tuple[str, int], ...] = ()
    transient: int = 0
    activations: int = 0
    kv_cache: int = 0
    layer_weights: Tuple[Tuple[str, int], ...] = ()  # (layer, bytes of the weights it holds itself)
    notes: Tuple[str, ...] = ()

    @property
    def weight_bytes(self) -> int:
        return sum(self.weights.values())

    @property
    def saved_bytes(self) -> int:
        """The activations kept for the backward pass, all layers."""
        return sum(n for _, n in self.saved)

    @property
    def peak(self) -> int:
        """The estimated peak, in bytes.

        Training: weights + gradients + optimizer state + the batch + saved
        activations + the largest transient. Every saved activation is held
        at once (at the turn from the forward to the backward pass) and the
        gradients are counted whole beside them: an upper estimate of a step
        whose gradients are made as its activations are freed.
        Inference: weights + the batch + the largest set of activations live
        at once (the output included). Generation: weights + the batch + the
        key/value cache + the largest transient of the prefill or a decode step.
        """
        return (
            self.weight_bytes
            + self.gradients
            + self.optimizer_state
            + self.inputs
            + self.saved_bytes
            + self.transient
            + self.activations
            + self.kv_cache
        )

    def parts(self, nonzero: bool = True) -> Dict[str, int]:
        """The parts of :attr:`peak`, by name (those that are not 0, unless ``nonzero=False``)."""
        parts = {
            "weights": self.weight_bytes,
            "gradients": self.gradients,
            "optimizer_state": self.optimizer_state,
            "inputs": self.inputs,
            "saved_activations": self.saved_bytes,
            "activations": self.activations,
            "kv_cache": self.kv_cache,
            "transient": self.transient,
        }
        return {k: v for k, v in parts.items() if v or not nonzero}

    def fits(self, device: Union[str, Device, int]) -> Fit:
        """Whether :attr:`peak` fits ``device`` (a GPU name, a
        ``keras_flops.Device`` with ``memory_gb``, or bytes), with the margin."""
        size, name = capacity(device)
        return Fit(self.peak <= size, self.peak, size, size - self.peak, name)

    def plot(self, device=None, path=None, ax=None):
        """The peak by part as one stacked bar, each part labelled with its
        bytes; with ``device`` (a GPU name, a ``keras_flops.Device`` or
        bytes), a line at its capacity. Shown, or written to ``path``; returns
        the matplotlib Figure (``pip install 'keras-flops[plot]'``)."""
        from keras_flops.render import plot

        return plot.memory_parts(self, device=device, path=path, ax=ax)

    def to_dataframe(self) -> pd.DataFrame:
        """One row per layer: ``weight_bytes`` (the weights it holds itself)
        and ``saved_bytes`` (the activations it made that the backward pass reads)."""
        rows: Dict[str, Dict[str, int]] = {}
        for layer, n in self.layer_weights:
            rows.setdefault(layer, {"weight_bytes": 0, "saved_bytes": 0})["weight_bytes"] += n
        for layer, n in self.saved:
            rows.setdefault(layer, {"weight_bytes": 0, "saved_bytes": 0})["saved_bytes"] += n
        df = pd.DataFrame.from_dict(rows, orient="index", columns=["weight_bytes", "saved_bytes"])
        df.index.name = "layer"
        return df

    def to_dict(self, device=None) -> dict:
        """Plain JSON types: the parts, the peak, per layer; with ``device``, ``fits``."""
        out = {
            "model": self.model_name,
            "batch_size": self.batch_size,
            "training": self.training,
            "weights": dict(self.weights),
            **self.parts(nonzero=False),
            "optimizer": self.optimizer,
            "peak": self.peak,
            "layers": [{"path": layer, **row} for layer, row in self.to_dataframe().to_dict("index").items()],
            "notes": list(self.notes),
        }
        if device is not None:
            fit = self.fits(device)
            out["fits"] = {
                "device": fit.device,
                "fits": fit.fits,
                "capacity": fit.capacity,
                "margin": fit.margin,
            }
        return out

    def __str__(self) -> str:
        what = "training step" if self.training else ("generation" if self.kv_cache else "inference")
        lines = [f"Memory of {self.model_name!r}, {what}, batch of {self.batch_size}:"]
        weights = ", ".join(f"{dtype} {_gb(n)}" for dtype, n in self.weights.items())
        labels = {
            "weights": f"weights ({weights})" if len(self.weights) > 1 else "weights",
            "optimizer_state": f"optimizer state ({self.optimizer})",
        }
        for part, n in self.parts().items():
            lines.append(f"  {labels.get(part, part.replace('_', ' ')):<40} {_gb(n):>10}  ({n:,} B)")
        lines.append(f"  {'peak (estimate)':<40} {_gb(self.peak):>10}  ({self.peak:,} B)")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def spec_bytes(specs, flatten) -> int:
    """Bytes of a structure of specs (a batch, a cache), its leaves found by
    a backend's ``flatten``."""
    return sum(
        math.ceil(math.prod(int(d) for d in s.shape) * dtype_bytes(s.dtype))
        for s in flatten(specs)
        if s is not None
    )


def _gb(n: int) -> str:
    """Bytes in GiB, MiB or KiB, as memory is sized."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


def solve(values: Sequence[int], needs: Sequence[int], capacity_bytes: int) -> int:
    """The largest integer x with ``need(x) <= capacity_bytes``, where
    ``need`` is the polynomial (a line for two points, a quadratic for three)
    through ``(values, needs)``, exact in integers; 0 when even x = 1 does
    not fit."""
    import numpy as np

    degree = min(2, len(values) - 1)
    coefficients = np.polyfit(np.asarray(values, float), np.asarray(needs, float), degree)
    need = np.poly1d(coefficients)
    if need(1) > capacity_bytes:
        return 0
    high = 1
    while need(high * 2) <= capacity_bytes and high < 2**40:
        high *= 2
    low, high = high, high * 2  # need(low) fits, need(high) does not
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if need(mid) <= capacity_bytes else (low, mid)
    return low
