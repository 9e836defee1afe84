"""The op recorder: a dispatch mode that records every aten op a Keras model
runs on PyTorch's meta device, with its owner, inputs, results and arguments.

The mechanism ``torch.utils.flop_counter.FlopCounterMode`` counts with: each
aten op below autograd reaches :meth:`OpRecorder.__torch_dispatch__`. A real
tensor an op is given is replaced by a meta copy; a small tensor computed
from constants alone keeps its value beside its meta tensor, so that a model
may read it. In a training step, each autograd node a forward op makes is
tagged with that op's owner (:meth:`OpRecorder.settle`), so that the
backward op differentiating it belongs to the same layer.

Values, for the walk's liveness, are (tensor, version) pairs: an op writing
into a tensor in place (``copy_`` into a slice of a cache) makes a new
version of it and of every view of the same memory.
"""

from __future__ import annotations

import itertools
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

import torch

from keras_flops.backends.torch import _compat
from keras_flops.core.records import BACKWARD, FORWARD, LOSS, LOSS_PHASE, OUTSIDE

META = torch.device("meta")
_TAG = "keras_flops"  # the key of an autograd node's metadata that holds its owner


class Value:
    """A tensor as the trace sees it: its key (uid, version), the group of
    tensors sharing its memory (itself and its views)."""

    __slots__ = ("uid", "version", "key", "group")

    def __init__(self, uid: int, group: Optional[list]):
        self.uid, self.version, self.key = uid, 0, (uid, 0)
        self.group = group if group is not None else []
        self.group.append(self)

    def write(self) -> None:
        self.version += 1
        self.key = (self.uid, self.version)


class Op:
    """One aten op the trace ran."""

    __slots__ = ("index", "func", "type", "ins", "outs", "owner", "args", "kwargs", "shapes", "recompute")

    def __init__(self, index, func, type_, ins, outs, owner, args, kwargs, shapes, recompute=False):
        self.index, self.func, self.type = index, func, type_
        self.ins, self.outs, self.owner = ins, outs, owner
        self.args, self.kwargs = args, kwargs
        self.shapes = shapes  # of its results (of the tensor it writes, in place)
        # a forward op the backward pass runs again (torch.utils.checkpoint, as Keras's remat is):
        # autograd runs a backward with grad mode off, a checkpoint's replay with it on
        self.recompute = recompute


class _Schema(NamedTuple):
    type: str  # the op's name without its overload: "mm", "convolution", "add_"
    writes: Tuple[int, ...]  # positions of the arguments it writes into
    view: bool  # its results are views of its first argument
    arguments: Any  # its arguments' schemas: name, default


_SCHEMAS: Dict[Any, _Schema] = {}


def _schema(func) -> _Schema:
    found = _SCHEMAS.get(func)
    if found is None:
        name, schema = _compat.aten_schema(func)
        writes = tuple(
            i for i, a in enumerate(schema.arguments) if a.alias_info is not None and a.alias_info.is_write
        )
        first = schema.arguments[0].alias_info if schema.arguments else None
        returns = schema.returns[0].alias_info if schema.returns else None
        view = bool(
            first is not None
            and returns is not None
            and not first.is_write
            and set(first.before_set) & set(returns.before_set)
        )
        found = _SCHEMAS[func] = _Schema(name, writes, view, schema.arguments)
    return found


def tensors(tree) -> List[torch.Tensor]:
    """The tensors of an op's arguments or results (nested one level, as
    lists of tensors are)."""
    found = []
    for x in tree:
        if isinstance(x, torch.Tensor):
            found.append(x)
        elif isinstance(x, (list, tuple)):
            found.extend(y for y in x if isinstance(y, torch.Tensor))
    return found


_CPU = torch.device("cpu")


def schema_type(func) -> str:
    return _schema(func).type


def arguments(func):
    """An aten op's arguments' schemas (name, default), in order."""
    return _schema(func).arguments


# Elementwise ops whose result PyTorch's meta device computes with Python
# decompositions (most of a large model's trace time): their result's shape
# is the inputs' broadcast and its dtype the promoted one, made here directly.
_BINARY = frozenset({"add", "sub", "mul", "maximum", "minimum", "pow"})
_COMPARE = frozenset({"eq", "ne", "lt", "le", "gt", "ge"})
# fmt: off
_UNARY = frozenset({"neg", "exp", "rsqrt", "sqrt", "tanh", "sigmoid", "relu", "silu", "log", "sin", "cos",
                    "reciprocal", "abs", "erf", "square"})
# fmt: on


def _pointwise(func, args, kwargs) -> Optional[torch.Tensor]:
    """The meta result of an elementwise op on meta tensors, or None for
    any other op (PyTorch's own meta kernel then runs)."""
    name = schema_type(func)
    binary, compare = name in _BINARY or name == "div", name in _COMPARE
    if not (binary or compare or name in _UNARY or name == "where"):
        return None
    if any(k != "alpha" for k in kwargs) or (kwargs and name not in ("add", "sub")):
        return None
    given = [a for a in args if isinstance(a, torch.Tensor)]
    if not given or any(t.device != META for t in given) or any(isinstance(a, (list, tuple)) for a in args):
        return None
    if name in _UNARY:
        if len(args) != 1 or not given[0].is_floating_point():
            return None
        return torch.empty(given[0].shape, dtype=given[0].dtype, device=META)
    expected = 3 if name == "where" else 2
    if len(args) != expected:
        return None
    shape = _broadcast(*(t.shape for t in given))
    if shape is None:
        return None
    if compare:
        dtype = torch.bool
    elif name == "where":
        dtype = torch.result_type(args[1], args[2])
    else:
        dtype = torch.result_type(args[0], args[1])
        if name == "div" and not (dtype.is_floating_point or dtype.is_complex):
            dtype = torch.get_default_dtype()
    return torch.empty(shape, dtype=dtype, device=META)


def _broadcast(*shapes) -> Optional[Tuple[int, ...]]:
    """NumPy's broadcast of shapes, None where they do not broadcast
    (``torch.broadcast_shapes`` reads PyTorch's config on every call)."""
    rank = max(len(s) for s in shapes)
    out = [1] * rank
    for shape in shapes:
        for i, d in enumerate(shape, start=rank - len(shape)):
            if d != out[i]:
                if out[i] == 1:
                    out[i] = d
                elif d != 1:
                    return None
    return tuple(out)


def _meta_of(real: torch.Tensor) -> Optional[torch.Tensor]:
    """A meta tensor shaped as a constant's value (None for one a view of another)."""
    if _compat.is_view(real):
        return None
    return torch.empty_strided(real.shape, real.stride(), dtype=real.dtype, device=META)


def _leaves_meta(func, kwargs) -> bool:
    """Whether the op copies a tensor off the meta device (``.cpu()``, ``.tolist()``)."""
    device = kwargs.get("device")
    return device is not None and torch.device(device) != META


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


# Constants up to this many elements are computed for real beside their
# meta tensors, so that a model may read their values (a list of split sizes
# made a tensor and read back, a mask of known positions).
CONSTANT_ELEMENTS = 1 << 16


class OpRecorder(_compat.torch_dispatch_mode()):
    """Records every aten op run inside it, with its owner (``owner()``),
    on meta tensors (a real tensor an op is given is replaced by a meta copy).

    A small tensor computed from constants alone (Python numbers and lists,
    real tensors, shapes) has its value too: each op on such tensors runs
    again on the CPU, on their values, so that the model can read it
    (``.tolist()``, ``.item()``). A value that depends on an input or a
    weight has none, and reading it is an error that says so."""

    def __init__(self, owner, training: bool):
        super().__init__()
        self.ops: List[Op] = []
        self._owner = owner
        self._training = training
        self._values: Dict[int, Value] = {}
        self._keep: List[Any] = []  # every tensor seen, alive, so that ids stay unique
        self._meta: Dict[int, torch.Tensor] = {}  # real tensor -> its meta copy
        self._real: Dict[int, torch.Tensor] = {}  # a meta tensor of a constant -> its value
        self._uids = itertools.count()
        self._pending: List[Tuple[torch.Tensor, Tuple[str, str]]] = []
        self._node = _compat.current_autograd_node()
        self.backward = False
        self._quiet = 0  # inside an op recorded whole (an einsum): its parts are not recorded

    def value(self, t: torch.Tensor, group: Optional[list] = None) -> Value:
        v = self._values.get(id(t))
        if v is None:
            v = self._values[id(t)] = Value(next(self._uids), group)
            self._keep.append(t)
        return v

    def key(self, t: torch.Tensor):
        return self.value(t).key

    def knows(self, t: torch.Tensor) -> bool:
        """Whether an op recorded here took or made ``t``."""
        return id(t) in self._values

    def constant(self, t: torch.Tensor, value: torch.Tensor) -> None:
        """Give the meta tensor ``t`` the value ``value`` (a constant the
        model may read, such as a generation's cache index)."""
        self._real[id(t)] = value
        self._keep.append(t)

    def settle(self) -> None:
        """Tag the autograd nodes of the last forward op's results with its
        owner, before a layer call starts or ends (the last op before a
        call is its caller's)."""
        if self._pending:
            self._resolve()

    def _to_meta(self, x):
        if isinstance(x, torch.Tensor) and x.device != META:
            copy = self._meta.get(id(x))
            if copy is None:
                copy = self._meta[id(x)] = torch.empty_like(x, device=META)
                self._keep.append(x)
                if x.numel() <= CONSTANT_ELEMENTS:
                    self._real[id(copy)] = x
            return copy
        if isinstance(x, (list, tuple)) and any(isinstance(y, torch.Tensor) and y.device != META for y in x):
            return type(x)(self._to_meta(y) for y in x)
        return x

    def _resolve(self) -> None:
        """Tag the autograd nodes of the last forward op's results with its owner."""
        for t, owner in self._pending:
            # an op in place on a view gives the view's base a node of its own (CopySlices)
            base = _compat.view_base(t)
            for node in (t.grad_fn, base.grad_fn if base is not None else None):
                if node is not None:
                    metadata = node.metadata
                    if _TAG not in metadata:
                        metadata[_TAG] = owner
        self._pending.clear()

    def owner(self) -> Tuple[str, str]:
        node = self._node()
        if (node is not None or self.backward) and torch.is_grad_enabled() and self._owner() != OUTSIDE:
            return self._owner(), BACKWARD  # a checkpoint replaying a layer's forward: that layer's
        if node is not None or self.backward:
            owner = _tag(node) if node is not None else None
            return (owner[0] if owner else LOSS if node is None else OUTSIDE), BACKWARD
        layer = self._owner()
        return layer, (LOSS_PHASE if layer == LOSS else FORWARD)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self._pending:
            self._resolve()
        if any(
            isinstance(a, torch.Tensor) and a.device != META or isinstance(a, (list, tuple)) for a in args
        ):
            args = tuple(self._to_meta(a) for a in args)
        if kwargs and any(isinstance(a, torch.Tensor) and a.device != META for a in kwargs.values()):
            kwargs = {k: self._to_meta(a) for k, a in kwargs.items()}
        if self._quiet:
            out = func(*args, **kwargs)
            if self._training and not self.backward:
                owner = self.owner()
                self._pending.extend(
                    (t, owner) for t in tensors(out if isinstance(out, (list, tuple)) else (out,))
                )
            return out
        real = self._constant(func, args, kwargs)
        if real is not None and (schema_type(func) == "_local_scalar_dense" or _leaves_meta(func, kwargs)):
            return real  # the value read back: a Python number, a CPU tensor
        out = None
        schema = _schema(func)
        if isinstance(real, torch.Tensor) and not schema.writes:
            out = _meta_of(real)  # a constant's meta tensor from its value: PyTorch's meta kernels are slower
        if out is None and not schema.writes:
            out = _pointwise(func, args, kwargs)
        if out is None:
            out = func(*args, **kwargs)
        owner = self.owner()
        in_tensors = tensors(args) + tensors(kwargs.values())
        ins = [(self.key(t), _nbytes(t)) for t in in_tensors]
        outs = []
        results = tensors(out if isinstance(out, (list, tuple)) else (out,))
        shapes = tuple(tuple(t.shape) for t in results)
        if schema.writes:
            written = {
                id(args[i]) for i in schema.writes if i < len(args) and isinstance(args[i], torch.Tensor)
            }
            written |= {id(t) for t in tensors([kwargs.get("out")]) if kwargs.get("out") is not None}
            for t in in_tensors:
                if id(t) in written:
                    target = self.value(t)
                    for member in target.group:
                        member.write()
                        outs.append((member.key, _nbytes(t) if member is target else 0))
                    written.discard(id(t))
            results = [t for t in results if id(t) not in self._values]
        group = (
            self.value(args[0]).group if schema.view and args and isinstance(args[0], torch.Tensor) else None
        )
        for t in results:
            known = self._values.get(id(t))
            if known is not None:  # an op that returns an input as it is
                outs.append((known.key, _nbytes(t)))
                continue
            outs.append((self.value(t, group).key, _nbytes(t)))
            if self._training and owner[1] != BACKWARD:
                self._pending.append((t, owner))
        recompute = owner[1] == BACKWARD and torch.is_grad_enabled()
        self.ops.append(
            Op(len(self.ops), func, schema.type, ins, outs, owner, args, kwargs, shapes, recompute)
        )
        if real is not None and isinstance(out, torch.Tensor) and isinstance(real, torch.Tensor):
            self._real[id(out)] = real
        return out

    def einsum(self, func, equation: str, operands: list):
        """``torch.einsum`` recorded as one op "einsum" (its parts run unrecorded)."""
        if self._pending:
            self._resolve()
        operands = [self._to_meta(t) for t in operands]
        owner = self.owner()
        ins = [(self.key(t), _nbytes(t)) for t in operands]
        differentiate = (
            torch.is_grad_enabled()
            and any(t.requires_grad for t in operands)
            and _differentiable(equation, len(operands))
        )
        self._quiet += 1
        try:
            out = _Einsum.apply(self, equation, *operands) if differentiate else func(equation, *operands)
        finally:
            self._quiet -= 1
        outs = [(self.value(out).key, _nbytes(out))]
        if self._training and owner[1] != BACKWARD:
            self._pending.append((out, owner))
        self.ops.append(
            Op(
                len(self.ops),
                None,
                "einsum",
                ins,
                outs,
                owner,
                (equation, *operands),
                {},
                (tuple(out.shape),),
                owner[1] == BACKWARD and torch.is_grad_enabled(),
            )
        )
        return out

    def _constant(self, func, args, kwargs):
        """The op run on the values of its arguments, when every tensor among
        them is a constant with a value (and small); else None."""
        given = tensors(args) + tensors(kwargs.values())
        real = self._real
        if any(id(t) not in real for t in given):
            return None
        if not given and kwargs.get("device") != META:
            return None
        if not given:  # a factory (zeros, arange): its size first, on the meta device, before any memory
            try:
                made = func(*args, **kwargs)
            except Exception:
                return None
            if isinstance(made, torch.Tensor) and made.numel() > CONSTANT_ELEMENTS:
                return None
        swap = lambda x: real[id(x)] if isinstance(x, torch.Tensor) else x  # noqa: E731
        try:
            values = [
                swap(a) if not isinstance(a, (list, tuple)) else type(a)(swap(b) for b in a) for a in args
            ]
            named = {k: (_CPU if v == META else swap(v)) for k, v in kwargs.items()}
            result = func(*values, **named)
        except Exception:  # a value keras_flops cannot compute: the tensor stays without one
            return None
        if isinstance(result, torch.Tensor) and result.numel() > CONSTANT_ELEMENTS:
            return None
        return result if isinstance(result, (torch.Tensor, int, float, bool)) else None

    def finish(self) -> None:
        self.settle()


def _tag(node):
    """The owner tagged on an autograd node; for a node no recorded op made
    (a view's, replayed after an op in place on it), the owner of the first
    node it leads to that has one (the op that made its input), looking at
    eight nodes at most; None past them."""
    seen, pending = set(), [node]
    while pending:
        node = pending.pop(0)
        if node is None or id(node) in seen or len(seen) > 8:
            continue
        seen.add(id(node))
        owner = node.metadata.get(_TAG)
        if owner is not None:
            return owner
        pending.extend(next_node for next_node, _ in node.next_functions)
    return None


class _Einsum(torch.autograd.Function):
    """An einsum whose gradients are einsums, as on TensorFlow and JAX: the
    gradient of operand i is the einsum of the output's gradient with the
    other operands, into operand i's indices (each recorded as one op, its
    products its MACs). PyTorch's own would differentiate the ops einsum
    runs, broadcast multiplies where it contracts dims of size 1."""

    @staticmethod
    def forward(ctx, recorder, equation, *operands):
        ctx.recorder, ctx.equation = recorder, equation
        ctx.save_for_backward(*operands)
        return torch.einsum(equation, *operands)

    @staticmethod
    def backward(ctx, grad):
        operands = ctx.saved_tensors
        lhs, out = ctx.equation.replace(" ", "").split("->")
        subscripts = lhs.split(",")
        grads = [None, None]
        for i, (sub, operand) in enumerate(zip(subscripts, operands)):
            if not ctx.needs_input_grad[i + 2]:
                grads.append(None)
                continue
            others = [(s, o) for j, (s, o) in enumerate(zip(subscripts, operands)) if j != i]
            equation = ",".join([out] + [s for s, _ in others]) + "->" + sub
            # recorded by the recorder itself: autograd may run this on a
            # thread of its own, where the function mode is not entered
            g = ctx.recorder.einsum(torch.einsum, equation, [grad] + [o for _, o in others])
            grads.append(g if tuple(g.shape) == tuple(operand.shape) else g.sum_to_size(operand.shape))
        return tuple(grads)


def _differentiable(equation: str, n: int) -> bool:
    """Whether each operand's gradient is an einsum (see :class:`_Einsum`):
    the output is explicit, no operand repeats an index (a diagonal), and
    each of an operand's indices is in the output or in another operand
    (with "...", in every term)."""
    equation = equation.replace(" ", "")
    if "->" not in equation:
        return False
    lhs, out = equation.split("->")
    subscripts = lhs.split(",")
    if len(subscripts) != n:
        return False
    terms = subscripts + [out]
    if "..." in equation and not all("..." in t for t in terms):
        return False
    letters = [t.replace("...", "") for t in terms]
    if any(len(set(t)) != len(t) for t in letters):
        return False
    for i, mine in enumerate(letters[:-1]):
        rest = set(letters[-1]).union(*(set(t) for j, t in enumerate(letters[:-1]) if j != i))
        if not set(mine) <= rest:
            return False
    return True


class Functions(torch.overrides.TorchFunctionMode):
    """What the op recorder needs above the dispatcher:

    - a tensor made from Python data (``torch.as_tensor([3, 5],
      device="meta")``, as Keras's ``convert_to_tensor`` does) is made on the
      CPU first, then moved to the meta device, so that the op recorder sees
      the copy and keeps the value;
    - an einsum of one or two operands is one op, as on TensorFlow and JAX,
      priced by the shared einsum formula: PyTorch would run a contraction
      over dims of size 1 (an outer product) as a broadcast multiply.
    """

    FACTORIES = frozenset({torch.as_tensor, torch.tensor, torch.asarray})

    def __init__(self, ops: "OpRecorder"):
        super().__init__()
        self.ops = ops

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self.FACTORIES and args and not isinstance(args[0], torch.Tensor):
            device = kwargs.get("device")
            if device is not None and torch.device(device) == META:
                real = func(*args, **dict(kwargs, device=_CPU))
                return real.to(META)
        if func is torch.einsum and args and isinstance(args[0], str) and not kwargs:
            operands = (
                list(args[1]) if len(args) == 2 and isinstance(args[1], (list, tuple)) else list(args[1:])
            )
            if 1 <= len(operands) <= 2 and all(isinstance(t, torch.Tensor) for t in operands):
                return self.ops.einsum(func, args[0], operands)
        return func(*args, **kwargs)
