"""Every access to a private PyTorch name, and to Keras's private names on
its PyTorch backend, in one place: the dispatch mode, an aten op's schema, a
tensor's view flag and base, the running autograd node, Keras's torch device and seed
generator, and a deferred variable's initializer.

Each function reads one private thing, says what and from which versions,
and has a test in tests/torch_suite/test_compat_torch.py that fails loudly
when a release renames or removes it. Only the PyTorch backend imports this
module.

Checked on PyTorch 2.1-2.13 and Keras 3.0-3.15.
"""

from __future__ import annotations

import contextlib

from keras_flops._compat import required_attr


@contextlib.contextmanager
def torch_device(device):
    """Keras's torch backend placing every tensor it makes on ``device``
    ("meta", where tensors have shapes and no memory).

    Keras 3: the global attribute "torch_device" that
    ``keras.src.backend.torch.core.get_device`` reads. ``keras.device`` sets
    it too, but only to a plain string, and ``convert_to_tensor`` compares a
    tensor's ``torch.device`` with it: with "meta" as a plain string every
    meta tensor would be copied again, cutting it from autograd's graph.
    """
    from keras.src.backend.common import global_state

    previous = global_state.get_global_attribute("torch_device", None)
    global_state.set_global_attribute("torch_device", device)
    try:
        yield
    finally:
        global_state.set_global_attribute("torch_device", previous)


@contextlib.contextmanager
def no_torch_generators():
    """Keras's torch random ops drawing without a ``torch.Generator`` (which
    the meta device has none of): ``keras.src.backend.torch.random.
    torch_seed_generator`` returns None, as Keras's own symbolic calls have it.
    Keras 3: that function, which every seeded random op calls."""
    from keras.src.backend.torch import random as torch_random

    original = required_attr(torch_random, "torch_seed_generator", "Keras's torch seed generator")
    torch_random.torch_seed_generator = lambda seed: None
    try:
        yield
    finally:
        torch_random.torch_seed_generator = original


def torch_dispatch_mode():
    """PyTorch's ``TorchDispatchMode``, the base class of a mode that sees
    every aten op below autograd (``torch.utils._python_dispatch``; the
    class ``torch.utils.flop_counter.FlopCounterMode`` is built on)."""
    from torch.utils import _python_dispatch

    return required_attr(_python_dispatch, "TorchDispatchMode", "PyTorch's dispatch mode")


def aten_schema(func):
    """``(name, schema)`` of an aten op a dispatch mode is given: its name
    without the overload ("mm", "add_") and its ``FunctionSchema`` (each
    argument's name, default and alias information: whether the op writes
    into it or returns a view of it). ``OpOverload._overloadpacket`` and
    ``OpOverload._schema`` (PyTorch 2.0 and later)."""
    packet = required_attr(func, "_overloadpacket", "an aten op's name")
    return packet.__name__, required_attr(func, "_schema", "an aten op's schema")


def is_view(tensor) -> bool:
    """Whether a tensor is a view of another's memory: ``Tensor._is_view``."""
    return bool(required_attr(tensor, "_is_view", "whether a tensor is a view")())


def view_base(tensor):
    """The tensor whose memory ``tensor`` views, None for one that is not a
    view: ``Tensor._base``. An op in place on a view gives the base a new
    autograd node."""
    return required_attr(tensor, "_base", "the tensor a view views") if is_view(tensor) else None


def current_autograd_node():
    """The function that gives the autograd node whose backward is running
    (None outside a backward pass): ``torch._C._current_autograd_node``
    (PyTorch 2.0 and later)."""
    import torch

    return required_attr(torch._C, "_current_autograd_node", "the running autograd node")


def read_as_meta(variables) -> None:
    """Make each of ``variables`` (deferred: no value) read, outside a trace,
    as zeros on PyTorch's meta device, which have no memory, instead of its
    initializer's values. Keras on PyTorch reads the value of every variable
    of a model it builds (``TorchLayer._track_variables``, for the torch
    Parameters of a task model around a weightless backbone), and would
    allocate all of them.

    Keras 3: ``Variable._initializer``, which ``Variable.value`` calls for a
    variable with no value. Only ``keras.device`` and ``keras.ops`` make the
    tensor: no framework is imported here.
    """
    import keras

    def meta_zeros(shape, dtype=None):
        with keras.device("meta"):
            return keras.ops.zeros(shape, dtype=dtype)

    for variable in variables:
        required_attr(variable, "_initializer", "a deferred variable's initializer")
        variable._initializer = meta_zeros
