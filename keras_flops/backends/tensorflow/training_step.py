"""One training step as a tf.function: forward, compiled loss, gradients.

The optimizer's update is not part of it. While the step traces, every op
of its graph is marked with its phase: "forward", "loss" (the labels
included) or "backward" (what ``tape.gradient`` creates).
"""

from __future__ import annotations

from typing import Dict, List

import tensorflow as tf

from keras_flops.backends.tensorflow import graph as graphs
from keras_flops.core import inputs, weightless
from keras_flops.core.records import BACKWARD, FORWARD, LOSS_PHASE


class TrainingStep:
    """:meth:`step` takes ``(inputs)`` or ``(inputs, targets)``; after it is
    traced, ``phases`` maps each op name of its graph to its phase and
    ``notes`` says what the report should (an uncompiled model, say).

    Without targets, labels shaped for the compiled loss are made inside the
    graph (zeros: their values do not change the count).
    """

    def __init__(self, model, has_targets: bool, variables=None, sharing=None):
        self.model = model
        self.variables = variables  # placeholders stand for these (weightless models)
        self.sharing = sharing  # which placeholder stands for each (weightless.Slots)
        self.phases: Dict[str, str] = {}
        self.notes: List[str] = []
        self.has_targets = has_targets

    def step(self, inputs, *rest):
        """The step, to be traced: on ``(inputs, targets, values)`` or
        ``(inputs, values)`` (``values`` for a weightless model alone)."""
        targets, rest = (rest[0], rest[1:]) if self.has_targets else (None, rest)
        return self._step(inputs, targets, rest[0] if rest else None)

    def _step(self, inputs, targets=None, values=None):
        if values is not None:
            values = self.sharing.spread(values)
        with weightless.values_for(self.variables, values) as scope:
            loss, gradients = self._traced_step(inputs, targets, values)
            return loss, gradients, weightless.updates(scope, self.variables, values)

    def _traced_step(self, inputs, targets, values):
        graph = tf.compat.v1.get_default_graph()
        mark = [graphs.num_ops(graph)]
        for label in tf.nest.flatten(targets) if targets is not None else ():
            self.phases[label.op.name] = LOSS_PHASE  # the labels feed only the loss

        def close(phase):
            ops = graph.get_operations()
            for op in ops[mark[0] :]:
                self.phases[op.name] = phase
            mark[0] = len(ops)

        trainable = self.model.trainable_weights
        if values is not None:  # the gradients are with respect to the placeholders
            index = {id(v): i for i, v in enumerate(self.variables)}
            trainable = [values[index[id(v)]] for v in trainable]
        with tf.GradientTape() as tape:
            if values is not None:
                tape.watch(trainable)
            y_pred = self.model(inputs, training=True)
            close(FORWARD)
            loss = self._loss(inputs, targets, y_pred)
            close(LOSS_PHASE)
        gradients = tape.gradient(loss, trainable)
        close(BACKWARD)
        return loss, gradients

    def _loss(self, x, y, y_pred):
        return inputs.training_loss(self.model, x, y, y_pred, self.notes, tf.nest, legacy_loss=_tf_keras_loss)


def _tf_keras_loss(model, y, y_pred):
    """tf_keras's compiled loss without the metric updates of compute_loss
    (they need a replica context under a distribution strategy)."""
    losses = model.loss
    outputs, targets = tf.nest.flatten(y_pred), tf.nest.flatten(y)
    if isinstance(losses, dict):
        losses = [losses[name] for name in model.output_names]
    fns = list(losses) if isinstance(losses, (list, tuple)) else [losses] * len(outputs)
    terms = [tf.keras.losses.get(fn)(t, p) for fn, t, p in zip(fns, targets, outputs)]
    terms = [tf.reduce_mean(t) for t in terms] + list(model.losses)
    return tf.add_n(terms)
