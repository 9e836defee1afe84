"""Reuse by layer: each distinct layer call traced and counted once.

A Llama-2-70B is 80 calls of one decoder block. For a model whose layer
graph Keras knows (a functional model, a Sequential with an ``Input``, a
keras_hub backbone), the graph's call nodes are run here one by one, each
traced alone with the backend's ``trace_layer`` on the specs its inputs have.
A call is keyed by its layer's class, its ``get_config()`` (names left out,
canonical JSON), its sublayers' classes and weights' shapes and dtypes, its
dtype policy, the non-tensor arguments of the call, its input specs and which
of its outputs are used. Each key is traced and counted once, and every call
with that key gets the same records under its own layer path: the layer's
own ops go to its path, and each sublayer's to the path that sublayer has in
the model (matched by position in the layer tree, so auto-named sublayers
map too). The cache lives for one count, so the mode (inference), the
counting and the formulas are the same for every key.

Exactness is the rule; where reuse could differ from one trace of the whole
model, :func:`count_by_layer` returns the reason instead of a count, and the
caller traces the whole model and puts the reason in ``report.notes``:

- a model that is not such a graph (a subclassed model with its own
  ``call``: what it runs between layers is Python the graph does not show);
- a layer reached by more than one call (a shared layer, tied embeddings):
  its weights and inputs are read once by the layer across its calls in one
  program, which separate traces would count once per call;
- masks that Keras propagates from layer to layer (a mask is not a spec);
- inputs whose dtype or rank differ from the model's ``Input`` (the model
  casts or reshapes them first);
- a layer that cannot be traced alone.

Each layer's count must be what it gets in one program of the whole model,
so a call is traced knowing what the program would know of its inputs, and
each traced call says what its program does with its arguments and results
(:class:`~keras_flops.core.walk.Counted`'s ``reads``, ``passes``,
``aliases``):

- liveness: a call none of whose outputs a later call reads (as that call's
  program reads its arguments, not merely takes them) or the model returns
  is traced for its row and counts nothing; a call with some outputs unread
  is traced again returning only the others, so the ops for those are
  pruned as in the whole program (XLNet's mask layer);
- a broadcast passed on (an embedding's rows gathered for every position
  from a two-row table): its readers count at most the bytes it is of;
- a pass-through (a Dropout at inference): its readers read one value with
  its input, once per layer.

How a call's inputs arrive is part of its key. Nested functional models (a
backbone inside a task) are entered the same way. A layer whose config
cannot be read is keyed by the plain values it holds and its sublayers'
configs; one holding another kind of value is not shared: each of its calls
is traced on its own, which is exact, and a note names it.
"""

from __future__ import annotations

import dataclasses
import json
import types
from typing import Any, Dict, List, Optional, Tuple, Union

from keras_flops import _compat
from keras_flops.errors import first_line
from keras_flops.core.activations import Activations
from keras_flops.core.dtypes import dtype_name
from keras_flops.core.layers import layer_tree, own_params, steady
from keras_flops.core.memory import spec_bytes
from keras_flops.core.records import OUTSIDE, LayerRow
from keras_flops.core.walk import Counted


@dataclasses.dataclass(frozen=True)
class LayerTraces:
    """What :func:`count_by_layer` traced, as the entry points read a trace:
    the layers called (model paths, first-call order) and the outputs' specs."""

    layers: Tuple[LayerRow, ...]
    notes: Tuple[str, ...] = ()
    outputs: Any = None
    traced: int = 0  # distinct calls traced
    calls: int = 0  # calls of the graphs' nodes, nested graphs' nodes included
    chains: Tuple[Tuple[str, ...], ...] = ()  # see _ByLayer.chains


class Chain(tuple):
    """A chain of like calls (:meth:`_ByLayer.chains`): their model paths, in
    call order. ``closed``: each call reads no floating value but its first
    argument (its others are integer masks, or absent), and each call's
    output but the last's is read by the next call alone. A training step's
    backward pass then adds nothing outside such a chain's calls for each of
    them: no cotangents meet from several readers."""

    closed: bool

    def __new__(cls, paths, closed: bool = False):
        chain = super().__new__(cls, paths)
        chain.closed = closed
        return chain


class Fallback(Exception):
    """Reuse cannot be exact here: the message says why."""


def why_whole(training: bool, counting: str, memory: bool) -> Optional[str]:
    """Why a count traces the whole model rather than each distinct layer
    call once; None where reuse by layer can count it."""
    if training:
        return (
            "a training step's backward pass is traced with the whole model (reuse by layer covers inference)"
        )
    if counting == "tfprof":
        return "counting='tfprof' reads TensorFlow's profiler over the whole graph"
    if memory:
        return "the activations held at once are read from the whole program"
    return None


@steady()  # a layer's tree read once, as in a count
def count_by_layer(
    model, specs, backend, counting: str = "full", formulas=None
) -> Union[Tuple[LayerTraces, Counted], str]:
    """``model``'s inference call on ``specs``, traced and counted by layer:
    ``(trace, counted)``; or, where that cannot be exact, the reason (a
    string) to trace the whole model instead."""
    graph = _compat.layer_graph(model)
    if graph is None:
        return (
            f"{type(model).__name__} {model.name!r} is not a functional model (a subclassed "
            "model runs its own call, which the layer graph does not show)"
        )
    try:
        return _ByLayer(model, graph, backend, counting, formulas).run(specs)
    except Fallback as why:
        return str(why)
    except Exception as err:  # never a crash where the whole trace can count: it says why
        return f"counting by layer failed ({type(err).__name__}: {first_line(err)})"


@steady()  # a layer's tree read once, as in a count
def find_chains(model, specs, backend) -> Tuple[Tuple[str, ...], ...]:
    """:meth:`LayerTraces.chains` of ``model``'s inference call on ``specs``,
    also where reuse by layer cannot count it for a shared layer (a
    CausalLM's tied embedding), which is then in no chain; () where the
    layers cannot be traced one by one."""
    graph = _compat.layer_graph(model)
    if graph is None:
        return ()
    try:
        traces, _ = _ByLayer(model, graph, backend, "full", None, chains_only=True).run(specs)
    except Exception:  # a Fallback, or a layer that cannot be traced alone: no chains
        return ()
    return traces.chains


@steady()  # a layer's tree read once, as in a count
def chains_in_graph(model, backend) -> Tuple[Chain, ...]:
    """The chains of like calls of ``model``'s layer graph, read from the
    graph alone, with nothing traced: runs of calls of one key without their
    specs (layer, config, arguments, sublayers, weights), each taking the one
    output of the call before it as its first positional argument, of that
    argument's symbolic shape and dtype. A program traced with a chain's
    middle calls passed through checks that each is called on the specs its
    like call was (``LayerRecorder``'s stand-ins), so the specs of a call
    that is not traced are known to be those of one that is. () where the
    model is not such a graph."""
    graph = _compat.layer_graph(model)
    if graph is None:
        return ()
    try:
        return _ByLayer(model, graph, backend, "full", None, chains_only=True).chains_in_graph()
    except Exception:  # a Fallback (a mask that flows, a nested model called twice): no chains
        return ()


class _Traced:
    """One distinct call, traced and counted: its sublayers' rows (relative),
    its output shapes, its used outputs' specs, and its counted records."""

    def __init__(self, rows, output_shape, outputs, counted, tree):
        self.rows, self.output_shape, self.outputs, self.counted = rows, output_shape, outputs, counted
        self.tree = tree  # the relative paths of its layer tree, in order


class _Call:
    """A layer (or Keras op) call of the graph: its tensors by global id."""

    def __init__(self, op, arguments, unique, unique_ins, outs):
        self.op, self.arguments, self.unique = op, arguments, unique  # unique: its input KerasTensors
        self.unique_ins, self.outs = unique_ins, outs
        self.used: Tuple[bool, ...] = ()
        self.traced: Optional[_Traced] = None
        self.live = False

    def uses(self, needed: set) -> Tuple[bool, ...]:
        """Which outputs are used, of those ``needed``. Where the graph
        lists one tensor as several outputs (D-FINE's decoder), Keras keeps
        the value of the last: the others are never read."""
        last = {g: i for i, g in enumerate(self.outs)}
        return tuple(g in needed and last[g] == i for i, g in enumerate(self.outs))


class _Nested:
    """The end of a nested functional model's calls: its row comes after them."""

    def __init__(self, op, inputs, ins, outs):
        self.op, self.inputs, self.ins, self.outs = op, inputs, ins, outs


def _returned(used):
    """Which outputs a traced call returns: the used ones; all for a call none of whose is used."""
    return used if any(used) else (True,) * len(used)


class _ByLayer:
    def __init__(self, model, graph, backend, counting, formulas, chains_only: bool = False):
        self.graph, self.backend = graph, backend
        self.counting, self.formulas = counting, formulas
        self.paths = {id(layer): path for path, layer in layer_tree(model)}
        self.cache: Dict[Any, _Traced] = {}
        self.rows: Dict[
            str, List[Any]
        ] = {}  # path -> [class, output shape, params, calls], in first-call order
        self.ops: list = []
        self.uncounted: list = []
        self.notes: List[str] = []
        self.calls = 0
        self.tokens: Dict[int, int] = {}  # tensor -> the tensor it is one value with (a view, a pass-through)
        self.caps: Dict[int, int] = {}  # tensor -> the bytes its readers count at most (a broadcast)
        self.unshared: Dict[str, List[str]] = {}  # why -> the layers traced each on its own
        self.chains_only = chains_only  # a shared layer is then no fallback, and in no chain
        self.shared: set = set()  # ids of the calls' layers reached by more than one call
        self._symbolic = False  # whether _plan keeps each tensor's KerasTensor as its spec (chains_in_graph)
        self._configs: Dict[int, Any] = {}  # id(layer) -> its _config, read once per count
        self._check_graph(graph, set(), set())

    # ------------------------------------------------------------- checks
    def _check_graph(self, graph, seen: set, graphs: set) -> None:
        """Fallback when a layer is reached by two calls, or a mask flows."""
        if id(graph) in graphs:
            raise Fallback(f"the functional model {graph.name!r} is called more than once")
        graphs.add(id(graph))
        for node in _compat.graph_nodes(graph):
            op, _, ins, outs = _compat.node_call(node)
            for tensor in ins + outs:
                if _compat.keras_mask(tensor) is not None:
                    raise Fallback(
                        f"Keras propagates a mask from layer to layer (into {op.name!r}); a layer "
                        "traced alone would not get it"
                    )
            inner = self._nested(op)
            if inner is not None:
                if id(op) in seen:
                    raise Fallback(f"layer {op.name!r} is called more than once")
                seen.add(id(op))
                self._check_graph(inner, seen, graphs)
                continue
            for layer in [op] + [sub for _, sub in layer_tree(op)]:
                if id(layer) in seen and self.chains_only:
                    self.shared.update((id(op), id(layer)))
                elif id(layer) in seen:
                    raise Fallback(
                        f"layer {self.paths.get(id(layer), layer.name)!r} is called more than once "
                        "(a shared layer); one program reads its weights once across its calls"
                    )
                seen.add(id(layer))

    @staticmethod
    def _nested(op):
        """The graph of a nested functional model to enter, else None."""
        return _compat.layer_graph(op) if hasattr(op, "layers") else None

    # ---------------------------------------------------------------- run
    def run(self, specs) -> Tuple[LayerTraces, Counted]:
        inputs, outputs = _compat.graph_ends(self.graph)
        self.entries: List[Any] = []
        results = self._results = self._plan(self.graph, [id(t) for t in inputs])
        flat = self._check_inputs(self.graph, inputs, self.backend.flatten(specs))
        self._values = dict(zip([id(t) for t in inputs], flat))
        self.model_inputs = {id(t) for t in inputs}
        self._forward(results)
        self._backward(results)
        for entry in self.entries:
            if isinstance(entry, _Nested):
                shapes = [tuple(self._values[g].shape) if g in self._values else None for g in entry.outs]
                self._row(
                    self.paths[id(entry.op)],
                    type(entry.op).__name__,
                    shapes[0] if len(shapes) == 1 else shapes,
                    own_params(entry.op),
                )
            elif entry.traced is not None:
                self.calls += 1
                self._record(entry.op, entry.traced, entry.live)
        for why, paths in self.unshared.items():
            names = ", ".join(repr(p) for p in dict.fromkeys(paths))
            self.notes.append(f"Traced each call on its own, not shared with calls like it ({why}): {names}.")
        layers = tuple(LayerRow(path, *fields) for path, fields in self.rows.items())
        out_specs = [self._values[g] for g in results]
        traces = LayerTraces(
            layers, outputs=out_specs, traced=len(self.cache), calls=self.calls, chains=self.chains()
        )
        return traces, Counted(
            tuple(self.ops), tuple(self.uncounted), tuple(dict.fromkeys(self.notes)), Activations()
        )

    def chains(self) -> Tuple[Chain, ...]:
        """Runs of two or more calls, one after the other in the graph, that
        share one trace (the same key: layer, config, weights' shapes,
        inputs' specs), each taking the one output of the call before it as
        its first positional argument, of the same spec: a transformer's
        decoder blocks. Their model paths, in call order. What XLA makes of
        one middle call of such a run, it makes of every middle call."""

        def traced(entry):
            if not isinstance(entry, _Call) or entry.traced is None or not entry.live:
                return None
            return None if id(entry.op) in self.shared else entry.traced

        return self._runs(traced)

    def _runs(self, key_of) -> Tuple[Chain, ...]:
        """Runs of two or more calls of one key (``key_of(entry)``; None for
        an entry in no run), each following the one before (:meth:`_follows`)."""
        runs: List[List[_Call]] = []
        last = last_key = None
        for entry in self.entries:
            key = key_of(entry)
            if key is None:
                last = None
                continue
            if last is not None and key == last_key and self._follows(entry, last):
                runs[-1].append(entry)
            else:
                runs.append([entry])
            last, last_key = entry, key
        readers = self._readers()
        return tuple(
            Chain((self.paths[id(e.op)] for e in run), self._closed(run, readers))
            for run in runs
            if len(run) > 1
        )

    def _closed(self, run: List["_Call"], readers: Dict[int, int]) -> bool:
        """:attr:`Chain.closed` of a run of calls."""
        for entry in run:
            if any(_floating(self._values.get(g)) for g in entry.unique_ins[1:]):
                return False
        return all(readers.get(entry.outs[0], 0) == 1 for entry in run[:-1])

    def chains_in_graph(self) -> Tuple[Chain, ...]:
        """:func:`chains_in_graph`."""
        self.entries, self._values, self._symbolic = [], {}, True
        inputs, _ = _compat.graph_ends(self.graph)
        self._results = self._plan(self.graph, [id(t) for t in inputs])

        def key(entry):
            if not isinstance(entry, _Call) or id(entry.op) in self.shared:
                return None
            return self._key(entry.op, entry.arguments, entry.unique, [], ())[0]

        return self._runs(key)

    def _readers(self) -> Dict[int, int]:
        """How many calls read each tensor (the model's outputs once more)."""
        readers: Dict[int, int] = {g: 1 for g in self._results}
        for entry in self.entries:
            if isinstance(entry, _Call):
                for g in entry.unique_ins:
                    readers[g] = readers.get(g, 0) + 1
        return readers

    def _follows(self, entry: "_Call", before: "_Call") -> bool:
        """Whether ``entry``'s first positional argument is the one output
        of ``before``, with the spec of ``entry``'s own one output."""
        if len(entry.outs) != 1 or len(before.outs) != 1 or id(entry.op) not in self.paths:
            return False
        args, _ = _compat.symbolic_arguments(entry.arguments)
        if not args or not entry.unique or args[0] is not entry.unique[0]:
            return False
        given, made = self._values.get(entry.unique_ins[0]), self._values.get(entry.outs[0])
        return (
            entry.unique_ins[0] == before.outs[0]
            and given is not None
            and made is not None
            and tuple(given.shape) == tuple(made.shape)
            and _dtype(given) == _dtype(made)
        )

    def _forward(self, results: List[int]) -> None:
        """Trace each call on its inputs' specs, returning the outputs later
        calls take (every output, for a call none of whose is taken), and
        note how each output reaches its readers (a cap, a token)."""
        needed = set(results)
        for entry in reversed(self.entries):
            if isinstance(entry, _Call):
                entry.used = entry.uses(needed)
                if any(entry.used):
                    needed.update(entry.unique_ins)
        values = self._values
        for entry in self.entries:
            if isinstance(entry, _Nested):
                self._check_inputs(entry.op, entry.inputs, [values[g] for g in entry.ins])
                continue
            if any(g not in values for g in entry.unique_ins):
                continue  # not computable from the inputs: Keras skips it too
            entry.traced = self._trace(entry, entry.used)
            returned = [g for g, r in zip(entry.outs, _returned(entry.used)) if r]
            values.update(zip(returned, entry.traced.outputs))
            counted = entry.traced.counted
            if counted is None:
                continue
            for g, cap in zip(returned, counted.passes):
                if cap is not None:
                    self.caps[g] = cap  # a broadcast, a constant: its readers count at most this
            for g, alias in zip(returned, counted.aliases):
                if alias is not None:  # its input, or an output before it (or a view): one value
                    source = entry.unique_ins[alias] if alias >= 0 else returned[-1 - alias]
                    self.tokens[g] = self.tokens.get(source, source)
                    if source in self.caps and g not in self.caps:
                        self.caps[g] = self.caps[source]

    def _backward(self, results: List[int]) -> None:
        """Which outputs the calls after each one read, as their programs read
        their arguments (not merely take them); a call returning more is
        traced again, returning only those."""
        needed = set(results)
        for entry in reversed(self.entries):
            if not isinstance(entry, _Call) or entry.traced is None:
                continue
            used = entry.uses(needed)
            if any(used) and used != entry.used:
                entry.used, entry.traced = used, self._trace(entry, used)
            entry.live = any(used)
            if not entry.live:
                continue
            for g, cap in zip([g for g, u in zip(entry.outs, used) if u], entry.traced.counted.passes):
                if cap is not None and self.caps.get(g) != cap:
                    raise Fallback(
                        f"layer {self.paths[id(entry.op)]!r} returns a broadcast of a smaller value, "
                        "and the layers reading it were traced before that was known"
                    )
            needed.update(g for g, reads in zip(entry.unique_ins, entry.traced.counted.reads) if reads)

    def _plan(self, graph, input_ids: List[int]) -> List[int]:
        """Every call of ``graph`` (entering nested graphs) as an entry, its
        tensors by global ids (a nested graph's inputs are its caller's
        tensors); the global ids of the graph's outputs."""
        inputs, outputs = _compat.graph_ends(graph)
        ids = {id(t): g for t, g in zip(inputs, input_ids)}
        for node in _compat.graph_nodes(graph):
            op, arguments, ins, outs = _compat.node_call(node)
            inner = self._nested(op)
            if inner is not None:
                args, kwargs = _compat.symbolic_arguments(arguments)
                if len(args) != 1 or any(v is not None for v in self.backend.flatten(kwargs)):  # mask=None
                    raise Fallback(f"the nested model {op.name!r} is called with more than its inputs")
                given = [ids.get(id(t), id(t)) for t in self.backend.flatten(args[0])]
                inner_inputs, inner_outputs = _compat.graph_ends(inner)
                if len(given) != len(inner_inputs) or len(inner_outputs) != len(outs):
                    raise Fallback(f"the nested model {op.name!r} is called on other inputs than its graph's")
                found = self._plan(inner, given)
                self.entries.append(_Nested(op, inner_inputs, given, found))
                ids.update((id(t), g) for t, g in zip(outs, found))
                continue
            unique = list({id(t): t for t in ins}.values())
            if self._symbolic:
                self._values.update((ids.get(id(t), id(t)), t) for t in unique + list(outs))
            self.entries.append(
                _Call(
                    op,
                    arguments,
                    unique,
                    [ids.get(id(t), id(t)) for t in unique],
                    [ids.get(id(t), id(t)) for t in outs],
                )
            )
        return [ids.get(id(t), id(t)) for t in outputs]

    def _cap(self, g: int) -> Optional[int]:
        """The most bytes a reader of tensor ``g`` counts, as one program of
        the whole model knows it: for a broadcast passed on, what it is of;
        for a value a layer makes, its own size (a part of it larger than
        it, a broadcast, counts at most that); None for a model input, as
        the whole program has it."""
        if g in self.caps:
            return self.caps[g]
        spec = self._values[g]
        if self.tokens.get(g, g) in self.model_inputs or any(d is None for d in spec.shape):
            return None
        return spec_bytes([spec], self.backend.flatten)

    def _check_inputs(self, graph, inputs, flat) -> list:
        """The specs of a graph's inputs; a fallback where the graph would
        first convert them (another dtype or rank than its ``Input``)."""
        if len(flat) != len(inputs):
            raise Fallback(f"{graph.name!r} takes {len(inputs)} inputs, given {len(flat)}")
        for tensor, spec in zip(inputs, flat):
            if len(tuple(spec.shape)) != len(tensor.shape) or _dtype(spec) != _dtype(tensor):
                raise Fallback(
                    f"{graph.name!r} converts its input {tensor.name!r} ({_dtype(spec)}, rank "
                    f"{len(spec.shape)}) to its Input's dtype and rank first"
                )
        return list(flat)

    # -------------------------------------------------------------- trace
    def _trace(self, entry: "_Call", used) -> _Traced:
        op, arguments, unique = entry.op, entry.arguments, entry.unique
        specs = [self._values[g] for g in entry.unique_ins]
        tokens = [self.tokens.get(g, g) for g in entry.unique_ins]
        given = [(tokens.index(t), self._cap(g)) for t, g in zip(tokens, entry.unique_ins)]
        key, why = self._key(op, arguments, unique, specs, used)
        key = key if key is None else key + (tuple(given),)
        if key is None and why is not None:
            self.unshared.setdefault(why, []).append(self.paths.get(id(op), op.name))
        if key is None:
            key = ("unshared", id(op), id(arguments), tuple(used), tuple(given))
        traced = self.cache.get(key)
        if traced is not None:
            return traced
        returned = _returned(used)
        shapes = []
        flatten = self.backend.flatten

        def call(*flat_and_region):
            flat = flat_and_region[:-1]  # the last is the backend's region(): no regions here
            args, kwargs = _compat.fill_in(arguments, {id(t): v for t, v in zip(unique, flat)})
            outputs = _compat.call_in_graph(op, args, kwargs, training=False)
            leaves = flatten(outputs)
            shapes.append([None if getattr(t, "shape", None) is None else tuple(t.shape) for t in leaves])
            return [t for t, r in zip(leaves, returned) if r]

        try:
            trace = self.backend.trace_layer(op, call, specs)
        except Exception as err:
            raise Fallback(
                f"layer {self.paths.get(id(op), op.name)!r} could not be traced alone "
                f"({type(err).__name__}: {first_line(err)})"
            ) from err
        counted = self.backend.count(trace, self.counting, self.formulas, given=given) if any(used) else None
        output_shape = shapes[0][0] if len(shapes[0]) == 1 else shapes[0]
        tree = [path for path, _ in layer_tree(op)]
        traced = self.cache[key] = _Traced(trace.layers, output_shape, flatten(trace.outputs), counted, tree)
        return traced

    def _key(self, op, arguments, unique, specs, used):
        """The key of a call, or (None, why) for a call not to share."""
        if not hasattr(op, "get_config") or not hasattr(op, "weights"):
            return None, None  # a Keras op between layers: counted from its own small trace
        try:
            with _compat.serializing_without_tensorflow():
                config = json.dumps(
                    _without_names(_config(op, self._configs)), sort_keys=True, default=_plain
                )
        except Exception as err:
            return None, f"get_config() fails: {type(err).__name__}"
        positions = {id(t): i for i, t in enumerate(unique)}
        try:
            args = json.dumps(
                _compat.symbolic_arguments(arguments),
                sort_keys=True,
                default=lambda x: _argument(x, positions),
            )
        except Exception as err:
            return None, f"the call's arguments are not JSON: {type(err).__name__}"
        policy = getattr(op, "dtype_policy", None)
        key = (
            f"{type(op).__module__}.{type(op).__qualname__}",
            config,
            args,
            tuple(type(sub).__qualname__ for _, sub in layer_tree(op)),
            tuple((tuple(w.shape), str(w.dtype), bool(w.trainable)) for w in op.weights),
            getattr(policy, "name", str(policy)),
            getattr(op, "quantization_mode", None),
            tuple((tuple(s.shape), _dtype(s)) for s in specs),
            tuple(used),
        )
        return key, None

    # ------------------------------------------------------------- record
    def _record(self, op, traced: _Traced, live: bool) -> None:
        path = self.paths[id(op)]
        tree = layer_tree(op)
        paths = {OUTSIDE: path}  # the key holds the sublayers' classes: the trees match one to one
        paths.update((rel, self.paths[id(sub)]) for rel, (_, sub) in zip(traced.tree, tree))
        for row in traced.rows:
            self._row(
                paths.get(row.path, f"{path}/{row.path}"),
                row.class_name,
                row.output_shape,
                row.params,
                row.calls,
            )
        self._row(
            path, type(op).__name__, traced.output_shape, own_params(op) if hasattr(op, "weights") else 0
        )
        if not live:
            return
        counted = traced.counted
        for record in counted.ops:
            self.ops.append(
                dataclasses.replace(record, layer=paths.get(record.layer, f"{path}/{record.layer}"))
            )
        for record in counted.uncounted:
            self.uncounted.append(
                dataclasses.replace(record, layer=paths.get(record.layer, f"{path}/{record.layer}"))
            )
        for note in counted.notes:  # the walk names layers as "(layer 'path')"
            for rel, full in paths.items():
                note = note.replace(f"(layer {rel!r})", f"(layer {full!r})")
            self.notes.append(note)

    def _row(self, path, class_name, output_shape, params, calls=1) -> None:
        row = self.rows.get(path)
        if row is None:
            self.rows[path] = [class_name, output_shape, params, calls]
        else:
            row[3] += calls


def _dtype(value) -> str:
    return dtype_name(getattr(value, "dtype", None))


def _floating(value) -> bool:
    """Whether a spec is of a floating (or complex) dtype: one a gradient flows through;
    True for an unknown one."""
    name = _dtype(value) if value is not None else ""
    return not name.startswith(("int", "uint", "bool"))


PLAIN = (int, float, str, bool, type(None))

# Keras's record of a layer's use, which changes once it is built or called
# (a chain's calls passed through by a trace are never called), not what it
# computes: no part of a key.
USE = frozenset({"_called", "built", "_build_shapes_dict", "_lock", "_inbound_nodes", "_outbound_nodes"})


def _config(layer, memo: Optional[Dict[int, Any]] = None) -> dict:
    """``layer.get_config()``; where that fails (a keras_hub decoder whose
    get_config reads an attribute it never set), what the layer holds: plain
    values and lists of them, functions by name (an activation), objects
    with a config (an initializer), each sublayer's config; names and paths
    left out. A public value of any other kind fails it: not shared.
    ``memo``: the configs read so far in this count, by layer (a sublayer's
    is read again by each layer above it)."""
    if memo is not None and id(layer) in memo:
        return memo[id(layer)]
    config = _read_config(layer, memo)
    if memo is not None:
        memo[id(layer)] = config
    return config


def _read_config(layer, memo) -> dict:
    try:
        return layer.get_config()
    except Exception:
        if not hasattr(layer, "weights"):
            raise
        held = {}
        for k, v in vars(layer).items():
            if k in USE or "name" in k or "path" in k or hasattr(v, "weights") or hasattr(v, "assign"):
                continue  # names, sublayers (below), variables (their shapes are in the key)
            if isinstance(v, PLAIN) or (
                isinstance(v, (list, tuple)) and all(isinstance(e, PLAIN) for e in v)
            ):
                held[k] = v if isinstance(v, PLAIN) else list(v)
            elif isinstance(v, (types.FunctionType, types.MethodType, types.BuiltinFunctionType)):
                held[k] = f"{getattr(v, '__module__', '')}.{v.__qualname__}"  # an activation
            elif k.startswith("_"):
                continue  # Keras's own bookkeeping
            elif callable(getattr(v, "get_config", None)):
                held[k] = {"class": type(v).__qualname__, "config": v.get_config()}  # an initializer
            else:
                raise  # a value of its own that may change what runs: not shared
        for i, (path, sub) in enumerate(layer_tree(layer)):
            held[f"sublayer {i} at depth {path.count('/')}"] = _config(sub, memo)
        return held


def _without_names(config, policy: bool = False):
    """A config with every "name" left out (names never change what runs),
    but a dtype policy's: its name is what a layer computes in (``policy``:
    ``config`` is a dtype policy's own config)."""
    if isinstance(config, dict):
        inner = str(config.get("class_name", "")).endswith("DTypePolicy")
        return {
            k: _without_names(v, inner and k == "config") for k, v in config.items() if policy or k != "name"
        }
    if isinstance(config, (list, tuple)):
        return [_without_names(v) for v in config]
    return config


def _plain(value):
    """JSON for the values configs hold beside plain ones: numpy scalars and arrays."""
    if hasattr(value, "tolist") and hasattr(value, "dtype"):
        return {"array": value.tolist(), "dtype": str(value.dtype)}
    raise TypeError(f"{type(value).__name__} is not JSON")


def _argument(value, positions):
    """JSON for a call's argument: a KerasTensor by its input position."""
    if id(value) in positions:
        return {"input": positions[id(value)]}
    return _plain(value)
