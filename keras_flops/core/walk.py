"""The walk: every op a traced program runs, priced once, on every backend.

A backend hands the walk a :class:`Program`, an adapter over its traced
program (a TensorFlow graph, a jaxpr) that answers a few questions: the ops
of a body in order, what each produces and consumes, its owner (layer,
phase), whether it calls bodies (a call, a loop with its trip count, the
branches of a conditional), its type, spec and bytes. Everything else is
here, written once:

- liveness: only ops whose results reach a result of their body (or that
  have effects) run and count;
- calls count their body once; a loop its body ``trips`` times and its
  condition ``trips + 1`` times (the test runs once more); branches count
  the costlier one, and a note says which;
- formula resolution, one chain for every backend (:class:`Chain`):
  this call's formulas, the user's, the backend's exact ones, the
  framework's own statistic, the backend's built-in ones, its zero-cost
  list; an op with none goes to ``uncounted``, never silently to 0;
- bytes: every input and output of an op, views excluded; an op with no
  arithmetic that moves data is kept with 0 FLOPs and its bytes.

``counting="tfprof"`` walks the way tf.profiler does: every op of the top
body, nothing entered, nothing pruned, the framework's statistic only.
"""

from __future__ import annotations

import dataclasses
import gc
from typing import Any, Hashable, Iterable, List, Mapping, Optional, Protocol, Sequence, Tuple

from keras_flops.core.records import OpCount, UncountedOp
from keras_flops.formulas.registry import Chain, Cost, Formula, Table, apply

# "full": every op with a formula, bodies entered, dead ops pruned;
# "tfprof": tf.compat.v1.profiler's numbers exactly (TensorFlow only).
MODES = ("full", "tfprof")

Owner = Tuple[str, str]  # (layer path, phase)


@dataclasses.dataclass(frozen=True)
class Counted:
    """What a walk found: the counted ops, the uncounted ones, notes."""

    ops: Tuple[OpCount, ...]
    uncounted: Tuple[UncountedOp, ...]
    notes: Tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Called:
    """The bodies an op runs: ``kind`` is "call" (one body, once), "loop"
    (``("body", b)`` and ``("cond", c)``, with ``trips``, None when the
    program does not fix it, and whether that count is ``exact`` or an upper
    bound) or "branches" (one of them runs)."""

    kind: str
    bodies: Tuple[Tuple[str, Any], ...]
    trips: Optional[int] = None
    exact: bool = True


class Program(Protocol):
    """What a backend's traced program tells the walk. A body and a node are
    whatever the backend uses (a graph and its ops, a jaxpr and its
    equations); the walk only hands them back."""

    table: Table  # the backend's formulas, zero-cost list included
    views: frozenset  # op types that only view their input: they move no bytes

    def top(self) -> Any:
        """The body the trace runs."""

    def nodes(self, body) -> Sequence[Any]:
        """The body's ops, each after the ops it consumes."""

    def results(self, body) -> Iterable[Hashable]:
        """The values the body returns (the ones its caller uses)."""

    def produces(self, node) -> Sequence[Optional[Hashable]]:
        """The values an op makes, in order (None for one never read)."""

    def consumes(self, node) -> Iterable[Hashable]:
        """The values an op reads."""

    def has_effects(self, node) -> bool:
        """Whether an op runs although nothing reads its results."""

    def owner(self, node, caller: Optional[Owner]) -> Owner:
        """``(layer path, phase)`` of an op; ``caller`` is the owner of the
        op whose body holds it (None in the top body)."""

    def called(self, node, owner: Owner, used: Sequence[bool]):
        """None for an op that calls no body; a :class:`Called`; or a string,
        the reason its bodies cannot be entered. ``used`` says which of its
        results are read."""

    def name(self, node) -> str: ...

    def op_type(self, node) -> str: ...

    def spec(self, node):
        """The :class:`~keras_flops.formulas.OpSpec` formulas read."""

    def operand_bytes(self, node) -> int:
        """Bytes of every input and output of the op."""

    def skip(self, node) -> bool:
        """Whether the op does no floating-point arithmetic whatever its
        type (text processing on strings): counted 0 unless a user formula
        says otherwise."""


def count(program: Program, counting: str = "full", formulas: Optional[Mapping[str, Formula]] = None) -> Counted:
    """Walk ``program`` in ``counting`` (one of :data:`MODES`), with
    ``formulas`` first in the chain."""
    tfprof = counting == "tfprof"
    walk = Walk(program, Chain(program.table, formulas, statistic_only=tfprof), prune_and_enter=not tfprof)
    # The walk makes a few small records per op; with the collector on they
    # set off full collections over a large program (a 70B model's), which
    # cost more than the walk. Nothing it makes is cyclic garbage.
    collecting = gc.isenabled()
    gc.disable()
    try:
        walk.body(program.top(), None, 1)
    finally:
        if collecting:
            gc.enable()
    return Counted(tuple(walk.counted), tuple(walk.uncounted), tuple(dict.fromkeys(walk.notes)))


def live(program: Program, body) -> List[Tuple[Any, List[bool]]]:
    """The ops of ``body`` whose results reach its results (or that have
    effects), in order, each with which of its results are read."""
    needed = set(program.results(body))
    kept = []
    for node in reversed(program.nodes(body)):
        used = [v is not None and v in needed for v in program.produces(node)]
        if any(used) or program.has_effects(node):
            kept.append((node, used if any(used) else [True] * len(used)))
            needed.update(program.consumes(node))
    kept.reverse()
    return kept


class Walk:
    """Counts a program's ops into ``counted``, ``uncounted`` and ``notes``."""

    def __init__(self, program: Program, chain: Chain, prune_and_enter: bool = True):
        self.program = program
        self.chain = chain
        self.prune_and_enter = prune_and_enter
        self.counted: List[OpCount] = []
        self.uncounted: List[UncountedOp] = []
        self.notes: List[str] = []

    def body(self, body, caller: Optional[Owner], repeat: int) -> None:
        """Count ``body``'s ops ``repeat`` times."""
        program = self.program
        if self.prune_and_enter:
            nodes = live(program, body)
        else:
            nodes = [(node, ()) for node in program.nodes(body)]
        for node, used in nodes:
            owner = program.owner(node, caller)
            called = program.called(node, owner, used) if self.prune_and_enter else None
            if called is None:
                self._price(node, owner, repeat)
            elif isinstance(called, str):
                self._uncounted(node, owner, called)
            elif called.kind == "call":
                self.body(called.bodies[0][1], owner, repeat)
            elif called.kind == "loop":
                self._loop(node, owner, repeat, called)
            else:
                self._branches(node, owner, repeat, called)

    def _uncounted(self, node, owner: Owner, reason: str) -> None:
        self.uncounted.append(UncountedOp(self.program.name(node), self.program.op_type(node), owner[0], reason))

    def _loop(self, node, owner: Owner, repeat: int, called: Called) -> None:
        trips = called.trips
        if trips is None:
            self._uncounted(node, owner, (
                "the loop's trip count is not fixed by the program (its condition is not a "
                "counter stepped by a constant against a constant limit), so its body cannot "
                "be counted"))
            return
        if not called.exact:
            self.notes.append(
                f"{self.program.op_type(node)} {self.program.name(node)} (layer {owner[0]!r}): "
                f"counted {trips} iterations, an upper bound; the loop condition may end it sooner."
            )
        bodies = dict(called.bodies)
        self.body(bodies["body"], owner, repeat * trips)
        self.body(bodies["cond"], owner, repeat * (trips + 1))  # the test runs once more

    def _branches(self, node, owner: Owner, repeat: int, called: Called) -> None:
        """Count the costlier branch, and say so."""
        costs = []
        for label, body in called.bodies:
            sub = Walk(self.program, self.chain, self.prune_and_enter)
            sub.body(body, owner, repeat)
            costs.append((sum(c.flops for c in sub.counted), label, sub))
        flops, label, best = max(costs, key=lambda c: c[0])
        self.counted += best.counted
        self.uncounted += best.uncounted
        self.notes += best.notes
        others = ", ".join(f"{lab} {f:,}" for f, lab, _ in costs if lab != label)
        self.notes.append(
            f"{self.program.op_type(node)} {self.program.name(node)} (layer {owner[0]!r}): counted "
            f"its costlier branch, {label} with {flops:,} FLOPs (others: {others})."
        )

    def _price(self, node, owner: Owner, repeat: int) -> None:
        program = self.program
        priced = price(program, self.chain, node)
        if isinstance(priced, str):
            self._uncounted(node, owner, priced)
            return
        op_type = program.op_type(node)
        n_bytes = 0 if op_type in program.views else program.operand_bytes(node)
        if priced is None:
            if not n_bytes:
                return
            priced = (Cost(0, 0, "moves data"), "zero")  # no arithmetic, but memory traffic: a copy
        cost, source = priced
        layer, phase = owner
        self.counted.append(OpCount(program.name(node), op_type, layer, cost.flops * repeat,
                                    cost.macs * repeat, source, cost.text, repeat, phase, n_bytes * repeat))


def price(program: Program, chain: Chain, node):
    """``(Cost, source)`` of one op by the first formula of ``chain``; None
    for an op that does no arithmetic; or the reason (a string) it could not
    be counted."""
    op_type = program.op_type(node)
    resolution = chain.resolve(op_type)
    if resolution is not None and resolution.source == "zero":
        return None
    if (not chain.statistic_only and (resolution is None or resolution.source != "user")
            and program.skip(node)):
        return None
    if resolution is None:
        return chain.missing(op_type)
    statistic = chain.table.statistic
    if resolution.formula is None:  # the framework's own statistic
        try:
            return statistic.cost(node), resolution.source
        except ValueError as err:
            fallback = None if chain.statistic_only else chain.table.builtin.get(op_type)
            if fallback is None:
                return f"{statistic.name}'s {op_type} formula failed: {err}"
            resolution = resolution._replace(source="keras_flops", formula=fallback)
    try:
        return apply(resolution.formula, program.spec(node)), resolution.source
    except Exception as err:  # a formula's failure is reported, never fatal
        return f"{resolution.source} formula for {op_type} failed: {type(err).__name__}: {err}"
