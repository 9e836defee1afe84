"""Models whose weights were never allocated: a 7B or 70B config on a laptop.

Under ``keras.StatelessScope(initialize_variables=False)`` Keras 3 defers
every variable: it has a shape, a dtype and an initializer, and no value.
Reading such a variable while tracing would run its initializer, whose
random-number arithmetic would then be counted as the model's. Instead, the
traced function takes one stand-in per variable (a placeholder on
TensorFlow, an abstract value on JAX) and runs the model in a
``StatelessScope`` that maps each variable to its stand-in: the program has
exactly the model's ops, no initializer's, and no weight is ever allocated.
Keras only: no framework is imported here.
"""

from __future__ import annotations

import contextlib
from typing import AbstractSet, Callable, Dict, FrozenSet, List, NamedTuple, Optional, Sequence, Tuple

from keras_flops import _compat
from keras_flops.core.dtypes import dtype_name
from keras_flops.errors import WithoutWeightsError


def without_weights(keep_unallocated: Optional[Callable[[list], None]] = None):
    """A ``keras.StatelessScope(initialize_variables=False)`` that, on exit,
    takes the variables made in it off Keras's list of variables to
    initialize: Keras would otherwise allocate them all when the next
    ``StatelessScope()`` exits (a Lambda layer's shape inference, any model
    built later), 13.5 GB for a 7B. Then ``keep_unallocated(made)`` (the
    backend's :meth:`~keras_flops.backends.protocol.Backend.keep_unallocated`)
    makes them read, outside a trace, without allocating. The public
    ``keras_flops.without_weights`` (:mod:`keras_flops.profiling`) passes it.
    """
    import keras

    class WithoutWeights(keras.StatelessScope):
        def __init__(self):
            super().__init__(initialize_variables=False)
            self._before = set()

        def __enter__(self):
            self._before = {id(v) for v in _compat.pending_variables()}
            return super().__enter__()

        def __exit__(self, exc_type=None, exc=None, traceback=None):
            super().__exit__(exc_type, exc, traceback)
            made = [v for v in _compat.pending_variables() if id(v) not in self._before]
            _compat.keep_deferred(made)
            if keep_unallocated is not None:
                keep_unallocated(made)
            if exc is not None and _compat.is_valued_variable_in_stateless_scope(exc):
                raise WithoutWeightsError(
                    "keras_flops.without_weights(): a variable that holds a value of its own (an "
                    "optimizer's iteration counter, which a keras_hub task model compiles in its "
                    "constructor) cannot be made without weights. Build the backbone inside the block "
                    "and the task model outside it:\n"
                    "    with keras_flops.without_weights():\n"
                    "        backbone = keras_hub.models.LlamaBackbone(**config)\n"
                    "    causal_lm = keras_hub.models.LlamaCausalLM(backbone=backbone, preprocessor=None)"
                ) from exc

    return WithoutWeights()


def all_variables(model) -> List:
    """Every variable a trace of the model may read: its own and its metrics', once each."""
    variables = list(getattr(model, "variables", None) or [])
    variables += list(getattr(model, "metrics_variables", None) or [])
    return list({id(v): v for v in variables}.values())


def deferred_variables(model) -> Optional[List]:
    """:func:`all_variables`, when any of them is unallocated; None for a
    model whose weights all exist."""
    unique = all_variables(model)
    if not any(not _compat.is_allocated(v) for v in unique):
        return None
    return unique


def value_specs(variables: Sequence, spec: Callable) -> list:
    """One spec per variable, made by a backend's ``spec(shape, dtype,
    name)``: the stand-ins the trace takes for the variables' values."""
    return [spec(tuple(v.shape), dtype_name(v.dtype), name=_name(v, i)) for i, v in enumerate(variables)]


class Slots(NamedTuple):
    """Stand-ins for a program's variables, fewer than one each: ``firsts``,
    the variable whose spec each stand-in takes; ``of``, each variable's
    stand-in; ``shared``, the stand-ins several unread variables share."""

    firsts: Tuple[int, ...]
    of: Tuple[int, ...]
    shared: FrozenSet[int]

    def specs(self, variables: Sequence, spec: Callable) -> list:
        return value_specs([variables[i] for i in self.firsts], spec)

    def spread(self, values: Sequence) -> list:
        """Each variable's value, from the stand-ins' ``values``."""
        return [values[i] for i in self.of]


def slots(variables: Sequence, unread: AbstractSet[int] = frozenset()) -> Slots:
    """One stand-in per variable, but one per shape and dtype for the
    variables in ``unread`` (ids, :func:`~keras_flops.core.layers.passed_over`):
    a 7B's prefill, passing 30 of its 32 blocks through, takes 28 for its
    293 variables. Whoever traces with them checks that no
    shared stand-in was read."""
    firsts: List[int] = []
    of: List[int] = []
    by_spec: Dict[tuple, int] = {}
    for i, v in enumerate(variables):
        key = (tuple(v.shape), dtype_name(v.dtype)) if id(v) in unread else None
        slot = by_spec.get(key) if key is not None else None
        if slot is None:
            slot = len(firsts)
            firsts.append(i)
            if key is not None:
                by_spec[key] = slot
        of.append(slot)
    return Slots(tuple(firsts), tuple(of), frozenset(by_spec.values()))


def values_for(variables: Optional[Sequence], values):
    """A scope in which each variable reads as its placeholder value, and none
    is ever initialized; nothing for a model with all its weights."""
    if variables is None:
        return contextlib.nullcontext()
    import keras

    return keras.StatelessScope(state_mapping=list(zip(variables, values)), initialize_variables=False)


def updates(scope, variables: Optional[Sequence], values) -> list:
    """The new values the traced call assigned to variables (a batch
    normalization's moving averages, a dropout's or a sampler's seed), to be
    returned by the traced function: an allocated variable's assignment is an
    op that runs, and these must run, and be counted, the same. Inside the
    scope every assignment is recorded in its ``state_mapping``, the
    variables it was given (mapped to their placeholders) and any other."""
    if variables is None:
        return []
    stand_ins = {id(v) for v in values}
    return [value for value in scope.state_mapping.values() if id(value) not in stand_ins]


def _name(variable, index: int) -> str:
    path = getattr(variable, "path", None) or getattr(variable, "name", "") or f"variable_{index}"
    return "".join(c if c.isalnum() or c in "_." else "_" for c in path)
