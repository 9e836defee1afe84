"""The JAX backend: trace a Keras model into a jaxpr, and count it.

Tracing: every variable of the model becomes an abstract value
(``jax.ShapeDtypeStruct``) that a ``keras.StatelessScope`` maps the variable
to, and ``jax.make_jaxpr`` traces the call; no weight is read or allocated,
so weightless models (a 70B config) trace the same way. While tracing, every
sublayer's call runs inside a ``jax.named_scope`` with a token of its own;
each equation of the jaxpr carries its name stack, whose innermost token is
the layer call that made it. A training step is ``jax.value_and_grad`` of
the loss with respect to the trainable variables: its backward equations'
name stacks read "transpose(jvp(...))" with the forward layer's token inside.

Counting: each live equation (one whose results reach an output) is priced
by :mod:`keras_flops.formulas.jaxpr` on TensorFlow's conventions; calls
(``pjit``, ``custom_jvp_call``, ``custom_vjp_call``, ``remat``) are entered,
``scan`` counts its body ``length`` times, ``while`` its body as many times
as its condition allows when that can be read, ``cond`` its costlier branch.
A primitive with no formula goes to ``report.uncounted``.
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import jax
import keras

from keras_flops import backend, inputs, weightless
from keras_flops.counting import Counted
from keras_flops.formulas import registry
from keras_flops.formulas.jaxpr import JAX_FORMULAS, JAX_VIEWS, JAX_ZERO
from keras_flops.layers import LayerRecorder
from keras_flops.records import LOSS, OUTSIDE, LayerRow, OpCount, UncountedOp

_SESSIONS = itertools.count()


# --------------------------------------------------------------------------
# Tracing


class ScopeRecorder(LayerRecorder):
    """Runs each layer call (and each region) in a ``jax.named_scope`` whose
    token names it; ``tokens`` maps each token to its row's path."""

    def __init__(self, model):
        super().__init__(model)
        self.prefix = f"kflops{next(_SESSIONS)}n"
        self.tokens: Dict[str, str] = {}
        self._count = itertools.count()

    def mark(self, path: str):
        token = f"{self.prefix}{next(self._count)}"
        self.tokens[token] = path
        return jax.named_scope(token)


@dataclasses.dataclass(frozen=True)
class JaxTrace:
    """A traced model: its closed jaxpr, the token of every layer call, the
    layers called in first-call order."""

    jaxpr: Any  # jax.extend.core.ClosedJaxpr
    tokens: Mapping[str, str]
    prefix: str
    layers: Tuple[LayerRow, ...] = ()
    notes: Tuple[str, ...] = ()
    outputs: Any = None  # specs of the traced call's outputs, in their structure

    def owner(self, stack: str) -> Optional[str]:
        """The path of the innermost layer call in a name stack, if any."""
        found = re.findall(rf"{self.prefix}\d+", stack)
        return self.tokens[found[-1]] if found else None


def abstract(variables: Sequence) -> List[Any]:
    """One ``jax.ShapeDtypeStruct`` per variable."""
    return [jax.ShapeDtypeStruct(tuple(v.shape), backend.dtype_name(v.dtype)) for v in variables]


def trace_call(model, call, specs: Sequence) -> JaxTrace:
    """Trace ``call(*args, region)`` on ``specs`` (abstract values): a function
    that runs ``model`` or parts of it, as :func:`keras_flops.tracing.trace_call`."""
    variables = weightless.all_variables(model)
    structure = []

    def fn(values, *args):
        with weightless.values_for(variables, values) as scope:
            outputs = call(*args, recorder.region)
            structure.append(keras.tree.map_structure(
                lambda t: jax.ShapeDtypeStruct(tuple(t.shape), t.dtype), outputs))
            return outputs, weightless.updates(scope, variables, values)

    with ScopeRecorder(model) as recorder:
        closed = jax.make_jaxpr(fn)(abstract(variables), *specs)
    return JaxTrace(closed, dict(recorder.tokens), recorder.prefix, recorder.layers(),
                    outputs=structure[0])


def trace(model, specs, training: bool = False, targets=None) -> JaxTrace:
    """Trace ``model`` on ``specs``: one inference call, or with ``training``
    one training step without the optimizer (forward with ``training=True``,
    the compiled loss, the gradients with respect to the trainable weights)."""
    if not training:
        return trace_call(model, lambda inputs, region: model(inputs, training=False), [specs])
    variables = weightless.all_variables(model)
    index = {id(v): i for i, v in enumerate(variables)}
    trainable = [index[id(v)] for v in model.trainable_variables]
    notes: List[str] = []

    def step(values, inputs, labels=None):
        def loss_of(train_values):
            mapped = list(values)
            for i, value in zip(trainable, train_values):
                mapped[i] = value
            with weightless.values_for(variables, mapped) as scope:
                y_pred = model(inputs, training=True)
                with recorder.mark(LOSS):
                    loss = _loss(model, inputs, labels, y_pred, notes)
                return loss, weightless.updates(scope, variables, mapped)

        (loss, updates), grads = jax.value_and_grad(loss_of, has_aux=True)([values[i] for i in trainable])
        return loss, grads, updates

    args = [abstract(variables), specs] + ([targets] if targets is not None else [])
    with ScopeRecorder(model) as recorder:
        closed = jax.make_jaxpr(step)(*args)
    return JaxTrace(closed, dict(recorder.tokens), recorder.prefix, recorder.layers(),
                    tuple(dict.fromkeys(notes)))


def _loss(model, x, y, y_pred, notes: List[str]):
    """The compiled loss, as the TensorFlow training step computes it; the sum
    of the outputs for a model compiled without one."""
    ops = keras.ops
    if not inputs.has_compiled_loss(model):
        notes.append(inputs.NO_LOSS_NOTE)
        return sum(ops.sum(t) for t in keras.tree.flatten(y_pred))
    if y is None:
        y = _made_targets(model, y_pred)
    return model.compute_loss(x=x, y=y, y_pred=y_pred, training=True)


def _made_targets(model, y_pred):
    """Zero labels shaped for the compiled loss: class ids for sparse losses."""
    sparse = inputs.sparse_labels(model)
    ops = keras.ops

    def make(t):
        return ops.zeros(t.shape[:-1], "int32") if sparse else ops.zeros_like(t)

    return keras.tree.map_structure(make, y_pred)


# --------------------------------------------------------------------------
# Counting


def count(trace: JaxTrace, mode: str = "full", formulas: Optional[Mapping] = None) -> Counted:
    """Price every live equation of ``trace``'s jaxpr, entering calls and
    loops. ``mode`` must be "full": "tfprof" is TensorFlow's profiler."""
    if mode != "full":
        raise ValueError(
            f"counting={mode!r} reproduces TensorFlow's profiler, which counts TensorFlow "
            "graphs; Keras runs on JAX here. Use counting='full' (the default).")
    walk = _Walk(trace, formulas or {})
    jaxpr = trace.jaxpr.jaxpr
    # The walk makes a few small records per equation; with the collector on,
    # they set off full collections over the whole jaxpr (a 70B model's),
    # which cost more than the walk. Nothing it makes is cyclic garbage.
    collecting = gc.isenabled()
    gc.disable()
    try:
        walk.jaxpr(jaxpr, [True] * len(jaxpr.outvars), prefix="", outer_stack="", outer=None, repeat=1)
    finally:
        if collecting:
            gc.enable()
    return Counted(tuple(walk.counted), tuple(walk.uncounted), tuple(dict.fromkeys(walk.notes)))


# Parameters holding the jaxpr a call-like primitive runs once.
_CALL_PARAMS = ("jaxpr", "call_jaxpr", "fun_jaxpr")


def _inner(value):
    """The Jaxpr of a parameter that holds one (a ClosedJaxpr or a Jaxpr), else None."""
    if hasattr(value, "jaxpr") and hasattr(value, "consts"):
        return value.jaxpr
    if hasattr(value, "eqns") and hasattr(value, "outvars"):
        return value
    return None


def live(jaxpr, used: Sequence[bool]) -> List[Tuple[int, Any, List[bool]]]:
    """The equations whose results reach a used output (or that have effects),
    in order, each with which of its results are used."""
    needed = {v for v, u in zip(jaxpr.outvars, used) if u and not _is_literal(v)}
    kept = []
    for i in range(len(jaxpr.eqns) - 1, -1, -1):
        eqn = jaxpr.eqns[i]
        outs = [(not _is_drop(v)) and v in needed for v in eqn.outvars]
        if any(outs) or eqn.effects:
            kept.append((i, eqn, outs if any(outs) else [True] * len(eqn.outvars)))
            needed.update(v for v in eqn.invars if not _is_literal(v))
    kept.reverse()
    return kept


def _is_literal(v) -> bool:
    return type(v).__name__ == "Literal"


def _is_drop(v) -> bool:
    return type(v).__name__ == "DropVar"


def _shape(var):
    shape = getattr(getattr(var, "aval", None), "shape", None)
    return tuple(shape) if shape is not None else None  # static ints in a jaxpr


def _bytes(var) -> int:
    aval = getattr(var, "aval", None)
    size, dtype = getattr(aval, "size", None), getattr(aval, "dtype", None)
    if size is None or dtype is None:
        return 0
    return int(size) * getattr(dtype, "itemsize", 0)


class _Walk:
    def __init__(self, trace: JaxTrace, per_call: Mapping):
        self.trace = trace
        self.per_call = per_call
        self.counted: List[OpCount] = []
        self.uncounted: List[UncountedOp] = []
        self.notes: List[str] = []
        self._owners: Dict[Tuple[str, Any], Tuple[str, str]] = {}  # by name stack: many equations share one

    # The owner of an equation: the innermost token of its full name stack;
    # its phase from the outermost transformation (backward under "transpose").
    def _owner(self, stack: str, outer) -> Tuple[str, str]:
        layer = self.trace.owner(stack)
        if outer is not None:
            phase = outer[1]
            layer = layer or outer[0]
        else:
            phase = "backward" if stack.startswith("transpose(") else "forward"
            layer = layer or OUTSIDE
        if layer == LOSS and phase == "forward":
            phase = "loss"
        return layer, phase

    def jaxpr(self, jaxpr, used, prefix: str, outer_stack: str, outer, repeat: int):
        for i, eqn, outs in live(jaxpr, used):
            stack = str(eqn.source_info.name_stack)
            full = f"{outer_stack}/{stack}" if outer_stack and stack else (outer_stack or stack)
            key = (full, outer)
            owner = self._owners.get(key)
            if owner is None:
                owner = self._owners[key] = self._owner(full, outer)
            name = eqn.primitive.name
            node = f"{prefix}{name}_{i}"
            try:
                entered = self._enter(eqn, name, node, outs, full, owner, repeat)
            except (KeyError, AttributeError, TypeError) as err:  # a jaxpr form this walk does not know
                self.uncounted.append(UncountedOp(
                    node, name, owner[0],
                    f"its parameters are not in the form keras_flops reads (jax {jax.__version__}): "
                    f"{type(err).__name__}: {err}"))
                continue
            if not entered:
                self._price(eqn, name, node, owner, repeat)

    def _enter(self, eqn, name, node, outs, stack, owner, repeat) -> bool:
        params = eqn.params
        if name == "scan":
            body = _inner(params["jaxpr"])
            length = int(params["length"])
            self.jaxpr(body, [True] * len(body.outvars), node + "/", stack, owner, repeat * length)
            return True
        if name == "while":
            return self._while(eqn, node, stack, owner, repeat)
        if name == "cond":
            return self._cond(eqn, node, stack, owner, repeat)
        for key in _CALL_PARAMS:
            body = _inner(params.get(key))
            if body is not None:
                mask = outs if len(outs) == len(body.outvars) else [True] * len(body.outvars)
                self.jaxpr(body, mask, node + "/", stack, owner, repeat)
                return True
        return False

    def _cond(self, eqn, node, stack, owner, repeat) -> bool:
        branches = [_inner(b) for b in eqn.params["branches"]]
        costs = []
        for b in branches:
            probe = _Walk(self.trace, self.per_call)
            probe.jaxpr(b, [True] * len(b.outvars), node + "/", stack, owner, repeat)
            costs.append(sum(op.flops for op in probe.counted))
        best = max(range(len(branches)), key=lambda k: costs[k])
        self.jaxpr(branches[best], [True] * len(branches[best].outvars), f"{node}/branch{best}/",
                   stack, owner, repeat)
        self.notes.append(
            f"A cond in {owner[0]!r} ({node}) has {len(branches)} branches; the costlier one, "
            f"branch {best} ({costs[best]:,} FLOPs), is counted."
        )
        return True

    def _while(self, eqn, node, stack, owner, repeat) -> bool:
        trips = _trip_count(eqn)
        if trips is None:
            self.uncounted.append(UncountedOp(
                node, "while", owner[0],
                "a while loop whose trip count cannot be read from its condition (it is not "
                "a counter stepped by a constant against a constant limit)"))
            return True
        params = eqn.params
        body, cond = _inner(params["body_jaxpr"]), _inner(params["cond_jaxpr"])
        self.jaxpr(body, [True] * len(body.outvars), node + "/body/", stack, owner, repeat * trips)
        self.jaxpr(cond, [True] * len(cond.outvars), node + "/cond/", stack, owner, repeat * (trips + 1))
        return True

    def _price(self, eqn, name, node, owner, repeat):
        layer, phase = owner
        formula, source = self.per_call.get(name), "user"
        if formula is None:
            formula = registry._USER.get(name)
        if formula is None:
            formula, source = JAX_FORMULAS.get(name), "keras_flops"
        if formula is None and name not in JAX_ZERO:
            self.uncounted.append(UncountedOp(node, name, layer, f"no formula for primitive {name}"))
            return
        moved = 0 if name in JAX_VIEWS else (
            sum(_bytes(v) for v in eqn.invars) + sum(_bytes(v) for v in eqn.outvars))
        if formula is None:  # moves data, no arithmetic
            self.counted.append(OpCount(node, name, layer, 0, 0, "zero", "", repeat, phase, moved * repeat))
            return
        spec = registry.OpSpec(
            type=name, name=node,
            inputs=tuple(_shape(v) for v in eqn.invars),
            outputs=tuple(_shape(v) for v in eqn.outvars),
            attrs=eqn.params,
        )
        try:
            cost = registry.apply(formula, spec)
        except Exception as err:  # a formula that fails leaves the op uncounted, with why
            self.uncounted.append(UncountedOp(
                node, name, layer, f"{source} formula for {name} failed: {type(err).__name__}: {err}"))
            return
        self.counted.append(OpCount(node, name, layer, cost.flops * repeat, cost.macs * repeat,
                                    source, cost.text, repeat, phase, moved * repeat))


def _trip_count(eqn) -> Optional[int]:
    """The trips of a while loop whose condition compares one counter, started
    at a literal and stepped by a literal in the body, with a literal limit."""
    params = eqn.params
    cond, body = _inner(params["cond_jaxpr"]), _inner(params["body_jaxpr"])
    cond_consts, body_consts = params["cond_nconsts"], params["body_nconsts"]
    carry_in = eqn.invars[cond_consts + body_consts:]
    if len(cond.eqns) != 1:
        return None
    test = cond.eqns[0]
    if test.primitive.name not in ("lt", "le", "gt", "ge", "ne"):
        return None
    a, b = test.invars
    carries = cond.invars[cond_consts:]
    if _is_literal(a) or a not in carries or not _is_literal(b):
        return None
    k = carries.index(a)
    start, limit = _literal(carry_in[k]), _literal(b)
    step = _step(body, body_consts, k)
    if start is None or limit is None or not step:
        return None
    op = test.primitive.name
    if op in ("lt", "ne") and step > 0:
        return max(0, -(-(limit - start) // step))
    if op == "le" and step > 0:
        return max(0, (limit - start) // step + 1)
    if op == "gt" and step < 0:
        return max(0, -(-(start - limit) // -step))
    if op == "ge" and step < 0:
        return max(0, (start - limit) // -step + 1)
    return None


def _literal(v) -> Optional[int]:
    if not _is_literal(v):
        return None
    try:
        return int(v.val)
    except (TypeError, ValueError):
        return None


def _step(body, body_consts: int, k: int) -> Optional[int]:
    """The constant a while body adds to carry ``k``, else None."""
    var = body.invars[body_consts + k]
    out = body.outvars[k]
    for eqn in body.eqns:
        if eqn.outvars[0] is out and eqn.primitive.name in ("add", "sub"):
            x, y = eqn.invars
            if x is var and _is_literal(y):
                value = _literal(y)
                return value if eqn.primitive.name == "add" else -value
    return None
