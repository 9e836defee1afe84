"""The layers of a model and the recorder that wraps their calls while
tracing; the same on every backend.

A backend's recorder says what a call "marks": the TensorFlow recorder the
range of graph ops the call created, the JAX recorder a name scope whose
token each equation of the jaxpr carries. Every layer is restored
afterwards, also when tracing raises.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Tuple

from keras_flops import _compat
from keras_flops.core.records import LayerRow
from keras_flops.formulas.compute import num_elements


# --------------------------------------------------------------------------
# The layer tree


def children(layer) -> List[Any]:
    """Direct sublayers, and for functional models the Keras ops they apply."""
    kids = _compat.sublayers(layer)
    seen = {id(k) for k in kids}
    for op in _compat.functional_operations(layer):
        if id(op) not in seen and hasattr(op, "call"):
            kids.append(op)
            seen.add(id(op))
    return kids


# While a count runs (:func:`steady`), each layer's tree and own parameters,
# read once: {(what, id(layer)): (layer, value)}; the layer is kept so that
# its id is not taken by another.
_read: Optional[Dict[Tuple[str, int], Tuple[Any, Any]]] = None


@contextlib.contextmanager
def steady():
    """Inside the block, the layers do not change: :func:`layer_tree` and
    :func:`own_params` read each layer once (a count traces several programs
    of one model, each wrapping every layer). Nested blocks share the outer's;
    ``@steady()`` runs a function inside one."""
    global _read
    outer = _read
    if outer is None:
        _read = {}
    try:
        yield
    finally:
        _read = outer


def _once(what: str, layer, read: Callable):
    if _read is None:
        return read(layer)
    found = _read.get((what, id(layer)))
    if found is None:
        found = _read[(what, id(layer))] = (layer, read(layer))
    return found[1]


def layer_tree(model) -> List[Tuple[str, Any]]:
    """Every sublayer of ``model`` with its path, depth first; each layer once."""
    return list(_once("tree", model, _layer_tree)[0])


def _layer_tree(model) -> Tuple[List[Tuple[str, Any]], frozenset]:
    """:func:`layer_tree`'s entries, and the ids of the layers that more than
    one layer holds (a layer shared: called where it is held, under each)."""
    out: List[Tuple[str, Any]] = []
    seen = {id(model)}
    shared = set()
    used_paths = set()

    def visit(parent, prefix):
        for child in children(parent):
            if id(child) in seen:
                shared.add(id(child))
                continue  # shared: keeps its first path
            seen.add(id(child))
            path = prefix + child.name
            n = 2
            while path in used_paths:
                path = f"{prefix}{child.name}#{n}"
                n += 1
            used_paths.add(path)
            out.append((path, child))
            visit(child, path + "/")

    visit(model, "")
    return out, frozenset(shared)


def _within_passed(model, passthrough: Mapping[str, str]) -> set:
    """The paths of the layers that only calls passed through would call:
    below a path of ``passthrough``, with no layer shared on the way down."""
    if not passthrough:
        return set()
    entries, shared = _once("tree", model, _layer_tree)
    clear = {}  # path -> whether no layer from a passed-through call down to it is shared
    out = set()
    for path, layer in entries:  # parents come before their sublayers
        parent = path.rpartition("/")[0]
        if path in passthrough:
            clear[path] = True
        elif parent in clear:
            clear[path] = clear[parent] and id(layer) not in shared
            if clear[path]:
                out.add(path)
    return out


def own_params(layer) -> int:
    """Parameters of the weights a layer holds itself, not through sublayers."""
    return _once("params", layer, _own_params)


def _own_params(layer) -> int:
    weights = getattr(layer, "weights", None) or []
    inner = {id(w) for c in children(layer) for w in (getattr(c, "weights", None) or [])}
    return sum(num_elements(w.shape, "weight") for w in weights if id(w) not in inner)


def passed_over(model, passthrough: Optional[Mapping[str, str]]) -> frozenset:
    """The ids of the variables that only the layers at ``passthrough``'s
    paths (and their sublayers not shared, :func:`_within_passed`) hold: a
    program that passes those calls through reads none of them. A variable
    another layer holds too (tied weights) is not among them; one a layer
    reads without holding it is caught where the program is traced (it is
    then read)."""
    if not passthrough:
        return frozenset()
    within = _within_passed(model, passthrough) | set(passthrough)
    inside: set = set()
    outside = _own_variables(model)
    for path, layer in layer_tree(model):
        (inside if path in within else outside).update(_own_variables(layer))
    return frozenset(inside - outside)


def _own_variables(layer) -> set:
    """The ids of the variables a layer holds itself, not through sublayers
    (its weights, a seed generator's state)."""
    return set(_once("variables", layer, _read_own_variables))


def _read_own_variables(layer) -> frozenset:
    held = getattr(layer, "variables", None) or []
    inner = {id(v) for c in children(layer) for v in (getattr(c, "variables", None) or [])}
    return frozenset(id(v) for v in held if id(v) not in inner)


def _shapes_of(outputs, flatten: Callable):
    def shape(t):
        s = getattr(t, "shape", None)
        return tuple(s) if s is not None else None

    flat = [shape(t) for t in flatten(outputs)]
    return flat[0] if len(flat) == 1 else flat


# --------------------------------------------------------------------------
# Recording layer calls


class NoStandIn(Exception):
    """A passed-through call has no arguments to return in place of its outputs."""


def _updated(value):
    """``value`` updated in place (its first element written again), as a
    layer returns a cache slice it writes into; a scalar as it is."""
    import keras

    rank = len(value.shape)
    if not rank:
        return value
    corner = keras.ops.slice(value, [0] * rank, [1] * rank)
    return keras.ops.slice_update(value, [0] * rank, corner)


def _viewed(value):
    """``value`` through two views (flat, then its shape again): what a
    passed-through call returns as it is, as ops of the call's own, so that
    the program shows where it stands (:class:`~keras_flops.core.activations.Standing`)."""
    import keras

    return keras.ops.reshape(keras.ops.reshape(value, (-1,)), keras.ops.shape(value))


def _specs(leaves: list) -> list:
    """A call's flat arguments as the stand-in check compares them: a tensor
    by its shape and dtype, a plain value as it is, any other by its type."""
    out = []
    for leaf in leaves:
        shape = getattr(leaf, "shape", None)
        if shape is not None and hasattr(leaf, "dtype"):
            out.append((tuple(shape), str(leaf.dtype)))
        elif leaf is None or isinstance(leaf, (bool, int, float, str)):
            out.append(leaf)
        else:
            out.append(type(leaf).__qualname__)
    return out


def _matching(outputs: list, arguments: list) -> List[Optional[int]]:
    """For each output, the position of the first argument not taken yet of its
    shape and dtype (None where there is none)."""

    def spec(t):
        shape = getattr(t, "shape", None)
        return None if shape is None else (tuple(shape), str(getattr(t, "dtype", None)))

    taken: set = set()
    positions: List[Optional[int]] = []
    for out in outputs:
        found = next(
            (
                i
                for i, a in enumerate(arguments)
                if i not in taken and spec(a) is not None and spec(a) == spec(out)
            ),
            None,
        )
        positions.append(found)
        taken.add(found)
    return positions


class _Like(NamedTuple):
    """A call that later calls stand in for: what it returned, for each of
    its outputs the position of the argument of that spec, its arguments,
    and their specs as the stand-in check compares them."""

    outputs: Any
    positions: List[Optional[int]]
    given: list
    specs: list


@dataclasses.dataclass
class _Called:
    path: str
    class_name: str
    params: int
    output_shape: Any = None
    calls: int = 0
    order: int = -1


class LayerRecorder:
    """Wraps each sublayer's ``call`` (``quantized_call``, for a quantized
    layer) in :meth:`mark`, which a backend's
    recorder defines, and records the layers called and their first output shapes.

    Use as a context manager around the trace. On exit every layer is put
    back exactly as it was: the instance attribute ``call`` is removed again
    (or restored, if the layer had one of its own). ``flatten`` is the
    backend's, for the layers' output shapes.

    ``passthrough`` maps the paths of layers whose calls run nothing to the
    path of a like layer called before them (the middle calls of a chain of
    like calls, :meth:`LayerTraces.chains`, and the chain's second call): such
    a call returns, for each output of that layer's call, the argument of the
    same shape and dtype (a decoder block's hidden states, and its cache
    slice under ``call_with_cache``), or raises :class:`NoStandIn`. With
    ``viewed`` (an inference trace), a value it returns as it is goes through
    two views of its own, so that the program shows where the call stands; a
    training step's stand-ins return it as it is (views would change its
    backward pass).
    """

    _MISSING = object()

    def __init__(
        self, model, flatten: Callable, passthrough: Optional[Mapping[str, str]] = None, viewed: bool = True
    ):
        self._flatten = flatten
        self._viewed = viewed
        self._passthrough = dict(passthrough or {})
        self._standing = set(self._passthrough.values())
        self._stand_ins: Dict[str, _Like] = {}
        # the passed-through calls given a tensor they do not return that is not
        # the like call's own (one made for them, which the program then drops)
        self.loose: List[str] = []
        within = _within_passed(model, self._passthrough)  # never called: not wrapped
        self._entries = [(path, layer) for path, layer in layer_tree(model) if path not in within]
        self._saved: List[Tuple[Any, Any]] = []
        self._called: Dict[str, _Called] = {}
        self._order = 0

    def __enter__(self):
        try:
            for path, layer in self._entries:
                self._wrap(path, layer)
        except BaseException:
            self._restore()
            raise
        return self

    def __exit__(self, *exc):
        self._restore()
        return False

    def _wrap(self, path, layer):
        # A quantized Keras 3 layer (model.quantize, a quantized dtype policy)
        # runs quantized_call in place of call.
        name = "quantized_call" if getattr(layer, "quantization_mode", None) is not None else "call"
        original = layer.__dict__.get(name, self._MISSING)
        bound = getattr(layer, name)
        info = _Called(path, type(layer).__name__, own_params(layer) if hasattr(layer, "weights") else 0)

        @functools.wraps(bound)
        def call(*args, **kwargs):
            if path in self._passthrough:
                return self._stand_in(path, args, kwargs)
            with self.mark(path):
                outputs = bound(*args, **kwargs)
            if path in self._standing and path not in self._stand_ins:
                given = self._flatten((args, kwargs))
                self._stand_ins[path] = _Like(
                    outputs, _matching(self._flatten(outputs), given), given, _specs(given)
                )
            if info.calls == 0:
                info.output_shape = _shapes_of(outputs, self._flatten)
                info.order = self._order
                self._order += 1
            info.calls += 1
            return outputs

        self._saved.append((layer, name, original))
        object.__setattr__(layer, name, call)
        self._called[path] = info

    def _stand_in(self, path: str, args, kwargs):
        """What a passed-through call returns: the arguments of its outputs' specs."""
        import keras  # the package imports light: Keras only once a model is traced

        like = self._passthrough[path]
        if like not in self._stand_ins:
            raise NoStandIn(f"{path!r} is called before {like!r}, the like layer it stands in for")
        structure, positions, like_given, specs = self._stand_ins[like]
        if None in positions:
            raise NoStandIn(f"{like!r} returns a value of a shape and dtype none of its arguments has")
        given = self._flatten((args, kwargs))
        if _specs(given) != specs:
            raise NoStandIn(f"{path!r} is called on other arguments (shapes, dtypes, values) than {like!r}")
        returned = set(positions)
        if any(
            i not in returned and hasattr(leaf, "shape") and leaf is not like_given[i]
            for i, leaf in enumerate(given)
        ):
            self.loose.append(path)
        first = len(self._flatten(args[:1])) if args else 0
        with self.mark(path):  # what it makes is its own: counted as the like call's, in its place
            leaves = [
                (self.view(given[i]) if self._viewed else given[i]) if i < first else self.update(given[i])
                for i in positions
            ]
        return keras.tree.pack_sequence_as(structure, leaves)

    def view(self, value):
        """``value`` through views of the call's own (a backend may make it one op)."""
        return _viewed(value)

    def update(self, value):
        """``value`` updated in place, as a layer returns a cache slice it writes into."""
        return _updated(value)

    def _restore(self):
        while self._saved:
            layer, name, original = self._saved.pop()
            if original is self._MISSING:
                layer.__dict__.pop(name, None)
            else:
                object.__setattr__(layer, name, original)

    def mark(self, path: str):
        """A context manager around one call of the layer at ``path`` (or a region)."""
        raise NotImplementedError

    def region(self, path: str):
        """Record what is traced inside the block as the row ``path``, below
        every layer called inside it."""
        return self.mark(path)

    def layers(self) -> Tuple[LayerRow, ...]:
        called = sorted((i for i in self._called.values() if i.calls), key=lambda i: i.order)
        return tuple(LayerRow(i.path, i.class_name, i.output_shape, i.params, i.calls) for i in called)
