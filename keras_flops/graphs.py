"""Which TensorFlow graph ops call functions, and the function graphs they call.

Shared by tracing (which attributes the ops inside called functions) and
counting (which enters them).
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from keras_flops import _compat

LOOPS = frozenset({"While", "StatelessWhile"})
BRANCHES = frozenset({"If", "StatelessIf", "Case", "StatelessCase"})
CALLS = frozenset({"PartitionedCall", "StatefulPartitionedCall"})
FUNCTION_OPS = LOOPS | BRANCHES | CALLS


def function_graph(op, attr: str):
    """The FuncGraph of the function an op's attribute names, if it is at hand."""
    return _compat.function_graph(op.graph, op.get_attr(attr).name)


def called_graphs(op) -> Optional[List[Tuple[str, object]]]:
    """``[(label, graph), ...]`` of the functions a function op calls: a
    call's ``f``; a loop's ``body`` and ``cond``; an If's ``then`` and
    ``else``; a Case's ``branch i``. None when one of them is not at hand;
    [] for an op that calls nothing."""
    if op.type in CALLS:
        pairs = [("f", function_graph(op, "f"))]
    elif op.type in LOOPS:
        pairs = [("body", function_graph(op, "body")), ("cond", function_graph(op, "cond"))]
    elif op.type in ("If", "StatelessIf"):
        pairs = [("then", function_graph(op, "then_branch")), ("else", function_graph(op, "else_branch"))]
    elif op.type in BRANCHES:
        pairs = [
            (f"branch {i}", _compat.function_graph(op.graph, a.name))
            for i, a in enumerate(op.get_attr("branches"))
        ]
    else:
        return []
    return None if any(g is None for _, g in pairs) else pairs


def num_ops(graph) -> int:
    """How many ops a graph has, in constant time: positions in
    get_operations() grow by one per op, so a count marks a position."""
    count = getattr(graph, "num_operations", None)
    return count() if callable(count) else len(graph.get_operations())
