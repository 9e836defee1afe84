"""The walk's adapter over a traced jaxpr.

Nodes are a jaxpr's equations; bodies are jaxprs (the traced one, and those
its equations call: ``pjit``, ``custom_jvp_call``, ``custom_vjp_call``,
``remat`` and ``scan``, ``while`` and ``cond``); values, for liveness, are
the jaxpr's variables. An equation's owner is the innermost layer token of
its full name stack (its callers' stacks before its own), its phase
"backward" under the outermost "transpose(", and an equation of a called
body with no token of its own belongs to its caller's owner.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional, Sequence, Tuple

import jax

from keras_flops.backends.jax import formulas as primitives
from keras_flops.backends.jax._compat import is_dropped, is_literal, name_stack
from keras_flops.core import walk
from keras_flops.core.loops import COMPARISONS, iterations
from keras_flops.core.records import BACKWARD, FORWARD, LOSS, LOSS_PHASE, OUTSIDE
from keras_flops.formulas.registry import OpSpec, Table

REMATTED = "rematted_computation"  # the name scope of a remat's recomputed forward pass

TABLE = Table(builtin=primitives.FORMULAS, zero=primitives.ZERO, mac_ops=primitives.MAC_OPS)

# Parameters holding the jaxpr a call-like primitive runs once.
_CALL_PARAMS = ("jaxpr", "call_jaxpr", "fun_jaxpr")


def count(trace, counting: str = "full", formulas=None, memory: bool = False, given=None) -> walk.Counted:
    """Price every live equation of ``trace``'s jaxpr, entering calls and
    loops (``counting`` "full": the backend offers no other mode); with
    ``memory``, read what it keeps too."""
    return walk.count(JaxprProgram(trace), counting, formulas, memory, given)


@dataclasses.dataclass(frozen=True)
class Body:
    """A jaxpr the walk enters: which of its results are read, the name
    stack of the equation that calls it, and its equations' name prefix."""

    jaxpr: Any
    used: Tuple[bool, ...]
    stack: str = ""
    prefix: str = ""


class Node:
    """One equation of a body, and where it is."""

    __slots__ = ("body", "index", "eqn", "_stack")

    def __init__(self, body: Body, index: int, eqn):
        self.body, self.index, self.eqn = body, index, eqn
        self._stack = None

    @property
    def stack(self) -> str:
        """The full name stack: the calling equations' stacks, then its own
        (read only for the equations that run)."""
        if self._stack is None:
            own = name_stack(self.eqn)
            outer = self.body.stack
            self._stack = f"{outer}/{own}" if outer and own else (outer or own)
        return self._stack


class JaxprProgram:
    """A traced jaxpr, as :class:`keras_flops.core.walk.Program`."""

    table = TABLE
    views = primitives.VIEWS
    loads = frozenset()  # a jaxpr reads memory through its inputs
    parts = frozenset({"slice", "dynamic_slice", "gather", "split", "unstack", "broadcast_in_dim", "tile"})
    updates = {"dynamic_update_slice": 1, "scatter": 2}
    stacks = frozenset({"concatenate", "stack"})
    # primitives computing each result element from the same element of their
    # inputs: XLA's buffer assignment lets them write into an input they read last
    # fmt: off
    elementwise = frozenset(primitives.ELEMENTWISE) | {
        "add", "add_any", "sub", "mul", "div", "max", "min", "pow", "rem", "neg", "square", "log", "exp2",
        "integer_pow", "select_n", "convert_element_type", "and", "or", "not", "xor", "eq", "ne", "gt", "ge",
        "lt", "le", "cbrt",
    }
    # fmt: on

    def __init__(self, trace):
        self.trace = trace
        self.arguments = getattr(trace, "arguments", ())
        self.returns = getattr(trace, "returns", ())
        self._owners: Dict[Tuple[str, Any], Tuple[str, str]] = {}  # by name stack: many equations share one

    def top(self) -> Body:
        jaxpr = self.trace.jaxpr.jaxpr
        return Body(jaxpr, (True,) * len(jaxpr.outvars))

    def nodes(self, body: Body) -> List[Node]:
        return [Node(body, i, eqn) for i, eqn in enumerate(body.jaxpr.eqns)]

    def results(self, body: Body):
        return [v for v, u in zip(body.jaxpr.outvars, body.used) if u and not is_literal(v)]

    def produces(self, node: Node):
        return [None if is_dropped(v) else v for v in node.eqn.outvars]

    def consumes(self, node: Node):
        return [v for v in node.eqn.invars if not is_literal(v)]

    def has_effects(self, node: Node) -> bool:
        return bool(node.eqn.effects)

    def owner(self, node: Node, caller):
        key = (node.stack, caller)
        owner = self._owners.get(key)
        if owner is None:
            owner = self._owners[key] = self._owner(node.stack, caller)
        return owner

    def _owner(self, stack: str, caller) -> Tuple[str, str]:
        layer = self.trace.owner(stack)
        if caller is not None:
            phase = caller[1]
            layer = layer or caller[0]
        else:
            phase = BACKWARD if stack.startswith("transpose(") else FORWARD
            layer = layer or OUTSIDE
        if layer == LOSS and phase == FORWARD:
            phase = LOSS_PHASE
        return layer, phase

    def called(self, node: Node, owner, used: Sequence[bool]):
        name = node.eqn.primitive.name
        params = node.eqn.params
        try:
            if name == "scan":
                return self._scan(node, params)
            if name == "while":
                return self._while(node, params)
            if name == "cond":
                return walk.Called(
                    "branches",
                    tuple(
                        (f"branch {k}", self._body(node, b, f"/branch{k}/"))
                        for k, b in enumerate(params["branches"])
                    ),
                )
            for key in _CALL_PARAMS:
                inner = _inner(params.get(key))
                if inner is not None:
                    mask = tuple(used) if len(used) == len(inner.outvars) else (True,) * len(inner.outvars)
                    return walk.Called(
                        "call", (("call", Body(inner, mask, node.stack, self.name(node) + "/")),)
                    )
        except (KeyError, AttributeError, TypeError) as err:  # a jaxpr form this walk does not know
            return (
                f"its parameters are not in the form keras_flops reads (jax {jax.__version__}): "
                f"{type(err).__name__}: {err}"
            )
        return None

    def _body(self, node: Node, value, suffix: str) -> Body:
        inner = _inner(value)
        if inner is None:
            raise TypeError(f"{type(value).__name__} is not a jaxpr")
        return Body(inner, (True,) * len(inner.outvars), node.stack, self.name(node) + suffix)

    def _scan(self, node: Node, params):
        """A scan runs its body ``length`` times: a loop of exact trips, with no condition."""
        body = self._body(node, params["jaxpr"], "/")
        no_condition = Body(_EMPTY, (), node.stack, self.name(node) + "/cond/")
        return walk.Called("loop", (("body", body), ("cond", no_condition)), int(params["length"]))

    def _while(self, node: Node, params):
        return walk.Called(
            "loop",
            (
                ("body", self._body(node, params["body_jaxpr"], "/body/")),
                ("cond", self._body(node, params["cond_jaxpr"], "/cond/")),
            ),
            _trip_count(node.eqn),
        )

    def interface(self, node: Node, body: Body):
        jaxpr = body.jaxpr
        return (
            [None if is_literal(v) else v for v in jaxpr.invars],
            [None if is_literal(v) else v for v in jaxpr.outvars],
        )

    def name(self, node: Node) -> str:
        return f"{node.body.prefix}{node.eqn.primitive.name}_{node.index}"

    def op_type(self, node: Node) -> str:
        return node.eqn.primitive.name

    def spec(self, node: Node) -> OpSpec:
        eqn = node.eqn
        return OpSpec(
            type=eqn.primitive.name,
            name=self.name(node),
            inputs=tuple(_shape(v) for v in eqn.invars),
            outputs=tuple(_shape(v) for v in eqn.outvars),
            attrs=eqn.params,
        )

    def operands(self, node: Node):
        eqn = node.eqn
        return (
            [(None if is_literal(v) else v, _bytes(v)) for v in eqn.invars],  # a literal: no memory
            [(None if is_dropped(v) else v, _bytes(v)) for v in eqn.outvars],
        )

    def dtype(self, node: Node) -> str:
        invars = node.eqn.invars
        dtype = getattr(getattr(invars[0], "aval", None), "dtype", None) if invars else None
        return str(dtype) if dtype is not None else ""

    def recomputes(self, node: Node) -> bool:
        """JAX names the forward pass a remat's backward runs again
        "rematted_computation" in its equations' name stack."""
        return REMATTED in node.stack

    def skip(self, node: Node) -> bool:
        return False


class _EmptyJaxpr:
    """A body with nothing in it: a scan's missing condition."""

    eqns: Tuple = ()
    outvars: Tuple = ()


_EMPTY = _EmptyJaxpr()


def _inner(value):
    """The Jaxpr of a parameter that holds one (a ClosedJaxpr or a Jaxpr), else None."""
    if hasattr(value, "jaxpr") and hasattr(value, "consts"):
        return value.jaxpr
    if hasattr(value, "eqns") and hasattr(value, "outvars"):
        return value
    return None


def _shape(var):
    shape = getattr(getattr(var, "aval", None), "shape", None)
    return tuple(shape) if shape is not None else None  # static ints in a jaxpr


def _bytes(var) -> int:
    aval = getattr(var, "aval", None)
    size, dtype = getattr(aval, "size", None), getattr(aval, "dtype", None)
    if size is None or dtype is None:
        return 0
    return int(size) * getattr(dtype, "itemsize", 0)


def _trip_count(eqn) -> Optional[int]:
    """The trips of a while loop whose condition compares one counter, started
    at a literal and stepped by a literal in the body, with a literal limit."""
    params = eqn.params
    cond, body = _inner(params["cond_jaxpr"]), _inner(params["body_jaxpr"])
    cond_consts, body_consts = params["cond_nconsts"], params["body_nconsts"]
    carry_in = eqn.invars[cond_consts + body_consts :]
    if len(cond.eqns) != 1:
        return None
    test = cond.eqns[0]
    if test.primitive.name not in COMPARISONS:
        return None
    a, b = test.invars
    carries = cond.invars[cond_consts:]
    if is_literal(a) or a not in carries or not is_literal(b):
        return None
    k = carries.index(a)
    start, limit = _literal(carry_in[k]), _literal(b)
    step = _step(body, body_consts, k)
    if start is None or limit is None or not step:
        return None
    return iterations(test.primitive.name, start, step, limit)


def _literal(v) -> Optional[int]:
    if not is_literal(v):
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
            if x is var and is_literal(y):
                value = _literal(y)
                return value if eqn.primitive.name == "add" else -value
    return None
