"""Tracing a Keras model on JAX into a jaxpr, and who made each equation.

Tracing: every variable of the model becomes an abstract value
(``jax.ShapeDtypeStruct``) that a ``keras.StatelessScope`` maps the variable
to, and ``jax.make_jaxpr`` traces the call; no weight is read or allocated,
so weightless models (a 70B config) trace the same way. While tracing, every
sublayer's call runs inside a ``jax.named_scope`` with a token of its own;
each equation of the jaxpr carries its name stack, whose innermost token is
the layer call that made it. A training step is ``jax.value_and_grad`` of
the loss with respect to the trainable variables: its backward equations'
name stacks read "transpose(jvp(...))" with the forward layer's token inside.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import jax
import keras

from keras_flops.backends.jax._compat import is_literal
from keras_flops.core import inputs, weightless
from keras_flops.core.dtypes import dtype_name
from keras_flops.core.layers import LayerRecorder, passed_over
from keras_flops.core.records import LOSS, LayerRow

_SESSIONS = itertools.count()


# --------------------------------------------------------------------------
# Tracing


class ScopeRecorder(LayerRecorder):
    """Runs each layer call (and each region) in a ``jax.named_scope`` whose
    token names it; ``tokens`` maps each token to its row's path."""

    def __init__(self, model, passthrough=None, viewed: bool = True):
        super().__init__(model, keras.tree.flatten, passthrough, viewed)
        self.prefix = f"kflops{next(_SESSIONS)}n"
        self.tokens: Dict[str, str] = {}
        self._count = itertools.count()

    def mark(self, path: str):
        token = f"{self.prefix}{next(self._count)}"
        self.tokens[token] = path
        return jax.named_scope(token)

    def view(self, value):
        """Two reshapes (a reshape to its own shape makes no equation)."""
        shape = tuple(value.shape)
        return jax.lax.reshape(jax.lax.reshape(value, (1, *shape)), shape)

    def update(self, value):
        """Its first element written again, by lax (keras.ops converts the indices twice)."""
        rank = len(value.shape)
        if not rank:
            return value
        corner = jax.lax.slice(value, (0,) * rank, (1,) * rank)
        return jax.lax.dynamic_update_slice(value, corner, (0,) * rank)


@dataclasses.dataclass(frozen=True)
class JaxTrace:
    """A traced model: its closed jaxpr, the token of every layer call, the
    layers called in first-call order."""

    jaxpr: Any  # jax.extend.core.ClosedJaxpr
    tokens: Mapping[str, str]
    prefix: str
    layers: Tuple[LayerRow, ...] = ()
    notes: Tuple[str, ...] = ()
    outputs: Any = None  # specs of the traced call's outputs, in their structure
    arguments: Tuple[Any, ...] = ()  # a trace_call's: the jaxpr's variables of its arguments
    returns: Tuple[Any, ...] = ()  # and of the values it returns (None for a literal)
    loose: Tuple[str, ...] = ()  # passed-through calls given a value of their own (LayerRecorder.loose)

    def owner(self, stack: str) -> Optional[str]:
        """The path of the innermost layer call in a name stack, if any."""
        found = re.findall(rf"{self.prefix}\d+", stack)
        return self.tokens[found[-1]] if found else None


def abstract_spec(shape, dtype, name=None) -> jax.ShapeDtypeStruct:
    """An abstract value: an input's, a label's, or a variable's stand-in
    (it has no name: a caller keeps ``name`` beside it)."""
    return jax.ShapeDtypeStruct(tuple(None if d is None else int(d) for d in shape), dtype_name(dtype))


def trace_call(model, call, specs: Sequence, passthrough=None) -> JaxTrace:
    """Trace ``call(*args, region)`` on ``specs`` (abstract values): a function
    that runs ``model`` or parts of it, as the TensorFlow backend's ``trace_call``;
    ``passthrough``: the layers whose calls run nothing (see ``LayerRecorder``)."""
    variables = weightless.all_variables(model)
    structure = []

    def fn(values, *args):
        with weightless.values_for(variables, values) as scope:
            outputs = call(*args, recorder.region)
            structure.append(
                keras.tree.map_structure(lambda t: jax.ShapeDtypeStruct(tuple(t.shape), t.dtype), outputs)
            )
            return outputs, weightless.updates(scope, variables, values)

    with ScopeRecorder(model, passthrough) as recorder:
        closed = jax.make_jaxpr(fn)(weightless.value_specs(variables, abstract_spec), *specs)
    jaxpr = closed.jaxpr
    returned = jaxpr.outvars[: len(keras.tree.flatten(structure[0]))]
    return JaxTrace(
        closed,
        dict(recorder.tokens),
        recorder.prefix,
        recorder.layers(),
        outputs=structure[0],
        arguments=tuple(jaxpr.invars[len(variables) :]),
        returns=tuple(None if is_literal(v) else v for v in returned),
        loose=tuple(recorder.loose),
    )


def trace(model, specs, training: bool = False, targets=None, passthrough=None) -> JaxTrace:
    """Trace ``model`` on ``specs``: one inference call, or with ``training``
    one training step without the optimizer (forward with ``training=True``,
    the compiled loss, the gradients with respect to the trainable weights).
    ``passthrough``: the layers whose calls run nothing (see ``LayerRecorder``);
    their weights get no gradient (not one of zeros)."""
    if not training:
        return trace_call(model, lambda inputs, region: model(inputs, training=False), [specs], passthrough)
    variables = weightless.all_variables(model)
    index = {id(v): i for i, v in enumerate(variables)}
    skipped = passed_over(model, passthrough)
    trainable = [index[id(v)] for v in model.trainable_variables if id(v) not in skipped]
    notes: List[str] = []

    def step(values, x, labels=None):
        def loss_of(train_values):
            mapped = list(values)
            for i, value in zip(trainable, train_values):
                mapped[i] = value
            with weightless.values_for(variables, mapped) as scope:
                y_pred = model(x, training=True)
                with recorder.mark(LOSS):
                    loss = inputs.training_loss(model, x, labels, y_pred, notes, keras.tree)
                return loss, weightless.updates(scope, variables, mapped)

        (loss, updates), grads = jax.value_and_grad(loss_of, has_aux=True)([values[i] for i in trainable])
        return loss, grads, updates

    args = [weightless.value_specs(variables, abstract_spec), specs] + (
        [targets] if targets is not None else []
    )
    with ScopeRecorder(model, passthrough, viewed=False) as recorder:
        closed = jax.make_jaxpr(step)(*args)
    return JaxTrace(
        closed,
        dict(recorder.tokens),
        recorder.prefix,
        recorder.layers(),
        tuple(dict.fromkeys(notes)),
        loose=tuple(recorder.loose),
    )
