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
- bytes: every input and output of an op, views excluded (``bytes``, the
  unfused upper bound); an op with no arithmetic that moves data is kept
  with 0 FLOPs and its bytes;
- compulsory bytes (``min_bytes``): what crosses a layer's boundary, its
  inputs and outputs once and its weights once at their stored width
  (:func:`min_bytes`);
- the dtype each op's MACs run in.

``counting="tfprof"`` walks the way tf.profiler does: every op of the top
body, nothing entered, nothing pruned, the framework's statistic only.
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
from typing import Any, Dict, Hashable, Iterable, List, Mapping, Optional, Protocol, Sequence, Tuple

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
    loads: frozenset  # op types whose results are read from memory (a variable's value, an input)
    parts: frozenset  # op types whose result is a part of their first input (a slice, gathered rows)
    updates: Mapping[str, int]  # op types that write one input (its index) into their first, in place

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

    def operands(self, node) -> Tuple[Sequence[Tuple[Hashable, int]], Sequence[Tuple[Hashable, int]]]:
        """``(inputs, outputs)``: each data value the op reads and writes
        (the keys of :meth:`consumes` and :meth:`produces`; None for a
        constant written into the op, or a result no one reads), with its bytes."""

    def dtype(self, node) -> str:
        """The dtype of the op's first input: the dtype its MACs run in."""

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
        if not self.prune_and_enter:
            for node in program.nodes(body):
                self._price(node, program.owner(node, caller), repeat, 0)
            return
        nodes = live(program, body)
        owners = [program.owner(node, caller) for node, _ in nodes]
        compulsory = min_bytes(program, body, caller, [node for node, _ in nodes], owners)
        for (node, used), owner, n_min in zip(nodes, owners, compulsory):
            called = program.called(node, owner, used)
            if called is None:
                self._price(node, owner, repeat, n_min)
                continue
            if n_min:
                self._record(node, owner, repeat, Cost(0, 0, "the inputs and outputs of the bodies it runs"),
                             "zero", 0, n_min)
            if isinstance(called, str):
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

    def _price(self, node, owner: Owner, repeat: int, n_min: int) -> None:
        program = self.program
        priced = price(program, self.chain, node)
        if isinstance(priced, str):
            self._uncounted(node, owner, priced)
            return
        op_type = program.op_type(node)
        n_bytes = 0 if op_type in program.views else sum(b for _, b in itertools.chain(*program.operands(node)))
        if priced is None:
            if not n_bytes and not n_min:
                return
            priced = (Cost(0, 0, "moves data"), "zero")  # no arithmetic, but memory traffic: a copy
        self._record(node, owner, repeat, *priced, n_bytes, n_min)

    def _record(self, node, owner: Owner, repeat: int, cost: Cost, source: str, n_bytes: int, n_min: int):
        program = self.program
        layer, phase = owner
        self.counted.append(OpCount(program.name(node), program.op_type(node), layer, cost.flops * repeat,
                                    cost.macs * repeat, source, cost.text, repeat, phase, n_bytes * repeat,
                                    n_min * repeat, program.dtype(node) if cost.macs else ""))


def min_bytes(program: Program, body, caller: Optional[Owner], nodes: Sequence, owners: Sequence[Owner]) -> List[int]:
    """The compulsory traffic of each of ``nodes`` (the live ops of ``body``,
    in order, with their ``owners``): what crosses its layer's boundary.

    An op reads, once per layer, each value made outside its layer: in
    another layer, or read from memory (a variable's value, an input, or
    what the caller passes in, which belongs to the caller's layer). It
    writes each value that a reader in another layer, or the caller of the
    body, takes; of an update in place (a cache's new slice), only the part
    it writes. Views pass their input on unread, and a part of a value (a
    slice, gathered rows) is read where it is used, at its own size: an
    embedding reads its gathered rows, not its table. What a layer makes and
    uses inside itself (a quantized weight unpacked, an activation between
    two of its ops) never counts.
    """
    source = None if caller is None else caller[0]  # where the body's inputs come from
    operands = [program.operands(node) for node in nodes]
    types = [program.op_type(node) for node in nodes]
    passes = [t not in program.loads and (t in program.views or t in program.parts) for t in types]
    alias: Dict[Hashable, Hashable] = {}  # a view's or a part's result -> the value it is of
    made: Dict[Hashable, Optional[str]] = {}  # value -> the layer that made it (None: memory)
    sizes: Dict[Hashable, int] = {}  # value -> its bytes
    readers: Dict[Hashable, set] = {}
    for (ins, outs), op_type, (layer, _), passing in zip(operands, types, owners, passes):
        if passing and ins and ins[0][0] is not None:
            root = alias.get(ins[0][0], ins[0][0])
            alias.update((key, root) for key, _ in outs if key is not None)
            continue
        for key, _ in ins:
            readers.setdefault(alias.get(key, key), set()).add(layer)
        maker = source if op_type in program.loads else layer
        made.update((key, maker) for key, _ in outs)
        sizes.update(outs)
    results = {alias.get(key, key) for key in program.results(body)}
    counted = set()  # (layer, value) read already
    out = []
    for (ins, outs), op_type, (layer, _), passing in zip(operands, types, owners, passes):
        if passing or op_type in program.loads:
            out.append(0)
            continue
        n = 0
        for key, size in ins:
            root = alias.get(key, key)
            if root is not None and made.get(root, source) != layer and (layer, key) not in counted:
                counted.add((layer, key))
                n += min(size, sizes.get(root, size))  # a part (gathered rows repeated) is at most its whole
        for i, (key, size) in enumerate(outs):
            if key is not None and (any(r != layer for r in readers.get(key, ())) or (key in results and source != layer)):
                update = program.updates.get(op_type)
                n += ins[update][1] if update is not None and i == 0 and len(ins) > update else size
        out.append(n)
    return out


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
