"""The core walk on a toy backend: a Program over plain tuples, no framework.

What a third backend gets for free, worked out by hand: liveness, calls,
loops (body x trips, condition x (trips + 1)), the costlier branch, one
formula chain (this call's, the user's, the backend's), bytes, uncounted ops.
"""

import dataclasses
from typing import Tuple

import pytest

from keras_flops.core import walk
from keras_flops.core.loops import iterations
from keras_flops.formulas import Cost, OpSpec, Table, register_flops, unregister_flops


@pytest.mark.parametrize("comparison, start, step, end, trips", [
    ("lt", 0, 3, 10, 4),   # 0 3 6 9
    ("le", 0, 3, 9, 4),    # 0 3 6 9
    ("gt", 10, -3, 0, 4),  # 10 7 4 1
    ("ge", 9, -3, 0, 4),   # 9 6 3 0
    ("ne", 0, 2, 10, 5),   # 0 2 4 6 8
    ("lt", 5, 1, 2, 0),    # never enters
    ("ne", 0, 2, 9, None),  # steps over 9: never stops
    ("lt", 0, -1, 5, None),  # steps away from the limit
])
def test_loop_trips(comparison, start, step, end, trips):
    assert iterations(comparison, start, step, end) == trips


@dataclasses.dataclass(frozen=True)
class Op:
    name: str
    type: str
    reads: Tuple[str, ...] = ()
    writes: Tuple[str, ...] = ()
    calls: object = None  # a walk.Called, for ops that run bodies
    size: int = 4  # elements of each operand, 1 byte each


@dataclasses.dataclass(frozen=True)
class Body:
    ops: Tuple[Op, ...]
    results: Tuple[str, ...]


# "mul" costs 1 per element (4), "dot" 2 x 4 x 4 with 16 MACs, "view" is a
# view, "copy" does no arithmetic and moves bytes, "odd" has no formula
TABLE = Table(builtin={"mul": lambda spec: Cost(4, 0, "4 elements"), "dot": lambda spec: Cost(32, 16, "2 x 4 x 4")},
              zero=frozenset({"view", "copy", "load", "slice", "update"}))


class ToyProgram:
    table = TABLE
    views = frozenset({"view"})
    loads = frozenset({"load"})
    parts = frozenset({"slice"})
    updates = {"update": 1}
    stacks = frozenset({"stack"})
    elementwise = frozenset()

    def __init__(self, top, sizes=None):
        self._top = top
        self.sizes = sizes or {}  # bytes of a value, where not its op's size

    def top(self):
        return self._top

    def nodes(self, body):
        return body.ops

    def results(self, body):
        return body.results

    def produces(self, op):
        return op.writes

    def consumes(self, op):
        return op.reads

    def has_effects(self, op):
        return False

    def owner(self, op, caller):
        return (caller[0] if caller else op.name.split("/")[0]), "forward"

    def called(self, op, owner, used):
        return op.calls

    def interface(self, op, body):
        return None

    def name(self, op):
        return op.name

    def op_type(self, op):
        return op.type

    def spec(self, op):
        return OpSpec(op.type, op.name, ((op.size,),) * len(op.reads), ((op.size,),) * len(op.writes))

    def operands(self, op):
        return ([(v, self.sizes.get(v, op.size)) for v in op.reads],
                [(v, self.sizes.get(v, op.size)) for v in op.writes])

    def dtype(self, op):
        return "float32"

    def skip(self, op):
        return False


def count(top, formulas=None, sizes=None):
    return walk.count(ToyProgram(top, sizes), "full", formulas)


def test_liveness_views_copies_and_uncounted_ops():
    top = Body((
        Op("a/mul", "mul", ("x",), ("y",)),
        Op("a/dead", "dot", ("x",), ("unused",)),  # feeds no result: pruned
        Op("a/view", "view", ("y",), ("v",)),  # a view: no op row, no bytes
        Op("b/copy", "copy", ("v",), ("c",)),  # no arithmetic, 8 bytes moved
        Op("b/odd", "odd", ("c",), ("z",)),  # no formula: uncounted, never 0
    ), results=("z",))
    counted = count(top)
    assert [(o.node, o.flops, o.bytes, o.source) for o in counted.ops] == [
        ("a/mul", 4, 8, "keras_flops"), ("b/copy", 0, 8, "zero")]
    assert [(u.node, u.layer, u.reason) for u in counted.uncounted] == [("b/odd", "b", "no formula for op type odd")]


def test_a_loop_counts_its_body_trips_times_and_its_condition_once_more():
    body = Body((Op("step", "dot", ("h",), ("h2",)),), results=("h2",))
    cond = Body((Op("test", "mul", ("i",), ("go",)),), results=("go",))
    loop = walk.Called("loop", (("body", body), ("cond", cond)), trips=3)
    counted = count(Body((Op("rnn/while", "while", ("x",), ("out",), calls=loop),), results=("out",)))
    # the loop's boundary: it reads x (4 bytes) and writes the result (4), once;
    # body: 3 x 32 FLOPs, 3 x 16 MACs; condition: (3 + 1) x 4 FLOPs; all in the loop's layer
    assert [(o.node, o.layer, o.flops, o.macs, o.repeat, o.min_bytes) for o in counted.ops] == [
        ("rnn/while", "rnn", 0, 0, 1, 8), ("step", "rnn", 96, 48, 3, 0), ("test", "rnn", 16, 0, 4, 0)]
    upper = walk.Called("loop", (("body", body), ("cond", cond)), trips=3, exact=False)
    notes = count(Body((Op("rnn/while", "while", ("x",), ("out",), calls=upper),), results=("out",))).notes
    assert notes == ("while rnn/while (layer 'rnn'): counted 3 iterations, an upper bound; the loop "
                     "condition may end it sooner.",)
    unknown = walk.Called("loop", (("body", body), ("cond", cond)), trips=None)
    counted = count(Body((Op("rnn/while", "while", ("x",), ("out",), calls=unknown),), results=("out",)))
    assert [o.node for o in counted.ops] == ["rnn/while"] and "trip count" in counted.uncounted[0].reason


def test_branches_count_the_costlier_one_and_say_so():
    cheap = Body((Op("m", "mul", ("x",), ("y",)),), results=("y",))
    costly = Body((Op("d", "dot", ("x",), ("y",)),), results=("y",))
    branches = walk.Called("branches", (("then", cheap), ("else", costly)))
    counted = count(Body((Op("gate/if", "if", ("x",), ("y",), calls=branches),), results=("y",)))
    assert [(o.node, o.flops) for o in counted.ops] == [("gate/if", 0), ("d", 32)]
    assert counted.notes == ("if gate/if (layer 'gate'): counted its costlier branch, else with 32 FLOPs "
                             "(others: then 4).",)


def test_the_chain_puts_this_calls_formulas_first_then_the_users():
    top = Body((Op("a/mul", "mul", ("x",), ("y",)), Op("a/odd", "odd", ("y",), ("z",))), results=("z",))
    register_flops("odd")(lambda spec: 7 * spec.outputs[0][0])  # 7 per output element: 28
    try:
        counted = count(top, formulas={"mul": lambda spec: Cost(1, 0, "mine")})
    finally:
        unregister_flops("odd")
    assert [(o.node, o.flops, o.source) for o in counted.ops] == [("a/mul", 1, "user"), ("a/odd", 28, "user")]


def test_compulsory_bytes_cross_a_layers_boundary_once():
    top = Body((
        Op("emb/w", "load", (), ("table",)),  # a weight read from memory
        Op("emb/rows", "slice", ("table",), ("rows",)),  # the rows it gathers
        Op("emb/scale", "mul", ("rows",), ("e",)),
        Op("dense/w", "load", (), ("kernel",)),
        Op("dense/dot", "dot", ("e", "kernel"), ("h",)),
        Op("dense/int", "mul", ("h",), ("h2",)),  # made and used inside the layer
        Op("dense/out", "mul", ("h2", "e"), ("y",)),  # e again: read once per layer
        Op("cache/new", "update", ("c", "y"), ("c2",)),  # writes only its update, y
        Op("head/view", "view", ("y",), ("yv",)),
        Op("head/mul", "mul", ("yv",), ("out",)),
    ), results=("out", "c2"))
    sizes = {"table": 400, "rows": 40, "e": 40, "kernel": 16, "h": 40, "h2": 40, "y": 40, "c": 800, "c2": 800,
             "yv": 40, "out": 40}
    ops = {o.node: o.min_bytes for o in count(top, sizes=sizes).ops}
    assert ops["emb/scale"] == 40 + 40  # reads its 40 bytes of rows, not the 400-byte table; writes e
    assert ops["dense/dot"] == 40 + 16  # reads e and its 16-byte kernel
    assert ops["dense/int"] == 0  # inside the layer: no bytes cross
    assert ops["dense/out"] == 40  # writes y, for cache and head (e is read already)
    assert ops["cache/new"] == 800 + 40 + 40  # reads the cache and y, writes only the 40-byte update
    assert ops["head/mul"] == 40 + 40  # reads y through the view, writes the result


class PhasedProgram(ToyProgram):
    """The toy program with a backward pass: an op named "grad/<layer>/..."
    is its layer's backward; "mul" and "relu_grad" are elementwise."""

    elementwise = frozenset({"relu", "mul", "relu_grad"})

    def owner(self, op, caller):
        parts = op.name.split("/")
        return (parts[1], "backward") if parts[0] == "grad" else (parts[0], "forward")


def test_saved_activations_and_live_buffers_by_hand():
    from keras_flops.core.activations import activations

    top = Body((
        Op("d/load", "load", (), ("w",)),  # a weight: read from memory, no activation
        Op("d/dot", "dot", ("x", "w"), ("h",)),  # x: an input of the program, no activation
        Op("r/relu", "relu", ("h",), ("a",)),  # h is read here last: a is written into h's buffer
        Op("r/view", "view", ("a",), ("av",)),  # a view: a's buffer
        Op("e/mul", "mul", ("av", "w"), ("y",)),  # a is read again later: y is a buffer of its own
        Op("grad/e/dot", "dot", ("y", "w"), ("gy",)),  # reads y: e keeps y; a product, so gy is a new buffer
        Op("grad/r/relu_grad", "relu_grad", ("gy", "av"), ("ga",)),  # reads a (through its view): r keeps a
        Op("grad/d/dot", "dot", ("ga", "x"), ("gw",)),
    ), ("gw",))
    found = activations(PhasedProgram(top, {v: 16 for v in "whayg"} | {"av": 16, "gy": 16, "ga": 16, "gw": 16}))
    assert found.saved == (("r", 16), ("e", 16))  # a, made by op 2, and y, by op 4
    # Buffers, 16 B each: h (ops 1-6: h, then a, read last through av by op 6), y (4-5),
    # gy (5-7: gy, then ga, written into it by op 6, read by op 7), gw (7 to the end, a result).
    # Live at each op: 16, 16, 16, h + y = 32, h + y + gy = 48, h + gy = 32, gy + gw = 32.
    assert found.peak == 48
    # less the buffers of saved values (h, y) and results (gw): at most 16 (gy) at once
    assert (found.transient, found.results) == (16, 16)


def test_a_cache_sliced_updated_and_stacked_again_is_one_buffer():
    from keras_flops.core.activations import activations

    top = Body((
        Op("k/mul", "mul", ("x", "x"), ("new",)),  # a new buffer, 4 B
        Op("k/slice0", "slice", ("cache",), ("c0",)),  # a slice to be updated in place: the cache's buffer
        Op("k/slice1", "slice", ("cache",), ("c1",)),
        Op("k/update0", "update", ("c0", "new"), ("u0",)),  # written into c0, the cache
        Op("k/update1", "update", ("c1", "new"), ("u1",)),
        Op("k/stack", "stack", ("u0", "u1"), ("joined",)),  # updated parts of one buffer: the cache again
    ), ("joined",))
    found = activations(PhasedProgram(top, {"cache": 8, "c0": 4, "c1": 4, "u0": 4, "u1": 4, "joined": 8}))
    # the cache is an input of the program: only `new` is a buffer of the program's own
    assert (found.saved, found.peak, found.transient, found.results) == ((), 4, 4, 0)


def test_an_elementwise_op_writes_into_the_input_it_reads_last():
    from keras_flops.core.activations import activations

    top = Body((
        Op("a/mul", "mul", ("x", "x"), ("p",)),  # p: a buffer, 16 B
        Op("b/mul", "mul", ("p", "x"), ("q",)),  # p read here last: q goes into p's buffer
        Op("c/dot", "dot", ("q", "q"), ("r",)),  # a product is never written in place: r is new
        Op("d/mul", "mul", ("r", "x"), ("s",)),  # s is 32 B: it does not fit in r's 16 B, a buffer of its own
    ), ("s",))
    found = activations(PhasedProgram(top, {"p": 16, "q": 16, "r": 16, "s": 32}))
    # live: p (16); p holding q (16); q + r (32); r + s (48)
    assert (found.peak, found.transient, found.results) == (48, 32, 32)


# A chain of like calls a, b, c, d (a decoder's blocks): b's two ops hold 8 B
# of their own (t1) on top of what they are given; c stands in for b (passed
# through: one copy of its hidden state); between b and c the program makes a
# 50 B side value u, freed after c. Sizes in bytes.
CHAIN_SIZES = {"h1": 4, "t1": 8, "h2": 4, "u": 50, "h3": 4, "w": 2, "t2": 8, "h4": 4, "out": 4, "tc": 8, "k": 3}


def chain_program(c_ops):
    return Body((
        Op("a/mul", "mul", ("x",), ("h1",)),
        Op("b/mul", "mul", ("h1",), ("t1",)),
        Op("b/dot", "dot", ("t1",), ("h2",)),
        Op("m/mul", "mul", ("h2",), ("u",)),
        *c_ops,
        Op("m/copy", "copy", ("u",), ("w",)),  # u read here last
        Op("d/mul", "mul", ("h3",), ("t2",)),
        Op("d/dot", "dot", ("t2",), ("h4",)),
        Op("z/mul", "mul", ("h4", "w"), ("out",)),
    ), ("out",))


STAND_IN = (Op("c/copy", "copy", ("h2",), ("h3",)),)  # what c makes, passed through
RUN = (Op("c/mul", "mul", ("h2",), ("tc",)), Op("c/dot", "dot", ("tc",), ("h3",)))  # c run as b runs


def test_a_call_standing_in_is_read_as_its_like_call_run_where_it_stands():
    from keras_flops.core.activations import Standing

    standing = Standing(((frozenset({"b"}), ("c",)),))
    passed = walk.count(ToyProgram(chain_program(STAND_IN), CHAIN_SIZES), memory=standing)
    whole = walk.count(ToyProgram(chain_program(RUN), CHAIN_SIZES), memory=True).activations
    # Live bytes before / at each op of the program with c passed through:
    # a/mul 0/4, b/mul 4/12, b/dot 8/12, m/mul 4/54, c/copy 54/58, m/copy 54/56,
    # d/mul 6/14, d/dot 10/14, z/mul 6/10: its peak 58, at the stand-in.
    assert passed.activations.peak == 58
    # b adds 12 - 4 = 8 B to what it is given and leaves as much live as it found
    # (4 B: h2 for h1), as c's copy does (h3 for h2); c run holds 54 + 8 = 62.
    assert passed.stood.peak == whole.peak == 54 + 8 == 62
    assert passed.stood == whole  # transient (nothing held but out) and results (out's 4 B) too
    assert (whole.transient, whole.results) == (62, 4)


def test_a_call_standing_in_is_not_read_as_run_where_it_leaves_another_amount_live():
    from keras_flops.core.activations import Standing

    standing = Standing(((frozenset({"b"}), ("c",)),))
    keeps = (Op("c/copy", "copy", ("h2",), ("h3", "k")),)  # k: 3 B that z reads at the end (b makes none)
    body = chain_program(keeps)
    body = Body(body.ops[:-1] + (Op("z/mul", "mul", ("h4", "w", "k"), ("out",)),), body.results)
    assert walk.count(ToyProgram(body, CHAIN_SIZES), memory=standing).stood is None
    # nor where b's ops are not one run of its own (an op of m's between its two)
    ops = chain_program(STAND_IN).ops
    split = Body(ops[:2] + (Op("m/mul2", "mul", ("x",), ("xm",)),) + ops[2:-1]
                 + (Op("z/mul", "mul", ("h4", "w", "xm"), ("out",)),), ("out",))  # fmt: skip
    assert walk.count(ToyProgram(split, CHAIN_SIZES | {"xm": 1}), memory=standing).stood is None
    # nor where the call passed through makes no op at all
    none = chain_program((Op("m/view", "view", ("h2",), ("h3",)),))
    assert walk.count(ToyProgram(none, CHAIN_SIZES), memory=standing).stood is None
