"""The walk's adapter over a traced PyTorch program: the aten ops it ran.

The program is one body, the ops in the order they ran; values, for
liveness, are (tensor, version) keys (:mod:`.trace`). An op's owner is the
one the trace gave it. Nothing calls a body: PyTorch runs eagerly, so a
loop in Python is its ops, as many times as it ran.
"""

from __future__ import annotations

from typing import Any, Dict

import torch

from keras_flops.backends.torch import formulas as aten
from keras_flops.backends.torch import recorder
from keras_flops.core import walk
from keras_flops.core.dtypes import dtype_name
from keras_flops.formulas.registry import OpSpec, Table

TABLE = Table(builtin=aten.FORMULAS, zero=aten.ZERO, mac_ops=aten.MAC_OPS)

# ops computing each result element from the same element of their inputs:
# PyTorch's in-place forms, and XLA and TensorFlow's buffer reuse, write into an input read last
# fmt: off
ELEMENTWISE = (frozenset(aten.ELEMENTWISE) | frozenset(aten.STEP)
               | {"silu", "gelu", "where", "masked_fill", "_to_copy", "hardswish", "hardsigmoid", "mish",
                  "gelu_backward", "silu_backward", "logical_not", "logical_and", "logical_or", "clone"})
# fmt: on


def count(trace, counting: str = "full", formulas=None, memory: bool = False, given=None) -> walk.Counted:
    """Price every live op of ``trace`` (``counting`` "full": the backend
    offers no other mode); with ``memory``, read what it keeps too."""
    return walk.count(TorchProgram(trace), counting, formulas, memory, given)


_TOP = "top"


class TorchProgram:
    """A traced PyTorch program, as :class:`keras_flops.core.walk.Program`."""

    table = TABLE
    views = aten.VIEWS
    loads = frozenset()  # a trace reads memory through its inputs and stand-ins
    # fmt: off
    parts = frozenset({"slice", "select", "index_select", "embedding", "gather", "narrow", "split",
                       "split_with_sizes", "unbind", "chunk", "index", "_unsafe_index", "expand"})
    # fmt: on
    # fmt: off
    updates = {"copy_": 1, "index_put_": 2, "_index_put_impl_": 2, "slice_scatter": 1, "select_scatter": 1,
               "index_copy_": 2, "index_copy": 2, "scatter_": 2}
    # fmt: on
    stacks = frozenset({"cat", "stack"})
    elementwise = ELEMENTWISE

    def __init__(self, trace):
        self.trace = trace
        self.arguments = getattr(trace, "arguments", ())
        self.returns = getattr(trace, "returns", ())

    def top(self):
        return _TOP

    def nodes(self, body):
        return self.trace.ops

    def results(self, body):
        return self.trace.results

    def produces(self, node):
        return [key for key, _ in node.outs]

    def consumes(self, node):
        return [key for key, _ in node.ins]

    def has_effects(self, node) -> bool:
        return False

    def owner(self, node, caller):
        return node.owner

    def called(self, node, owner, used):
        return None

    def interface(self, node, body):
        return None

    def recomputes(self, node) -> bool:
        return node.recompute

    def name(self, node) -> str:
        return f"{node.type}_{node.index}"

    def op_type(self, node) -> str:
        return node.type

    def spec(self, node) -> OpSpec:
        tensors_in = [_shape(a) for a in _flat(node.args)] + [_shape(a) for a in _flat(node.kwargs.values())]
        return OpSpec(
            type=node.type,
            name=self.name(node),
            inputs=tuple(s for s in tensors_in if s is not None),
            outputs=node.shapes,
            attrs=_attrs(node),
        )

    def operands(self, node):
        return node.ins, node.outs

    def dtype(self, node) -> str:
        for a in _flat(node.args):
            if isinstance(a, torch.Tensor):
                return dtype_name(a.dtype)
        return ""

    def skip(self, node) -> bool:
        return False


def _flat(tree):
    for x in tree:
        if isinstance(x, (list, tuple)):
            yield from x
        else:
            yield x


def _shape(x):
    return tuple(x.shape) if isinstance(x, torch.Tensor) else None


def _value(x):
    if isinstance(x, torch.Tensor):
        return tuple(x.shape)
    if isinstance(x, (list, tuple)):
        return type(x)(_value(y) for y in x)
    if isinstance(x, (torch.dtype, torch.device, torch.memory_format, torch.layout)):
        return str(x)
    return x


def _attrs(node) -> Dict[str, Any]:
    """The op's arguments by the schema's names, each tensor as its shape
    (an einsum's: its equation)."""
    if node.func is None:
        return {"equation": node.args[0]}
    arguments = recorder.arguments(node.func)
    attrs = {a.name: _value(v) for a, v in zip(arguments, node.args)}
    attrs.update((k, _value(v)) for k, v in node.kwargs.items())
    for a in arguments[len(node.args) :]:
        if a.name not in attrs and a.has_default_value():
            attrs[a.name] = _value(a.default_value)
    return attrs
