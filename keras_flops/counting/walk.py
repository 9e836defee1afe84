"""The walk: price every op that runs, entering the functions it calls.

The walk counts only what runs: it starts from the function's outputs and
control outputs and goes back through data and control inputs, so ops that
feed nothing (the cell step Keras's RNN traces outside its loop to learn
shapes) are pruned. It enters functions: a While body counts times its trip
count, an If or Case counts its costlier branch, a PartitionedCall counts its
body. tf.profiler's walk (``prune_and_enter=False``) instead takes every op
of the top graph and enters nothing.
"""

from __future__ import annotations

from typing import List

from keras_flops import graphs
from keras_flops.counting.loops import trip_count
from keras_flops.counting.traffic import op_bytes
from keras_flops.formulas import Chain, Cost
from keras_flops.records import OpCount, UncountedOp


class Walk:
    """Counts a trace's ops into ``counted``, ``uncounted`` and ``notes``."""

    def __init__(self, trace, chain: Chain, prune_and_enter: bool = True):
        self.trace = trace
        self.chain = chain
        self.prune_and_enter = prune_and_enter
        self.counted: List[OpCount] = []
        self.uncounted: List[UncountedOp] = []
        self.notes: List[str] = []

    def graph(self, graph, repeat: int = 1) -> None:
        """Count ``graph``'s ops ``repeat`` times."""
        ops = live_ops(graph) if self.prune_and_enter else graph.get_operations()
        for op in ops:
            layer, phase = self.trace.owner(op)
            if self.prune_and_enter and op.type in graphs.FUNCTION_OPS:
                self._function_op(op, repeat, layer)
                continue
            priced = self.chain.price(op)
            if isinstance(priced, str):
                self.uncounted.append(UncountedOp(op.name, op.type, layer, priced))
                continue
            moved = op_bytes(op)
            if priced is None and moved:  # no arithmetic, but memory traffic: a copy
                priced = (Cost(0, 0, "moves data"), "zero")
            if priced is not None:
                cost, source = priced
                self.counted.append(
                    OpCount(op.name, op.type, layer, cost.flops * repeat, cost.macs * repeat,
                            source, cost.text, repeat, phase, moved * repeat)
                )

    def _function_op(self, op, repeat: int, layer: str) -> None:
        called = graphs.called_graphs(op)
        if called is None:
            self.uncounted.append(UncountedOp(op.name, op.type, layer, "a called function's graph is not available"))
        elif op.type in graphs.CALLS:
            self.graph(called[0][1], repeat)
        elif op.type in graphs.LOOPS:
            self._loop(op, repeat, layer, dict(called))
        else:
            self._branches(op, repeat, layer, called)

    def _loop(self, op, repeat: int, layer: str, called: dict) -> None:
        body, cond = called["body"], called["cond"]
        trips, exact = trip_count(op, cond, body)
        if trips is None:
            self.uncounted.append(UncountedOp(
                op.name, op.type, layer,
                "the loop's trip count is not fixed by the graph (its condition is "
                "not a counter against a constant limit), so its body cannot be counted",
            ))
            return
        if not exact:
            self.notes.append(
                f"{op.type} {op.name} (layer {layer!r}): counted {trips} iterations, an "
                "upper bound; the loop condition may end it sooner."
            )
        self.graph(body, repeat * trips)
        self.graph(cond, repeat * (trips + 1))  # the test runs once more

    def _branches(self, op, repeat: int, layer: str, called: list) -> None:
        """If / Case: count the costlier branch, and say so."""
        costs = []
        for label, graph in called:
            sub = Walk(self.trace, self.chain, self.prune_and_enter)
            sub.graph(graph, repeat)
            costs.append((sum(c.flops for c in sub.counted), label, sub))
        flops, label, best = max(costs, key=lambda c: c[0])
        self.counted += best.counted
        self.uncounted += best.uncounted
        self.notes += best.notes
        others = ", ".join(f"{lab} {f:,}" for f, lab, _ in costs if lab != label)
        self.notes.append(
            f"{op.type} {op.name} (layer {layer!r}): counted its costlier branch, "
            f"{label} with {flops:,} FLOPs (others: {others})."
        )


def live_ops(graph) -> list:
    """Ops that the graph's outputs or control outputs depend on, in graph order."""
    stack = [t.op for t in graph.outputs] + list(graph.control_outputs)
    live = set()
    while stack:
        op = stack.pop()
        if op.name in live:
            continue
        live.add(op.name)
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return [op for op in graph.get_operations() if op.name in live]
