"""Tracing a Keras model on PyTorch: every aten op it runs, and who ran it.

Tracing runs the model once on PyTorch's meta device, where tensors have a
shape and a dtype and no memory, under a dispatch mode (the mechanism
``torch.utils.flop_counter.FlopCounterMode`` counts with) that records each
aten op below autograd: its inputs, its results, its arguments and its
owner. Every variable of the model reads as a meta stand-in that a
``keras.StatelessScope`` maps it to, so no weight is read or allocated and a
weightless 70B config traces the same way; a tensor a layer holds outside
its variables (a constant) is given to each op as a meta copy.

Owners: the layer recorder (:class:`~keras_flops.core.layers.LayerRecorder`)
keeps a stack of the layer calls running; a forward op belongs to the
innermost. A training step is ``torch.autograd.grad`` of the compiled loss
with respect to the trainable stand-ins. Each autograd node the forward pass
makes is tagged with the owner of the op that made it (in the node's
``metadata``); while the backward pass runs, each op belongs to the node
being run, so to the layer whose forward op it differentiates.

Values, for the walk's liveness, are (tensor, version) pairs: an op writing
into a tensor in place (``copy_`` into a slice of a cache) makes a new
version of it and of every view of the same memory.
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import keras
import torch

from keras_flops import _compat
from keras_flops.core import inputs, weightless
from keras_flops.core.layers import LayerRecorder
from keras_flops.core.records import BACKWARD, FORWARD, LOSS, LOSS_PHASE, OUTSIDE, LayerRow

META = torch.device("meta")
_TAG = "keras_flops"  # the key of an autograd node's metadata that holds its owner


@dataclasses.dataclass(frozen=True)
class TorchSpec:
    """An input's spec on PyTorch: its shape, its dtype's name, a name (a
    leaf of every nested structure, as ``tf.TensorSpec`` and
    ``jax.ShapeDtypeStruct`` are)."""

    shape: Tuple[int, ...]
    dtype: str
    name: Optional[str] = None


def spec(shape, dtype, name=None) -> TorchSpec:
    return TorchSpec(tuple(None if d is None else int(d) for d in shape), inputs.dtype_name(dtype), name)


def torch_dtype(dtype) -> torch.dtype:
    name = inputs.dtype_name(dtype).replace("torch.", "")
    found = getattr(torch, name, None)
    if not isinstance(found, torch.dtype):
        raise ValueError(f"PyTorch has no dtype {name!r}")
    return found


def meta_tensor(s: TorchSpec, requires_grad: bool = False) -> torch.Tensor:
    if any(d is None for d in s.shape):
        raise ValueError(f"the spec {s.name or ''} has an unknown dim: {s.shape}")
    t = torch.empty(s.shape, dtype=torch_dtype(s.dtype), device=META)
    return t.requires_grad_(True) if requires_grad else t


def _spec_of(t) -> Any:
    if isinstance(t, torch.Tensor):
        return TorchSpec(tuple(t.shape), str(t.dtype).replace("torch.", ""))
    return t


# --------------------------------------------------------------------------
# The recorded program


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

    __slots__ = ("index", "func", "type", "ins", "outs", "owner", "args", "kwargs", "shapes")

    def __init__(self, index, func, type_, ins, outs, owner, args, kwargs, shapes):
        self.index, self.func, self.type = index, func, type_
        self.ins, self.outs, self.owner = ins, outs, owner
        self.args, self.kwargs = args, kwargs
        self.shapes = shapes  # of its results (of the tensor it writes, in place)


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
        writes = tuple(i for i, a in enumerate(schema.arguments)
                       if a.alias_info is not None and a.alias_info.is_write)
        first = schema.arguments[0].alias_info if schema.arguments else None
        returns = schema.returns[0].alias_info if schema.returns else None
        view = bool(first is not None and returns is not None and not first.is_write
                    and set(first.before_set) & set(returns.before_set))
        found = _SCHEMAS[func] = _Schema(name, writes, view, schema.arguments)
    return found


def _tensors(tree) -> List[torch.Tensor]:
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
_UNARY = frozenset({"neg", "exp", "rsqrt", "sqrt", "tanh", "sigmoid", "relu", "silu", "log", "sin", "cos",
                    "reciprocal", "abs", "erf", "square"})


def _pointwise(func, args, kwargs) -> Optional[torch.Tensor]:
    """The meta result of an elementwise op on meta tensors, or None for
    any other op (PyTorch's own meta kernel then runs)."""
    name = schema_type(func)
    binary, compare = name in _BINARY or name == "div", name in _COMPARE
    if not (binary or compare or name in _UNARY or name == "where"):
        return None
    if any(k != "alpha" for k in kwargs) or (kwargs and name not in ("add", "sub")):
        return None
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    if not tensors or any(t.device != META for t in tensors) or any(isinstance(a, (list, tuple)) for a in args):
        return None
    if name in _UNARY:
        if len(args) != 1 or not tensors[0].is_floating_point():
            return None
        return torch.empty(tensors[0].shape, dtype=tensors[0].dtype, device=META)
    expected = 3 if name == "where" else 2
    if len(args) != expected:
        return None
    shape = _broadcast(*(t.shape for t in tensors))
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
            node = t.grad_fn
            if node is not None:
                metadata = node.metadata
                if _TAG not in metadata:
                    metadata[_TAG] = owner
        self._pending.clear()

    def owner(self) -> Tuple[str, str]:
        node = self._node()
        if node is not None or self.backward:
            owner = node.metadata.get(_TAG) if node is not None else None
            return (owner[0] if owner else LOSS if node is None else OUTSIDE), BACKWARD
        layer = self._owner()
        return layer, (LOSS_PHASE if layer == LOSS else FORWARD)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self._pending:
            self._resolve()
        if any(isinstance(a, torch.Tensor) and a.device != META or isinstance(a, (list, tuple)) for a in args):
            args = tuple(self._to_meta(a) for a in args)
        if kwargs and any(isinstance(a, torch.Tensor) and a.device != META for a in kwargs.values()):
            kwargs = {k: self._to_meta(a) for k, a in kwargs.items()}
        if self._quiet:
            out = func(*args, **kwargs)
            if self._training and not self.backward:
                owner = self.owner()
                self._pending.extend((t, owner) for t in _tensors(out if isinstance(out, (list, tuple)) else (out,)))
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
        in_tensors = _tensors(args) + _tensors(kwargs.values())
        ins = [(self.key(t), _nbytes(t)) for t in in_tensors]
        outs = []
        results = _tensors(out if isinstance(out, (list, tuple)) else (out,))
        shapes = tuple(tuple(t.shape) for t in results)
        if schema.writes:
            written = {id(args[i]) for i in schema.writes if i < len(args) and isinstance(args[i], torch.Tensor)}
            written |= {id(t) for t in _tensors([kwargs.get("out")]) if kwargs.get("out") is not None}
            for t in in_tensors:
                if id(t) in written:
                    target = self.value(t)
                    for member in target.group:
                        member.write()
                        outs.append((member.key, _nbytes(t) if member is target else 0))
                    written.discard(id(t))
            results = [t for t in results if id(t) not in self._values]
        group = self.value(args[0]).group if schema.view and args and isinstance(args[0], torch.Tensor) else None
        for t in results:
            known = self._values.get(id(t))
            if known is not None:  # an op that returns an input as it is
                outs.append((known.key, _nbytes(t)))
                continue
            outs.append((self.value(t, group).key, _nbytes(t)))
            if self._training and owner[1] != BACKWARD:
                self._pending.append((t, owner))
        self.ops.append(Op(len(self.ops), func, schema.type, ins, outs, owner, args, kwargs, shapes))
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
        differentiate = (torch.is_grad_enabled() and any(t.requires_grad for t in operands)
                         and _differentiable(equation, len(operands)))
        self._quiet += 1
        try:
            out = _Einsum.apply(self, equation, *operands) if differentiate else func(equation, *operands)
        finally:
            self._quiet -= 1
        outs = [(self.value(out).key, _nbytes(out))]
        if self._training and owner[1] != BACKWARD:
            self._pending.append((out, owner))
        self.ops.append(Op(len(self.ops), None, "einsum", ins, outs, owner, (equation, *operands), {},
                           (tuple(out.shape),)))
        return out

    def _constant(self, func, args, kwargs):
        """The op run on the values of its arguments, when every tensor among
        them is a constant with a value (and small); else None."""
        tensors = _tensors(args) + _tensors(kwargs.values())
        real = self._real
        if any(id(t) not in real for t in tensors):
            return None
        if not tensors and kwargs.get("device") != META:
            return None
        swap = lambda x: real[id(x)] if isinstance(x, torch.Tensor) else x  # noqa: E731
        try:
            values = [swap(a) if not isinstance(a, (list, tuple)) else type(a)(swap(b) for b in a) for a in args]
            named = {k: (_CPU if v == META else swap(v)) for k, v in kwargs.items()}
            result = func(*values, **named)
        except Exception:  # a value keras_flops cannot compute: the tensor stays without one
            return None
        if isinstance(result, torch.Tensor) and result.numel() > CONSTANT_ELEMENTS:
            return None
        return result if isinstance(result, (torch.Tensor, int, float, bool)) else None

    def finish(self) -> None:
        if self._pending:
            self._resolve()


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
            operands = list(args[1]) if len(args) == 2 and isinstance(args[1], (list, tuple)) else list(args[1:])
            if 1 <= len(operands) <= 2 and all(isinstance(t, torch.Tensor) for t in operands):
                return self.ops.einsum(func, args[0], operands)
        return func(*args, **kwargs)


# --------------------------------------------------------------------------
# Tracing


class StackRecorder(LayerRecorder):
    """The layers running, innermost last: a forward op's owner is the innermost."""

    def __init__(self, model):
        super().__init__(model, keras.tree.flatten)
        self.stack: List[str] = []
        self.ops: Optional[OpRecorder] = None

    def mark(self, path: str):
        return _Marked(self, path)

    def current(self) -> str:
        return self.stack[-1] if self.stack else OUTSIDE


class _Marked:
    __slots__ = ("recorder", "path")

    def __init__(self, recorder: StackRecorder, path: str):
        self.recorder, self.path = recorder, path

    def __enter__(self):
        ops = self.recorder.ops
        if ops is not None and ops._pending:
            ops._resolve()  # the last op before the call is its caller's
        self.recorder.stack.append(self.path)

    def __exit__(self, *exc):
        ops = self.recorder.ops
        if ops is not None and ops._pending:
            ops._resolve()
        self.recorder.stack.pop()
        return False


@dataclasses.dataclass(frozen=True)
class TorchTrace:
    """A traced model: the ops it ran in order, the keys of its results, the
    layers called in first-call order."""

    ops: Tuple[Op, ...]
    results: Tuple[Any, ...]
    layers: Tuple[LayerRow, ...] = ()
    notes: Tuple[str, ...] = ()
    outputs: Any = None  # specs of the traced call's outputs, in their structure
    arguments: Tuple[Any, ...] = ()  # a trace_call's: the keys of its arguments' tensors
    returns: Tuple[Any, ...] = ()  # and of the tensors it returns (None for one no op made)


def _stand_ins(variables, trainable_ids=()):
    """A meta tensor per variable; the trainable floating-point ones require gradients."""
    values = []
    for s, v in zip(weightless.value_specs(variables, spec), variables):
        t = meta_tensor(s)
        values.append(t.requires_grad_(True) if id(v) in trainable_ids and t.is_floating_point() else t)
    return values


def _run(model, fn, specs: Sequence, values: list, training: bool):
    """``fn(layers, ops, args, values)`` run on meta stand-ins of ``specs``
    and of the variables (``values``) under the op recorder; ``(the layer
    recorder, the op recorder, the keys of the results)``."""
    collecting = gc.isenabled()
    gc.disable()  # the trace keeps every tensor it sees: full collections over them cost more than it
    try:
        return _traced(model, fn, specs, values, training)
    finally:
        if collecting:
            gc.enable()


def _traced(model, fn, specs: Sequence, values: list, training: bool):
    with StackRecorder(model) as layers, _compat.torch_device(META), _compat.no_torch_generators():
        ops = OpRecorder(layers.current, training)
        layers.ops = ops
        args = keras.tree.map_structure(lambda s: None if s is None else _input(ops, s), list(specs))
        with ops, Functions(ops):
            results = fn(layers, ops, args, values)
        ops.finish()
    keys = [ops.key(t) for t in _tensors(keras.tree.flatten(results)) if id(t) in ops._values]
    return layers, ops, keys


def _input(ops: OpRecorder, s: TorchSpec) -> torch.Tensor:
    """A meta tensor for an input. An integer scalar (a generation's cache
    index) is a constant 0: PyTorch runs eagerly, so a model that slices at
    it needs a value, and what it computes does not depend on which."""
    t = meta_tensor(s)
    if not s.shape and not t.is_floating_point():
        ops._real[id(t)] = torch.zeros((), dtype=t.dtype)
        ops._keep.append(t)
    return t


def trace_call(model, call, specs: Sequence) -> TorchTrace:
    """Trace ``call(*args, region)`` on ``specs``: a function that runs
    ``model`` or parts of it, as the TensorFlow backend's ``trace_call``."""
    variables = weightless.all_variables(model)
    structure = []

    ends = []

    def fn(layers, ops, args, values):
        with torch.no_grad(), weightless.values_for(variables, values) as scope:
            outputs = call(*args, layers.region)
            structure.append(keras.tree.map_structure(_spec_of, outputs))
            ends.append((args, outputs))
            return [outputs, weightless.updates(scope, variables, values)]

    layers, ops, keys = _run(model, fn, specs, _stand_ins(variables), training=False)

    def keys_of(structure):
        return tuple(ops.key(t) if isinstance(t, torch.Tensor) else None for t in keras.tree.flatten(structure))

    args, outputs = ends[0]
    return TorchTrace(tuple(ops.ops), tuple(keys), layers.layers(), outputs=structure[0],
                      arguments=keys_of(args), returns=keys_of(outputs))


def trace(model, specs, training: bool = False, targets=None) -> TorchTrace:
    """Trace ``model`` on ``specs``: one inference call, or with ``training``
    one training step without the optimizer (forward with ``training=True``,
    the compiled loss, the gradients with respect to the trainable weights)."""
    if not training:
        return trace_call(model, lambda x, region: model(x, training=False), [specs])
    variables = weightless.all_variables(model)
    trainable_ids = {id(v) for v in model.trainable_variables}
    notes: List[str] = []

    def step(layers, ops, args, values):
        x, labels = args[0], (args[1] if len(args) > 1 else None)
        train_values = [t for t in values if t.requires_grad]
        with torch.enable_grad():
            with weightless.values_for(variables, values) as scope:
                y_pred = model(x, training=True)
                with layers.mark(LOSS):
                    loss = inputs.training_loss(model, x, labels, y_pred, notes, keras.tree)
                updates = weightless.updates(scope, variables, values)
            ops.finish()
            ops.backward = True
            grads = torch.autograd.grad(loss, train_values, allow_unused=True) if train_values else []
            ops.backward = False
        return [loss, [g for g in grads if g is not None], updates]

    specs_ = [specs] + ([targets] if targets is not None else [])
    layers, ops, keys = _run(model, step, specs_, _stand_ins(variables, trainable_ids), training=True)
    return TorchTrace(tuple(ops.ops), tuple(keys), layers.layers(), tuple(dict.fromkeys(notes)))
