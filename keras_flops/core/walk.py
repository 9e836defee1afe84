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
  (:class:`Traffic`);
- the dtype each op's MACs run in;
- the activations a training step keeps for its backward pass, and the
  largest set of values live at once (:mod:`keras_flops.core.activations`).

``counting="tfprof"`` walks the way tf.profiler does: every op of the top
body, nothing entered, nothing pruned, the framework's statistic only.
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
from typing import Any, Dict, Hashable, Iterable, List, Mapping, Optional, Protocol, Sequence, Tuple, Union

from keras_flops.core.activations import Activations, Standing, activations, live
from keras_flops.core.records import BACKWARD, OpCount, UncountedOp
from keras_flops.formulas.registry import Chain, Cost, Formula, Table, apply

# "full": every op with a formula, bodies entered, dead ops pruned;
# "tfprof": tf.compat.v1.profiler's numbers exactly (TensorFlow only).
MODES = ("full", "tfprof")

Owner = Tuple[str, str]  # (layer path, phase)


@dataclasses.dataclass(frozen=True)
class Counted:
    """What a walk found: the counted ops, the uncounted ones, notes, and
    the program's activation memory (saved for the backward pass, live)."""

    ops: Tuple[OpCount, ...]
    uncounted: Tuple[UncountedOp, ...]
    notes: Tuple[str, ...]
    activations: Activations = Activations()
    # Of a traced call (the program's ``arguments`` and ``returns``): whether
    # its live ops read each argument; and for each value it returns that is
    # a view or part larger than what it is of (a weight's row broadcast),
    # that value's bytes, the most a reader counts (0 for a small constant
    # written into the program; else None). What reuse by layer needs to
    # give each layer the counts of one whole program.
    reads: Tuple[bool, ...] = ()
    passes: Tuple[Optional[int], ...] = ()
    # per returned value: the argument it is (or views), i >= 0; -1 - j where
    # it is the value returned j-th (or a view of it); else None
    aliases: Tuple[Optional[int], ...] = ()
    # With ``memory`` a Standing: the activations of the program with each call
    # passed through run as its like call; None where the program cannot tell them.
    stood: Optional[Activations] = None


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
    stacks: frozenset  # op types that join their inputs (Pack, concatenate): of updated caches, in place
    elementwise: frozenset  # op types that may write their result into an input they read last
    arguments: Sequence[Hashable]  # of a traced call: the keys of its arguments, in order (else empty)
    returns: Sequence[
        Optional[Hashable]
    ]  # and of the values it returns (None: a constant the program writes in)

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

    def interface(self, node, body):
        """``(inputs, results)`` of a body ``node`` calls once, as the keys of
        the body's values matched one to one to the node's operands and
        results (None where one has none), or None where they do not match."""

    def recomputes(self, node) -> bool:
        """Whether a backward op runs a forward op again, as rematerialization
        (``keras.RematScope``, ``keras.remat``) has the backward pass do:
        work the model's FLOPs leave out and its hardware FLOPs count. A
        Program without it recomputes nothing."""

    def skip(self, node) -> bool:
        """Whether the op does no floating-point arithmetic whatever its
        type (text processing on strings): counted 0 unless a user formula
        says otherwise."""


def count(
    program: Program,
    counting: str = "full",
    formulas: Optional[Mapping[str, Formula]] = None,
    memory: Union[bool, Standing] = False,
    given: Optional[Sequence[Tuple[Hashable, Optional[int]]]] = None,
) -> Counted:
    """Walk ``program`` in ``counting`` (one of :data:`MODES`), with
    ``formulas`` first in the chain; with ``memory``, also read its
    :class:`~keras_flops.core.activations.Activations` (``memory`` a
    :class:`~keras_flops.core.activations.Standing`: also ``stood``, those of
    the program with its passed-through calls run). ``given``: per
    argument of a traced call (``program.arguments``), ``(token, cap)``, as
    one whole program would pass it: arguments with one token are one value
    (read once per layer), and ``cap`` is the bytes its readers count at
    most (None: its own), what a caller's broadcast passes on."""
    tfprof = counting == "tfprof"
    walk = Walk(program, Chain(program.table, formulas, statistic_only=tfprof), prune_and_enter=not tfprof)
    # The walk makes a few small records per op; with the collector on they
    # set off full collections over a large program (a 70B model's), which
    # cost more than the walk. Nothing it makes is cyclic garbage.
    collecting = gc.isenabled()
    gc.disable()
    try:
        boundary = _top_boundary(program, given) if given else None
        walk.body(program.top(), None, 1, boundary)
        kept, stood = Activations(), None
        if isinstance(memory, Standing):
            kept, stood = activations(program, walk.top, memory)
        elif memory and not tfprof:
            kept = activations(program, walk.top)
    finally:
        if collecting:
            gc.enable()
    reads, passes, aliases = _interface(program, walk) if not tfprof else ((), (), ())
    return Counted(
        tuple(walk.counted),
        tuple(walk.uncounted),
        tuple(dict.fromkeys(walk.notes)),
        kept,
        reads,
        passes,
        aliases,
        stood,
    )


def _top_boundary(program: Program, given) -> Optional["Boundary"]:
    """The top body's :class:`Boundary` for ``given`` arguments, or None
    where each is its own value at its own size."""
    tokens = [token for token, _ in given]
    if all(cap is None for _, cap in given) and len(set(tokens)) == len(tokens):
        return None
    inputs, first = {}, {}
    for key, (token, cap) in zip(program.arguments, given):
        if key is not None:
            inputs[key] = (first.setdefault(token, key), None, cap)
    return Boundary(inputs, {}, set())


def _interface(program: Program, walk: "Walk"):
    """``(reads, passes, aliases)`` of the program's ``arguments`` and
    ``returns`` (see :class:`Counted`); empty where the backend gives none."""
    arguments = tuple(getattr(program, "arguments", ()) or ())
    returns = tuple(getattr(program, "returns", ()) or ())
    if not arguments and not returns:
        return (), (), ()
    # an argument returned as it is is read by the caller
    consumed = set(program.results(program.top())) | {key for key in returns if key is not None}
    for node in walk.top or ():
        consumed.update(program.consumes(node))
    reads = tuple(key is not None and key in consumed for key in arguments)
    traffic = walk.top_traffic
    sizes = {key: size for ins, outs in traffic.operands for key, size in itertools.chain(ins, outs)}
    passes = []  # as Traffic.count reads a part: at most its root's size, where the program knows it
    for key in returns:
        if key is None:  # a constant written into the program: its readers read nothing
            passes.append(0)
            continue
        root = traffic.alias.get(key, key)
        # a part or view counts at most what it is of: more (a broadcast)
        # passes on fewer bytes than its own to whoever reads it
        size, whole = sizes.get(key), traffic.sizes.get(root)
        capped = root != key and size is not None and whole is not None and size > whole
        passes.append(whole if capped else None)
    # a returned value that is an argument (or a view or part of one), or the
    # same value as a value returned before it: its readers read one value
    position = {key: i for i, key in enumerate(arguments) if key is not None}
    aliases, first = [], {}
    for j, key in enumerate(returns):
        root = traffic.alias.get(key, key) if key is not None else None
        if root is None:
            aliases.append(None)
        elif root in position:
            aliases.append(position[root])
        else:
            earlier = first.setdefault(root, j)
            aliases.append(None if earlier == j else -1 - earlier)
    return reads, tuple(passes), tuple(aliases)


class Walk:
    """Counts a program's ops into ``counted``, ``uncounted`` and ``notes``."""

    def __init__(self, program: Program, chain: Chain, prune_and_enter: bool = True):
        self.program = program
        self.chain = chain
        self.prune_and_enter = prune_and_enter
        self.counted: List[OpCount] = []
        self.uncounted: List[UncountedOp] = []
        self.notes: List[str] = []
        self.top: Optional[list] = None
        self.top_traffic: Optional[Traffic] = None

    def body(self, body, caller: Optional[Owner], repeat: int, boundary: Optional[Boundary] = None) -> None:
        """Count ``body``'s ops ``repeat`` times (``boundary``: what a
        transparent call's body takes from its caller, for compulsory bytes)."""
        program = self.program
        if not self.prune_and_enter:
            for node in program.nodes(body):
                self._price(node, program.owner(node, caller), repeat, 0, program.operands(node))
            return
        nodes = live(program, body)
        if caller is None:
            self.top = [node for node, _ in nodes]  # the top body's live ops, for memory
        owners = [program.owner(node, caller) for node, _ in nodes]
        calls = [program.called(node, owner, used) for (node, used), owner in zip(nodes, owners)]
        traffic = Traffic(program, body, caller, [node for node, _ in nodes], owners, calls, boundary)
        if caller is None:
            self.top_traffic = traffic
        for i, ((node, _used), owner, called) in enumerate(zip(nodes, owners, calls)):
            if called is None:
                self._price(node, owner, repeat, traffic.count(i), traffic.operands[i])
                continue
            n_min = traffic.count(i, called) if not isinstance(called, str) else traffic.count(i)
            if n_min:
                self._record(
                    node,
                    owner,
                    repeat,
                    Cost(0, 0, "the inputs and outputs of the bodies it runs"),
                    "zero",
                    0,
                    n_min,
                )
            if isinstance(called, str):
                self._uncounted(node, owner, called)
            elif called.kind == "call":
                self.body(called.bodies[0][1], owner, repeat, traffic.boundary(i, called))
            elif called.kind == "loop":
                self._loop(node, owner, repeat, called)
            else:
                self._branches(node, owner, repeat, called)

    def _uncounted(self, node, owner: Owner, reason: str) -> None:
        self.uncounted.append(
            UncountedOp(self.program.name(node), self.program.op_type(node), owner[0], reason)
        )

    def _loop(self, node, owner: Owner, repeat: int, called: Called) -> None:
        trips = called.trips
        if trips is None:
            self._uncounted(
                node,
                owner,
                (
                    "the loop's trip count is not fixed by the program (its condition is not a "
                    "counter stepped by a constant against a constant limit), so its body cannot "
                    "be counted"
                ),
            )
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

    def _price(self, node, owner: Owner, repeat: int, n_min: int, operands) -> None:
        program = self.program
        priced = price(program, self.chain, node)
        if isinstance(priced, str):
            self._uncounted(node, owner, priced)
            return
        op_type = program.op_type(node)
        n_bytes = 0 if op_type in program.views else sum(b for _, b in itertools.chain(*operands))
        if priced is None:
            if not n_bytes and not n_min:
                return
            priced = (Cost(0, 0, "moves data"), "zero")  # no arithmetic, but memory traffic: a copy
        self._record(node, owner, repeat, *priced, n_bytes, n_min)

    def _record(self, node, owner: Owner, repeat: int, cost: Cost, source: str, n_bytes: int, n_min: int):
        program = self.program
        layer, phase = owner
        self.counted.append(
            OpCount(
                program.name(node),
                program.op_type(node),
                layer,
                cost.flops * repeat,
                cost.macs * repeat,
                source,
                cost.text,
                repeat,
                phase,
                n_bytes * repeat,
                n_min * repeat,
                program.dtype(node) if cost.macs else "",
                phase == BACKWARD and getattr(program, "recomputes", _never)(node),
            )
        )


def _never(node) -> bool:
    return False


@dataclasses.dataclass
class Boundary:
    """What a called body's compulsory traffic needs from its caller: for
    each of its inputs, the value the caller passes (a token), the layer that
    made it (None: memory) and its bytes; for each of its results, the layers
    that read what the caller makes of it (None: memory); and the reads
    counted so far, shared."""

    inputs: Dict[Hashable, Tuple[Hashable, Optional[str], int]]
    result_readers: Dict[Hashable, set]
    counted: set


class Traffic:
    """The compulsory traffic of each of ``nodes`` (the live ops of ``body``,
    in order, with their ``owners``): what crosses its layer's boundary.

    An op reads, once per layer, each value made outside its layer: in
    another layer, or read from memory (a variable's value, an input). It
    writes each value that a reader in another layer, or the caller of the
    program, takes; of an update in place (a cache's new slice), only the
    part it writes, and caches stacked again from such updates are the same
    buffers. Views pass their input on unread, and a part of a value (a
    slice, gathered rows) is read where it is used, at its own size: an
    embedding reads its gathered rows, not its table. What a layer makes
    and uses inside itself (a quantized weight unpacked, an activation
    between two of its ops) never counts. A call whose body's inputs and
    results the backend can match to its own operands is transparent: its
    body's ops read and write across the boundary themselves. Other bodies
    (loops, branches) take their inputs from the caller's layer.
    """

    def __init__(
        self,
        program: Program,
        body,
        caller: Optional[Owner],
        nodes: Sequence,
        owners: Sequence[Owner],
        calls: Sequence,
        boundary: Optional[Boundary] = None,
    ):
        self.program, self.nodes, self.owners = program, nodes, owners
        self.source = source = None if caller is None else caller[0]  # where unbound inputs come from
        self.operands = operands = [program.operands(node) for node in nodes]
        types = [program.op_type(node) for node in nodes]
        passes = [t not in program.loads and (t in program.views or t in program.parts) for t in types]
        self.alias: Dict[Hashable, Hashable] = {}  # a view's or a part's result -> the value it is of
        self.parts = set()  # results of part ops: each read at its own size
        updated = set()  # buffers updated in place: a cache's new state, and caches stacked from them
        self.made: Dict[Hashable, Optional[str]] = {}  # value -> the layer that made it (None: memory)
        self.sizes: Dict[Hashable, int] = {}  # value -> its bytes
        self.out_sizes: Dict[Hashable, int] = {}  # a view's or a part's result -> its bytes
        self.readers: Dict[Hashable, set] = {}
        self.counted = boundary.counted if boundary is not None else set()  # (layer, value) read already
        self.interfaces = [None] * len(nodes)  # a transparent call's (body inputs, body results)
        self.calls = calls
        for key, (token, maker, size) in boundary.inputs.items() if boundary is not None else ():
            self.alias[key] = token
            self.made.setdefault(token, maker)
            if size is not None:
                self.sizes[token] = size
        alias, made = self.alias, self.made
        for i, ((ins, outs), op_type, (layer, _), passing) in enumerate(zip(operands, types, owners, passes)):
            if passing and ins and ins[0][0] is not None:
                root = alias.get(ins[0][0], ins[0][0])
                alias.update((key, root) for key, _ in outs if key is not None)
                self.out_sizes.update((key, size) for key, size in outs if key is not None)
                if op_type in program.parts:
                    self.parts.update(key for key, _ in outs)
                continue
            if op_type in program.updates:
                updated.add(outs[0][0])
            elif op_type in program.stacks and all(
                alias.get(k, k) in updated for k, _ in ins if k is not None
            ):
                updated.update(key for key, _ in outs)  # the caches joined again: the same buffers, in place
                passes[i] = True
                continue
            for key, _ in ins:
                self.readers.setdefault(alias.get(key, key), set()).add(layer)
            passed = self._passed_through(i) if isinstance(calls[i], Called) else {}
            for key, size in outs:
                if key in passed:  # a call's result that is its operand, or a part of it
                    operand, part = passed[key]
                    alias[key] = alias.get(operand, operand)
                    if part or operand in self.parts:
                        self.parts.add(key)
                    continue
                made[key] = source if op_type in program.loads else layer
                self.sizes.setdefault(key, size)  # an argument's may be capped by the caller
        results = [alias.get(key, key) for key in program.results(body)]
        self.result_readers: Dict[Hashable, set] = {}
        for key, inner in zip(results, program.results(body)):
            outside = boundary.result_readers.get(inner) if boundary is not None else None
            self.result_readers[key] = outside if outside is not None else {source}
        self.counts = [0 if passing or t in program.loads else None for passing, t in zip(passes, types)]

    def reads_outside(self, key, layer) -> bool:
        return any(r != layer for r in self.readers.get(key, ())) or any(
            r != layer for r in self.result_readers.get(key, ())
        )

    def count(self, i: int, called=None) -> int:
        """The compulsory bytes of node ``i``; a call the backend can match
        (``called``'s interface) counts 0 here, its body's ops count."""
        if self.counts[i] is not None:
            return self.counts[i]
        program, (ins, outs), (layer, _) = self.program, self.operands[i], self.owners[i]
        if called is not None and self.interface(i, called) is not None:
            return 0
        op_type = program.op_type(self.nodes[i])
        n = 0
        for key, size in ins:
            root = self.alias.get(key, key)
            if root is None or self.made.get(root, self.source) == layer:
                continue
            seen = (layer, key if key in self.parts else root)
            if seen not in self.counted:
                self.counted.add(seen)
                n += min(
                    size, self.sizes.get(root, size)
                )  # a part (gathered rows repeated) is at most its whole
        for j, (key, size) in enumerate(outs):
            if key is not None and self.reads_outside(key, layer):
                update = program.updates.get(op_type)
                n += ins[update][1] if update is not None and j == 0 and len(ins) > update else size
        return n

    def _passed_through(self, i: int) -> Dict[Hashable, Tuple[Hashable, bool]]:
        """Of a transparent call's results, those that are one of its operands
        or a view or part of one (a gather in a called function): result key
        -> (operand key, whether a part)."""
        interface = self.interface(i, self.calls[i])
        if interface is None:
            return {}
        program, inner_alias, inner_parts = self.program, {}, set()
        for node in program.nodes(self.calls[i].bodies[0][1]):
            op_type = program.op_type(node)
            if op_type in program.loads or not (op_type in program.views or op_type in program.parts):
                continue
            ins, outs = program.operands(node)
            if ins and ins[0][0] is not None:
                root = inner_alias.get(ins[0][0], ins[0][0])
                for key, _ in outs:
                    inner_alias[key] = root
                    if op_type in program.parts or ins[0][0] in inner_parts:
                        inner_parts.add(key)
        position = {key: j for j, key in enumerate(interface[0]) if key is not None}
        ins, outs = self.operands[i]
        passed = {}
        for inner, (key, _) in zip(interface[1], outs):
            j = position.get(inner_alias.get(inner, inner))
            if j is not None and key is not None and ins[j][0] is not None:
                passed[key] = (ins[j][0], inner in inner_parts)
        return passed

    def interface(self, i: int, called):
        """(body inputs, body results) of a call matched to node ``i``'s operands, else None."""
        if not isinstance(called, Called) or called.kind != "call":
            return None
        if self.interfaces[i] is None:
            found = self.program.interface(self.nodes[i], called.bodies[0][1])
            ins, outs = self.operands[i]
            aligned = found is not None and len(found[0]) == len(ins) and len(found[1]) == len(outs)
            self.interfaces[i] = found if aligned else False
        return self.interfaces[i] or None

    def boundary(self, i: int, called) -> Optional[Boundary]:
        """What node ``i``'s called body needs of this body, for a transparent call."""
        interface = self.interface(i, called)
        if interface is None:
            return None
        ins, outs = self.operands[i]
        inputs = {}
        for inner, (key, size) in zip(interface[0], ins):
            if inner is None or key is None:
                continue
            root = self.alias.get(key, key)
            token = key if key in self.parts else root
            inputs[inner] = (token, self.made.get(root, self.source), min(size, self.sizes.get(root, size)))
        result_readers = {}
        for inner, (key, _) in zip(interface[1], outs):
            if inner is not None and key is not None:
                result_readers[inner] = self.readers.get(key, set()) | self.result_readers.get(key, set())
        return Boundary(inputs, result_readers, self.counted)


def price(program: Program, chain: Chain, node):
    """``(Cost, source)`` of one op by the first formula of ``chain``; None
    for an op that does no arithmetic; or the reason (a string) it could not
    be counted."""
    op_type = program.op_type(node)
    resolution = chain.resolve(op_type)
    if resolution is not None and resolution.source == "zero":
        return None
    if (
        not chain.statistic_only
        and (resolution is None or resolution.source != "user")
        and program.skip(node)
    ):
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
        return apply(resolution.formula, program.spec(node), chain.table.mac_ops), resolution.source
    except Exception as err:  # a formula's failure is reported, never fatal
        return f"{resolution.source} formula for {op_type} failed: {type(err).__name__}: {err}"
