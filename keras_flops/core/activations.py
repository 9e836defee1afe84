"""What a traced program keeps in memory: the activations a training step
saves for its backward pass, and the largest set of values live at once.

Read from the program itself, on every backend, through the walk's
:class:`~keras_flops.core.walk.Program`:

- **saved activations**: the values the forward pass (and the loss) make
  that a backward op reads. They are kept from the moment they are made until
  the backward pass has read them. On JAX they are the residuals of the vjp;
  on TensorFlow the forward tensors the gradient ops take. Values read from
  memory (weights, the batch) are not activations; a view (a reshape) is its
  input's buffer, counted once. Each goes to the layer that made it.
- **live values**: walking the program's ops in order, the values made so
  far that an op still reads (or that the program returns). Their largest
  total is the program's peak of activations; less the saved activations
  and the results live at that op (the gradients, a generation's cache), the
  largest **transient**: what the forward or backward pass needs on top of
  what it keeps. A called body (a function, a loop's body, a branch) adds
  its own largest live set at the op that calls it.

The figures are unfused: each op's result is a buffer of its own, as the
program is written; a compiler that fuses ops keeps fewer (docs/memory.md).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, FrozenSet, Hashable, List, Optional, Sequence, Tuple

from keras_flops.core.records import BACKWARD


def live(program, body) -> List[Tuple[Any, List[bool]]]:
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


@dataclasses.dataclass(frozen=True)
class Activations:
    """The activation memory of a traced program, in bytes.

    ``saved``: ``(layer, bytes)`` of the forward values the backward pass
    reads, per layer in the order they are made (empty without a backward
    pass); ``peak``: the largest total of values live at once;
    ``transient``: the largest total of live values that are neither saved
    nor results of the program; ``results``: the bytes the program returns
    that it makes (not its inputs passed through)."""

    saved: Tuple[Tuple[str, int], ...] = ()
    peak: int = 0
    transient: int = 0
    results: int = 0

    @property
    def saved_bytes(self) -> int:
        return sum(n for _, n in self.saved)


@dataclasses.dataclass(frozen=True)
class Standing:
    """Calls passed through in a program (a chain's middle calls, each
    standing in for a like call: ``LayerRecorder``'s ``passthrough``), to be
    read as if each ran as that like call. ``chains``: per chain, the paths
    of the like call (it and its sublayers) and of the calls standing in for
    it."""

    chains: Tuple[Tuple[FrozenSet[str], Tuple[str, ...]], ...]


def activations(program, nodes: Optional[Sequence] = None, standing: Optional[Standing] = None):
    """The :class:`Activations` of ``program``'s top body (``nodes``: its
    live ops, where the walk has found them already). With ``standing``,
    ``(activations, stood)``: ``stood`` the activations of the program with
    each passed-through call run as its like call (:meth:`Buffers.standing`),
    or None where this program cannot tell them."""
    buffers = Buffers(program, program.top(), top=True, nodes=nodes)
    saved: Dict[Hashable, Tuple[str, int]] = {}
    for i, reads in enumerate(buffers.reads):
        if buffers.phases[i] != BACKWARD:
            continue
        for root in reads:
            _, layer, size, forward = buffers.made[root]
            if forward and root not in saved:
                saved[root] = (layer, size)  # made by the forward pass, read by the backward
    results = buffers.results
    line = buffers.timeline(list(saved) + list(results))
    peak, transient = max(line.peak, default=0), max(line.transient, default=0)
    per_layer: Dict[str, int] = {}
    for _, (layer, size) in sorted(saved.items(), key=lambda item: buffers.made[item[0]][0]):
        per_layer[layer] = per_layer.get(layer, 0) + size
    kept = Activations(
        tuple(per_layer.items()), peak, transient, sum(buffers.made[root][2] for root in results)
    )
    if standing is None:
        return kept
    stood = None
    if not saved and BACKWARD not in buffers.phases:  # an inference program
        found = buffers.standing(line, results, standing)
        stood = None if found is None else dataclasses.replace(kept, peak=found[0], transient=found[1])
    return kept, stood


class Buffers:
    """The buffers a body's live ops make, in order: a result of an op is a
    new buffer, except a view's (a reshape: its input's buffer), an update
    in place's (its first input's), a value read from memory (a weight, an
    input: an argument, not an activation), a part of a buffer that is then
    updated in place (a cache's slice), and the parts of one buffer, updated,
    joined again (a cache stacked again: the same buffer, as its traffic
    counts it). An elementwise op writes into the buffer of an input it reads
    last, when its result fits there, as TensorFlow's kernels (forwarding an
    input) and XLA's buffer assignment both do.

    ``made``: value -> (index of the op, layer, bytes, made by the forward
    pass); ``home``: value -> the buffer it lives in (itself, or the input
    an elementwise op wrote it into); ``reads``: per op, the values it reads;
    ``starts`` and ``ends``: per op, the buffers made there and last read
    there (the program's results stay to the end); ``inner``: per op, the
    largest live set of the bodies it calls."""

    def __init__(self, program, body, top: bool = False, depth: int = 0, nodes: Optional[Sequence] = None):
        nodes = [node for node, _ in live(program, body)] if nodes is None else nodes
        self.made: Dict[Hashable, Tuple[int, str, int, bool]] = {}
        self.reads: List[List[Hashable]] = []
        self.phases: List[str] = []
        self.layers: List[str] = []  # per op, the layer that made it (top body only)
        self.inner: List[int] = [0] * len(nodes)
        alias, last, writes = self._record(program, nodes, top, depth)
        self.results = {r for r in (alias.get(k, k) for k in program.results(body)) if r in self.made}
        self.home = self._homes(writes, last)
        self.starts, self.ends = self._lifetimes(len(nodes), last)

    def _record(self, program, nodes, top: bool, depth: int):
        """One pass over the ops: the buffers each makes (``made``), the
        values each reads, the peaks of the bodies each calls; returns
        ``(alias, last, writes)``: the buffer each value in place lives in,
        the last op reading each value, and the elementwise ops that may
        write into an input."""
        operands = [program.operands(node) for node in nodes]
        types = [program.op_type(node) for node in nodes]
        targets = _update_targets(program, operands, types)
        alias: Dict[Hashable, Hashable] = {}
        updated: set = set()  # values updated in place, and joined again from such
        writes = []  # (op index, result, values read) of elementwise ops: they may write in place
        last: Dict[Hashable, int] = {}
        for i, (node, (ins, outs), op_type) in enumerate(zip(nodes, operands, types)):
            layer, phase = program.owner(node, None) if top else ("", "")
            self.phases.append(phase)
            self.layers.append(layer)
            roots = [alias.get(key, key) for key, _ in ins if key is not None]
            reads = [root for root in dict.fromkeys(roots) if root in self.made]
            self.reads.append(reads)
            for root in reads:
                last[root] = i
            if op_type in program.loads and op_type not in program.parts:
                continue  # read from memory: an argument
            if _in_place(program, op_type, ins, outs, roots, targets, updated):
                first = roots[0]
                alias.update((key, first) for key, _ in outs if key is not None)
                if op_type in program.updates or op_type in program.stacks or ins[0][0] in updated:
                    updated.update(key for key, _ in outs if key is not None)
                continue
            for key, size in outs:
                if key is not None:
                    self.made[key] = (i, layer, size, phase != BACKWARD)
            if op_type in program.elementwise and len(outs) == 1 and outs[0][0] is not None:
                writes.append((i, outs[0][0], reads))
            called = program.called(node, (layer, phase), [True] * len(outs))
            if called is not None and not isinstance(called, str) and depth < 16:
                self.inner[i] = max(
                    (Buffers(program, b, depth=depth + 1).peak() for _, b in called.bodies), default=0
                )
        return alias, last, writes

    def _homes(self, writes, last) -> Dict[Hashable, Hashable]:
        """The input buffer each elementwise result is written into: an input
        read there for the last time, not a result, and large enough."""
        home: Dict[Hashable, Hashable] = {}
        for i, result, reads in writes:  # an input read here for the last time is its buffer's only value
            for value in reads:
                buffer = home.get(value, value)
                if (
                    last.get(value) == i
                    and value not in self.results
                    and self.made[result][2] <= self.made[buffer][2]
                ):
                    home[result] = buffer
                    break
        return home

    def _lifetimes(self, end: int, last) -> Tuple[List[List[Hashable]], List[List[Hashable]]]:
        """``(starts, ends)``: per op, the buffers made there and last read
        there. A buffer is live from the op that makes it to the last op that
        reads a value in it; the program's results stay to the end."""
        ending: Dict[Hashable, int] = {}
        for value, (i, _, _, _) in self.made.items():
            home = self.home.get(value, value)
            finish = end if value in self.results else max(last.get(value, i), i)
            ending[home] = max(ending.get(home, -1), finish)
        starts: List[List[Hashable]] = [[] for _ in range(end)]
        ends: List[List[Hashable]] = [[] for _ in range(end)]
        for home, finish in ending.items():
            starts[self.made[home][0]].append(home)
            if finish < end:
                ends[finish].append(home)
        return starts, ends

    def sweep(self, held) -> Tuple[int, int]:
        """``(peak, transient)``: the largest total of buffers live at once,
        bodies called included, and the largest total of those that hold
        none of the values ``held``."""
        line = self.timeline(held)
        return max(line.peak, default=0), max(line.transient, default=0)

    def timeline(self, held) -> "_Timeline":
        """Per op: the bytes live before it (and of them, in buffers
        ``held``), at it (bodies it calls included; of buffers not held),
        and after it."""
        held = {self.home.get(v, v) for v in held}
        line = _Timeline([], [], [], [], [], [])
        total = kept = 0  # live bytes; of them, in buffers held
        for i, (starting, ending) in enumerate(zip(self.starts, self.ends)):
            line.before.append(total)
            line.before_held.append(kept)
            for home in starting:
                total += self.made[home][2]
                kept += self.made[home][2] if home in held else 0
            line.peak.append(total + self.inner[i])
            line.transient.append(total - kept + self.inner[i])
            for home in ending:
                total -= self.made[home][2]
                kept -= self.made[home][2] if home in held else 0
            line.after.append(total)
            line.after_held.append(kept)
        return line

    def standing(self, line: "_Timeline", held, standing: Standing) -> Optional[Tuple[int, int]]:
        """``(peak, transient)`` of the program with each call standing in
        for a like call (``standing``) run as that call, from the program's
        :meth:`timeline` (``line``, of buffers ``held``): outside the calls
        the program is the same, and inside each it holds what it held when
        the call began plus what the like call adds to what it held when it
        began. Exact where the like call and each call standing in are each
        one run of ops of their own (their windows) and each window leaves
        as much more (or less) live as the like call's, in buffers ``held``
        and not; None where they are not, or where a buffer made in a window
        is one ``held``."""
        ops_of: Dict[str, List[int]] = {}  # layer -> its ops, in order
        for i, layer in enumerate(self.layers):
            ops_of.setdefault(layer, []).append(i)
        windows: set = set()  # the ops of every like call and call standing in
        inside: set = set()  # the ops of the calls standing in
        peaks, transients = [], []
        for like, stand_ins in standing.chains:
            window = _window(sorted(i for layer in like for i in ops_of.get(layer, ())))
            if window is None:
                return None
            first, last = window
            windows.update(range(first, last + 1))
            start, start_held = line.before[first], line.before_held[first]
            adds = max(line.peak[first : last + 1]) - start
            adds_transient = max(line.transient[first : last + 1]) - (start - start_held)
            leaves = (line.after[last] - start, line.after_held[last] - start_held)
            for path in stand_ins:
                found = _window(ops_of.get(path, []))
                if found is None:
                    return None
                begin, end = found
                if (
                    line.after[end] - line.before[begin],
                    line.after_held[end] - line.before_held[begin],
                ) != leaves:
                    return None
                inside.update(range(begin, end + 1))
                peaks.append(line.before[begin] + adds)
                transients.append(line.before[begin] - line.before_held[begin] + adds_transient)
        windows |= inside
        held_homes = {self.home.get(v, v) for v in held}
        if any(self.home.get(v, v) in held_homes for v, (i, _, _, _) in self.made.items() if i in windows):
            return None  # a result made by a call: where it stands decides it
        outside = [i for i in range(len(line.peak)) if i not in inside]
        return (
            max([line.peak[i] for i in outside] + peaks, default=0),
            max([line.transient[i] for i in outside] + transients, default=0),
        )

    def peak(self) -> int:
        """The largest total of buffers live at once, less the body's results
        (a called body's: its caller holds them from the op's start), bodies
        it calls included."""
        return self.sweep(self.results)[1]


@dataclasses.dataclass
class _Timeline:
    before: List[int]
    before_held: List[int]
    peak: List[int]
    transient: List[int]
    after: List[int]
    after_held: List[int]


def _window(found: List[int]) -> Optional[Tuple[int, int]]:
    """``(first, last)`` of a call's ops (their indices, in order), where
    they are one run of ops; None where there are none, or others among them."""
    if not found or found[-1] - found[0] + 1 != len(found):
        return None
    return found[0], found[-1]


def _in_place(program, op_type: str, ins, outs, roots, targets, updated) -> bool:
    """Whether an op's results live in its first input's buffer: a view, an
    update in place, a part of a buffer that is then updated in place (a
    cache's slice), or the updated parts of one buffer joined again."""
    if not ins or ins[0][0] is None:
        return False
    keys = [key for key, _ in ins if key is not None]
    return (
        op_type in program.views
        or op_type in program.updates
        or (op_type in program.parts and any(key in targets for key, _ in outs))
        or (op_type in program.stacks and all(k in updated for k in keys) and len(set(roots)) == 1)
    )


def _update_targets(program, operands, types) -> set:
    """The values an update in place writes into, and the parts and views
    they are parts of: a cache's slices."""
    targets = set()
    for (ins, _), op_type in zip(operands, types):
        if op_type in program.updates and ins and ins[0][0] is not None:
            targets.add(ins[0][0])
    for (ins, outs), op_type in zip(reversed(operands), reversed(types)):
        if (op_type in program.parts or op_type in program.views) and ins and ins[0][0] is not None:
            if any(key in targets for key, _ in outs):
                targets.add(ins[0][0])
    return targets


__all__ = ["Activations", "Buffers", "Standing", "activations", "live"]
