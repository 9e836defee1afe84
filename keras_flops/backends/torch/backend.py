"""The PyTorch backend: Keras 3 on PyTorch (``KERAS_BACKEND=torch``).

Models are traced on PyTorch's meta device into the aten ops they run
(:mod:`.trace`) and counted through the walk's adapter over that list
(:mod:`.program`), with the aten ops mapped onto the formulas (:mod:`.formulas`).
TensorFlow is never imported: the callback writes TensorBoard events with
the ``tensorboard`` package alone.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch

from keras_flops.backends.protocol import Distribution, WithoutTensorFlow
from keras_flops.backends.torch import _compat
from keras_flops.backends.torch import program
from keras_flops.backends.torch import trace as tracing


class TorchBackend(WithoutTensorFlow):
    """:class:`keras_flops.backends.protocol.Backend` for PyTorch."""

    name = "torch"
    label = "PyTorch"
    modes = ("full",)
    global_batch = False  # Keras on PyTorch trains on one device's batch

    trace = staticmethod(tracing.trace)
    trace_call = staticmethod(tracing.trace_call)
    count = staticmethod(program.count)
    spec = staticmethod(tracing.spec)

    def branches_on_a_tensor(self, err: Exception) -> bool:
        """A value read from a meta tensor, which has none (``.item()``, a copy to the CPU)."""
        text = str(err)
        return "meta tensor" in text and ("item()" in text or "Cannot copy out of meta tensor" in text)

    def keep_unallocated(self, variables) -> None:
        """Keras on PyTorch reads every variable of a model it builds (a task
        model around a weightless backbone): each of ``variables`` reads as
        zeros on the meta device, so nothing is allocated."""
        _compat.read_as_meta(variables)

    def distribution(self, model) -> Distribution:
        """One device: Keras on PyTorch has no distribution of its own."""
        return Distribution(1, 1, True)

    def outside_distribution(self, fn):
        return fn()

    def gpu_names(self) -> Tuple[str, ...]:
        if not torch.cuda.is_available():
            return ()
        return tuple(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))

    def tensor_float_32(self) -> bool:
        return bool(torch.backends.cuda.matmul.allow_tf32)

    def peak_memory(self) -> Optional[int]:
        """``torch.cuda.max_memory_allocated``, the largest over the GPUs."""
        if not torch.cuda.is_available():
            return None
        peaks = [int(torch.cuda.max_memory_allocated(i)) for i in range(torch.cuda.device_count())]
        return max(peaks) if peaks else None


BACKEND = TorchBackend()
