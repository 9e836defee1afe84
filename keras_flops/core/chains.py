"""Programs with fewer calls of a chain, and the program of all of them.

A chain is a run of like calls, each reading the one before's output (a
transformer's decoder blocks; :meth:`keras_flops.core.reuse.LayerTraces.chains`).
Where the whole program must be traced (a training step, a generation), it
is traced twice instead, the chain's later calls passed through
(``LayerRecorder``'s ``passthrough``: they run nothing and return their
arguments), once with one more of the chain's calls than the other. A
program is affine in the number of a chain's middle calls, so the program of
all of them is the larger program plus the difference once per call left
out of it: the added call's records under each left-out call's own path
(its sublayers matched by position in the layer tree), and the rest of the
difference (what a program makes outside the calls for each of them).

- keras_flops' own counts (:func:`count_by_chains`): the chain's first two
  calls and its last, and its first and its last; a call's records do not
  depend on its neighbours there. Where one program suffices (nothing is
  made outside the calls for each, or what a program holds at once is read
  as run where each call stands), that program has the chain's first call
  and its last where that is exact, else its first two and its last.
- XLA's partitioned programs (:func:`left_out`, used by
  :mod:`keras_flops.backends.jax.partition`): the first three and the last
  (P4), and the first two and the last (P3), since XLA hoists work of every
  block into the first's name.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Callable, Dict, List, Sequence, Tuple

from keras_flops.core.activations import Activations, Standing
from keras_flops.core.layers import layer_tree
from keras_flops.errors import reason

LONG = 5  # the calls a chain needs for P4 to leave one out


def long_chains(chains: Sequence[Tuple[str, ...]]) -> List[Tuple[str, ...]]:
    """The chains XLA partitions with fewer calls (:func:`left_out`)."""
    return [chain for chain in chains if len(chain) >= LONG]


def to_shorten(chains: Sequence[Tuple[str, ...]]) -> List[Tuple[str, ...]]:
    """The chains :func:`count_by_chains` traces with fewer calls: four or more."""
    return [chain for chain in chains if len(chain) >= 4]


def left_out(chains: Sequence[Tuple[str, ...]]) -> Dict[str, str]:
    """P4's passed-through calls, each to the like call it returns as (the chain's second)."""
    return {path: chain[1] for chain in long_chains(chains) for path in chain[3:-1]}


def renaming(layer, path: str, other, other_path: str) -> Dict[str, str]:
    """Each path of ``layer``'s tree (``layer`` at ``path`` and its sublayers)
    to the path of the sublayer at the same place in ``other``'s tree."""
    mine, theirs = layer_tree(layer), layer_tree(other)
    renamed = {path: other_path}
    renamed.update((f"{path}/{a}", f"{other_path}/{b}") for (a, _), (b, _) in zip(mine, theirs))
    return renamed


def difference(more, fewer, inside: set, key: Callable, fields: Tuple[str, ...]):
    """What ``more`` (records of a program with one more middle call) has
    beyond ``fewer``, outside that call's own paths (``inside``): one record
    per ``key`` with the differences of ``fields`` (of ``repeat`` where there
    are none: a collective's count); None where one is negative."""
    totals: Dict[tuple, list] = {}
    for sign, records in ((1, more), (-1, fewer)):
        for record in records:
            if record.layer in inside:
                continue
            found = totals.setdefault(key(record), [record, [0] * max(len(fields), 1)])
            values = [getattr(record, f) for f in fields] if fields else [record.repeat]
            found[1] = [t + sign * v for t, v in zip(found[1], values)]
    out = []
    for record, values in totals.values():
        if any(v < 0 for v in values):
            return None
        if any(values):
            out.append(dataclasses.replace(record, **dict(zip(fields or ("repeat",), values))))
    return out


def times(op, n: int, chain):
    """``op`` (what one more middle call adds) for ``n`` more middle calls."""
    return dataclasses.replace(
        op,
        node=f"({n} more calls of {chain[0]!r} ... {chain[-1]!r})",
        flops=op.flops * n,
        macs=op.macs * n,
        bytes=op.bytes * n,
        min_bytes=op.min_bytes * n,
        repeat=n,
        formula=f"{n} x what one more call adds here",
    )


def op_key(op):
    return (op.layer, op.op_type, op.phase, op.source, op.mac_dtype, op.recompute)


OP_FIELDS = ("flops", "macs", "bytes", "min_bytes")


def count_by_chains(
    model,
    chains,
    trace: Callable,
    count: Callable,
    one_program: bool = False,
    read_as_run: bool = False,
    keep_last: bool = True,
):
    """``(trace, counted)`` of the whole program from programs with fewer
    calls of each chain of four or more calls: with its first two and its last
    (the others passed through), and with its first and its last; each call
    left out is the second's records under its own path, and the rest of the
    difference is counted once per call left out. (A call's records do not
    depend on its neighbours here, as XLA's hoisting makes a partitioned
    program's: :func:`left_out` keeps three calls for that.) ``trace(passthrough)``
    traces one program, ``count(t, standing)`` counts it (``standing``: a
    :class:`~keras_flops.core.activations.Standing`, or None). A string (why)
    where that cannot be exact: a call cannot stand in for another (the trace
    fails: ``NoStandIn``, or another error), or a difference of the ops is negative.

    With ``one_program`` (the caller reads no activations held at once), a
    closed chain (:class:`~keras_flops.core.reuse.Chain`) needs one program:
    nothing outside its calls is made for each of them (no cotangents meet
    there, and every backend puts each backward op in the layer of the
    forward ops it differentiates), so the rest of the difference is none.
    Where every chain is closed, that program has each chain's first call
    and its last, where the first's ops are the last's (:func:`_first_and_last`);
    else the first program above.

    With ``read_as_run`` (an inference program whose activations held at
    once are read: a generation's), one program with each chain's first call
    and its last, the others standing in for the first and read as run where
    they stand; where that cannot be read as run, the program with its first
    two and its last (the others standing in for the second)
    (:class:`~keras_flops.core.activations.Standing`): nothing outside the
    calls differs in an inference program, and what it holds at once is the
    largest of its ops' live sets, which is not affine in the calls left out.
    Without ``keep_last`` (a program that returns no call's output, nor
    writes what it returns into one: a decode step, which returns the next
    token and the cache), its last call stands in for the first too."""
    try:
        long = to_shorten(chains)
        if read_as_run:
            found = _read_as_run(model, long, trace, count, 0, last=not keep_last)
            if isinstance(found, str):
                found = _read_as_run(model, long, trace, count, 1, last=False)
            return found
        if one_program and all(getattr(chain, "closed", False) for chain in long):
            found = _first_and_last(model, long, trace, count)
            if found is not None:
                return found
        return _count_by_chains(model, long, trace, count, one_program)
    except Exception as err:  # a call that cannot stand in for another: the caller traces every call
        return reason(err).rstrip(".")


def _read_as_run(model, long, trace: Callable, count: Callable, like: int, last: bool):
    """The program with each chain's calls up to its call ``like`` (and its
    last, unless ``last``), the others passed through, standing in for that
    call and read as run where they stand."""
    layers = dict(layer_tree(model))
    end = None if last else -1
    left = {path: chain[like] for chain in long for path in chain[like + 1 : end]}
    more = trace(left)
    if getattr(more, "loose", ()):
        return f"{more.loose[0]!r}, passed through, is given a tensor of its own that it does not return"
    counted = count(
        more, Standing(tuple((frozenset(_paths(layers, c[like])), tuple(c[like + 1 : end])) for c in long))
    )
    if counted.stood is None:
        return (
            "a call passed through cannot be read as run where it stands, for what the program holds at once"
        )
    counted = _without(dataclasses.replace(counted, activations=counted.stood), left, layers)
    note = (
        f" One program sufficed: each call passed through holds what the {('first', 'second')[like]} holds,"
        " read where it stands (an inference program; each call a run of ops of its own, leaving as"
        " much live)."
    )
    return _filled(more, counted, long, layers, {}, {}, note, like, last)


def _first_and_last(model, long, trace: Callable, count: Callable):
    """The program with each (closed) chain's first call and its last, the
    others passed through, standing in for the first, whose records each
    gets; where the first's ops are its last's, else None (the caller
    traces the second too).

    A call's ops differ from its like neighbours' only by what comes in:
    whether its input takes a gradient (any weight trained before it), as
    the first's may not; what it gives out (its output saved for the
    backward pass, counted as its own) only by what reads its output, the
    next call alone for every call but the last. So a call between has the
    first's saved activations, and where the first's ops are the last's,
    the first's ops too."""
    layers = dict(layer_tree(model))
    left = {path: chain[0] for chain in long for path in chain[1:-1]}
    more = trace(left)
    counted = _without(count(more, None), left, layers)
    if not all(_alike(more, counted, layers, chain[0], chain[-1]) for chain in long):
        return None
    note = (
        " One program sufficed for "
        + ", ".join(f"{c[0]!r} ... {c[-1]!r}" for c in long)
        + ": its calls read no other floating value and pass their output to the next alone, and its"
        " first call's records are its last's (the calls between stand in for the first)."
    )
    return _filled(more, counted, long, layers, {}, {}, note, like=0, last=False)


def _alike(more, counted, layers: dict, first: str, last: str) -> bool:
    """Whether the call at ``first`` has the ops of the call at ``last`` (its
    layers' rows, ops and uncounted ops, each under the other's paths)."""
    renamed = renaming(layers[first], first, layers[last], last)
    theirs = set(renamed.values())

    def records(items, path_of, as_key):
        mine = [as_key(item, renamed[path_of(item)]) for item in items if path_of(item) in renamed]
        other = [as_key(item, path_of(item)) for item in items if path_of(item) in theirs]
        return collections.Counter(mine) == collections.Counter(other)

    return (
        records(
            more.layers,
            lambda r: r.path,
            lambda r, p: (p, r.class_name, str(r.output_shape), r.params, r.calls),
        )
        and records(
            counted.ops,
            lambda op: op.layer,
            lambda op, p: (
                (p, op.op_type, op.phase, op.source, op.mac_dtype, op.recompute, op.repeat, op.formula)
                + tuple(getattr(op, f) for f in OP_FIELDS)
            ),
        )
        and records(counted.uncounted, lambda u: u.layer, lambda u, p: (p, u.op_type, u.reason))
    )


def _count_by_chains(model, long, trace: Callable, count: Callable, one_program: bool):
    left = {path: chain[1] for chain in long for path in chain[2:-1]}
    layers = dict(layer_tree(model))
    more = trace(left)
    counted = _without(count(more, None), left, layers)
    alone = [chain for chain in long if one_program and getattr(chain, "closed", False)]
    rests, deltas = {}, {}  # per chain: what one more middle call adds outside it, and to the memory
    for chain in long:
        if chain in alone:
            continue
        fewer_left = {**left, **{path: chain[0] for path in chain[1:-1]}}
        fewer = _without(count(trace(fewer_left), None), fewer_left, layers)
        rests[chain] = difference(counted.ops, fewer.ops, _paths(layers, chain[1]), op_key, OP_FIELDS)
        if rests[chain] is None:
            return (
                f"a program with fewer calls of the chain {chain[0]!r} ... {chain[-1]!r} counted more "
                "of something than one with more"
            )
        deltas[chain] = _memory(counted.activations, fewer.activations)
    note = ""
    if alone:
        note = (
            " One program sufficed for "
            + ", ".join(f"{c[0]!r} ... {c[-1]!r}" for c in alone)
            + ": its calls read no other floating value and pass their output to the next alone."
        )
    return _filled(more, counted, long, layers, rests, deltas, note)


def _filled(
    more, counted, long, layers: dict, rests: dict, deltas: dict, note: str, like: int = 1, last: bool = False
):
    """``(trace, counted)`` of the whole program from the program with more
    (``more``, ``counted``): each call of a chain after its call ``like``
    (its first or second) but its last (its last too, with ``last``), passed
    through, gets that call's records under its own path; per
    chain, ``rests`` (what one more middle call adds outside it) and
    ``deltas`` (to the peak, transient and results) once per call left out."""
    ops, uncounted, rows = list(counted.ops), list(counted.uncounted), list(more.layers)
    saved = list(counted.activations.saved)  # (layer, bytes) in the order the program makes them
    acts = counted.activations
    peak, transient, results = acts.peak, acts.transient, acts.results
    for chain in long:
        out = chain[like + 1 : None if last else -1]  # the calls left out
        n = len(out)
        like_paths = _paths(layers, chain[like])
        at = max((i for i, row in enumerate(rows) if row.path in like_paths), default=len(rows) - 1)
        kept = max((i for i, (layer, _) in enumerate(saved) if layer in like_paths), default=len(saved) - 1)
        # the like call's own records, each given to every call left out under that call's paths
        own_rows = [row for row in more.layers if row.path in like_paths]
        own_ops = [op for op in counted.ops if op.layer in like_paths]
        own_uncounted = [u for u in counted.uncounted if u.layer in like_paths]
        own_saved = [(layer, size) for layer, size in counted.activations.saved if layer in like_paths]
        for path in out:
            renamed = renaming(layers[chain[like]], chain[like], layers[path], path)
            copies = [_with(row, path=renamed[row.path]) for row in own_rows]
            rows[at + 1 : at + 1] = copies
            at += len(copies)
            ops += [_with(op, layer=renamed[op.layer]) for op in own_ops]
            uncounted += [_with(u, layer=renamed[u.layer]) for u in own_uncounted]
            mine = [(renamed[layer], size) for layer, size in own_saved]
            saved[kept + 1 : kept + 1] = mine
            kept += len(mine)
        ops += [times(op, n, chain) for op in rests.get(chain, ())]
        dp, dt, dr = deltas.get(chain, (0, 0, 0))
        peak, transient, results = peak + n * dp, transient + n * dt, results + n * dr
    note = (
        "Traced with fewer calls of "
        + ", ".join(f"{c[0]!r} ... {c[-1]!r}" for c in long)
        + ": each call left out is counted as the program's one more call of the chain "
        "(its own records under its own path; reuse=False traces every call)." + note
    )
    counted = dataclasses.replace(
        counted,
        ops=tuple(ops),
        uncounted=tuple(uncounted),
        activations=Activations(tuple(saved), peak, transient, results),
        notes=tuple(counted.notes) + (note,),
    )
    return dataclasses.replace(more, layers=tuple(rows)), counted


def _with(record, **changes):
    """``dataclasses.replace(record, **changes)`` for a plain frozen record
    (no ``__post_init__``, no slots), copied once per call left out (a
    decoder block's hundreds of records, for each block): 0.8 us a copy
    where ``replace`` takes 5 us."""
    new = object.__new__(type(record))
    new.__dict__.update(record.__dict__, **changes)
    return new


def _paths(layers: dict, path: str) -> set:
    """The paths of the call at ``path``: its own and its sublayers'."""
    return set(renaming(layers[path], path, layers[path], path))


def _memory(more: Activations, fewer: Activations) -> Tuple[int, int, int]:
    return more.peak - fewer.peak, more.transient - fewer.transient, more.results - fewer.results


def _without(counted, passed: Dict[str, str], layers: dict):
    """``counted`` less the records of the passed-through calls' stand-ins
    (what they make in place of their outputs, under their own paths)."""
    paths = {p for path in passed for p in renaming(layers[path], path, layers[path], path)}
    if not any(op.layer in paths for op in counted.ops):
        return counted
    return dataclasses.replace(counted, ops=tuple(op for op in counted.ops if op.layer not in paths))
