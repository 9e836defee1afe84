"""The formula registry: op types' formulas, and the records they return.

A formula is a small pure function of an :class:`OpSpec` (shapes and
attributes), testable with plain tuples. Each backend keeps a :class:`Table`
of its op types' formulas (registered with :func:`registrar`; a duplicate is
a bug); users register theirs with :func:`register_flops` (a duplicate is an
error they see), by the op type or primitive name of their backend.
:class:`Chain` picks an op's formula. No framework is imported here, and
TensorFlow's own registry is never written.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, NamedTuple, Optional, Protocol, Tuple, Union

Shape = Optional[Tuple[Optional[int], ...]]


class Cost(NamedTuple):
    """FLOPs and multiply-accumulates of one op, and optionally the arithmetic
    that gives them (``"2 x 5 inner dim x 6 outputs"``) for ``report.explain``."""

    flops: int
    macs: int
    text: str = ""


@dataclasses.dataclass(frozen=True)
class OpSpec:
    """What a formula sees of one op: its type, name, shapes and attributes.

    Shapes are tuples of ints (``None`` for an unknown dim, ``None`` for an
    unknown rank). ``attrs`` maps attribute names to decoded values
    (``bytes`` for strings, lists for list attributes). ``values`` holds the
    constant value of each small integer input (an axis, a size), else None.
    """

    type: str
    name: str
    inputs: Tuple[Shape, ...]
    outputs: Tuple[Shape, ...]
    attrs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    values: Tuple[Any, ...] = ()


Formula = Callable[[OpSpec], Union[int, Cost, Tuple[int, int]]]

_USER: dict = {}


def register_flops(op_type: str, *more_types: str) -> Callable[[Formula], Formula]:
    """Register a formula for one or more op types; it wins over every built-in.

    The formula takes an :class:`OpSpec` and returns its FLOPs as an int, or a
    :class:`Cost` ``(flops, macs)``. When it returns an int, MACs are FLOPs / 2
    for the op types the backend's table lists as multiply-accumulates
    (:attr:`Table.mac_ops`: TensorFlow's MatMul, Conv2D, Einsum ...; JAX's
    dot_general and conv_general_dilated; PyTorch's mm, addmm, convolution
    ...) and 0 otherwise::

        @keras_flops.register_flops("MyFusedOp")
        def my_fused_op(op):
            "2 FLOPs per output element."
            return 2 * math.prod(op.outputs[0])

    Registering a second, different function for an op type is an error; use
    :func:`unregister_flops` first. Redefining the same function (a notebook
    cell run again) replaces it. TensorFlow's own registry is never touched.
    """
    types = (op_type,) + more_types

    def decorate(fn: Formula) -> Formula:
        for name in types:
            old = _USER.get(name)
            if old is not None and _qualname(old) != _qualname(fn):
                raise ValueError(
                    f"keras_flops already has a user formula for {name!r} "
                    f"({_qualname(old)}); call keras_flops.unregister_flops({name!r}) "
                    "before registering another one."
                )
        for name in types:
            _USER[name] = fn
        return fn

    return decorate


def unregister_flops(op_type: str) -> None:
    """Remove the user formula for ``op_type`` (no error if there is none)."""
    _USER.pop(op_type, None)


def user_formula(op_type: str) -> Optional[Formula]:
    """The formula a user registered for ``op_type``, if any."""
    return _USER.get(op_type)


def _qualname(fn) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def registrar(table: dict, kind: str) -> Callable[..., Callable[[Formula], Formula]]:
    """A decorator factory registering a backend's own formulas into
    ``table`` (a duplicate is a bug here, not a user's error): ``kind`` says
    which table in the error."""

    def register(*types: str) -> Callable[[Formula], Formula]:
        def decorate(fn: Formula) -> Formula:
            for name in types:
                if name in table:
                    raise RuntimeError(f"two {kind} formulas for {name!r}")
                table[name] = fn
            return fn

        return decorate

    return register


def apply(formula: Formula, spec: OpSpec, mac_ops: frozenset = frozenset()) -> Cost:
    """Run a keras_flops or user formula and normalise its result to a Cost:
    an int result is FLOPs, with MACs by :func:`with_macs` over ``mac_ops``
    (the backend table's :attr:`Table.mac_ops`)."""
    result = formula(spec)
    if isinstance(result, Cost):
        return Cost(int(result.flops), int(result.macs), result.text or _doc_line(formula))
    if isinstance(result, tuple):
        flops, macs = result
        return Cost(int(flops), int(macs), _doc_line(formula))
    return with_macs(spec.type, int(result), mac_ops, _doc_line(formula))


def with_macs(op_type: str, flops: int, mac_ops: frozenset, text: str = "") -> Cost:
    """Attach MACs to a FLOP count: FLOPs / 2 when ``op_type`` is one of
    ``mac_ops`` (all its FLOPs are multiply-accumulates), else 0."""
    return Cost(flops, flops // 2 if op_type in mac_ops else 0, text)


def _doc_line(fn) -> str:
    doc = (getattr(fn, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else f"formula {getattr(fn, '__name__', 'lambda')}"


# --------------------------------------------------------------------------
# A backend's formulas, and the chain that picks one


class Statistic(Protocol):
    """A framework's own per-op FLOP counter (TensorFlow's registered
    "flops" statistics), read and never written."""

    name: str  # "TensorFlow": whose formula, in reasons and sources
    source: str  # the OpCount source of its counts: "tensorflow"
    op_types: frozenset  # the op types it has a formula for

    def cost(self, node) -> Cost:
        """The op's cost by the framework's formula; ValueError where that fails."""


@dataclasses.dataclass(frozen=True)
class Table:
    """A backend's formulas by op type: ``builtin`` (keras_flops' own),
    ``exact`` (keras_flops' own, winning over the framework's statistic where
    that is an approximation), ``statistic`` (the framework's own counter,
    if it has one), ``zero``, the op types that do no arithmetic, and
    ``mac_ops``, those whose FLOPs are all multiply-accumulates (a matmul,
    a convolution): a formula returning an int for one of them gets FLOPs / 2
    MACs."""

    builtin: Mapping[str, Formula]
    zero: frozenset
    mac_ops: frozenset = frozenset()
    exact: Mapping[str, Formula] = dataclasses.field(default_factory=dict)
    statistic: Optional[Statistic] = None


class Resolution(NamedTuple):
    """Which formula an op gets: ``source`` is user, the statistic's source,
    keras_flops or zero; ``formula`` is None for the statistic and zero."""

    source: str
    formula: Optional[Formula]


class Chain:
    """The resolution chain of one count. First match wins:

    1. a formula passed to this ``profile(..., formulas={...})`` call;
    2. a formula registered with :func:`register_flops`;
    3. the backend's exact formulas;
    4. the framework's own statistic (TensorFlow's "flops" registry, what
       ``tf.compat.v1.profiler`` counts; where it fails, the built-in formula
       for the op takes over);
    5. the backend's built-in formulas;
    6. the zero-cost list;
    7. otherwise the op is *uncounted*: it goes to ``report.uncounted`` and
       into a warning, never silently into the total as 0.

    ``statistic_only`` is tf.profiler's chain: the statistic and the zero
    list only.
    """

    def __init__(
        self, table: Table, per_call: Optional[Mapping[str, Formula]] = None, statistic_only: bool = False
    ):
        self.table = table
        self.per_call = dict(per_call or {})
        self.statistic_only = statistic_only

    def resolve(self, op_type: str) -> Optional[Resolution]:
        """The formula for an op type, or ``None`` if it has none."""
        table, statistic = self.table, self.table.statistic
        if self.statistic_only:
            if statistic is not None and op_type in statistic.op_types:
                return Resolution(statistic.source, None)
            return Resolution("zero", None) if op_type in table.zero else None
        if op_type in self.per_call:
            return Resolution("user", self.per_call[op_type])
        if op_type in _USER:
            return Resolution("user", _USER[op_type])
        if op_type in table.exact:
            return Resolution("keras_flops", table.exact[op_type])
        if statistic is not None and op_type in statistic.op_types:
            return Resolution(statistic.source, None)
        if op_type in table.builtin:
            return Resolution("keras_flops", table.builtin[op_type])
        if op_type in table.zero:
            return Resolution("zero", None)
        return None

    def missing(self, op_type: str) -> str:
        """Why an op type with no resolution is uncounted."""
        if self.statistic_only and Chain(self.table, self.per_call).resolve(op_type) is not None:
            return "tf.profiler has no formula for it (counting='tfprof')"
        return f"no formula for op type {op_type}"
