"""Counting a TensorFlow trace: price every op that runs, with one resolution chain.

(The JAX backend counts its jaxprs in :mod:`keras_flops.jax_backend`.)

``count`` walks the traced graph (:mod:`keras_flops.counting.walk`), entering
loops a trip count times (:mod:`keras_flops.counting.loops`), and returns
plain records.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Optional, Tuple

from keras_flops.records import OpCount, UncountedOp

# "full": every op with a formula, functions entered, dead ops pruned;
# "tfprof": tf.compat.v1.profiler's numbers exactly.
MODES = ("full", "tfprof")


@dataclasses.dataclass(frozen=True)
class Counted:
    ops: Tuple[OpCount, ...]
    uncounted: Tuple[UncountedOp, ...]
    notes: Tuple[str, ...]


def count(trace, mode: str = "full", formulas: Optional[Mapping] = None) -> Counted:
    """Count ``trace``'s graph in ``mode`` (one of :data:`MODES`), with
    ``formulas`` first in the chain."""
    from keras_flops._compat import quiet_tf_formulas
    from keras_flops.counting.walk import Walk
    from keras_flops.formulas import Chain

    tfprof = mode == "tfprof"
    walk = Walk(trace, Chain(formulas, tensorflow_only=tfprof), prune_and_enter=not tfprof)
    with quiet_tf_formulas():
        walk.graph(trace.graph)
    return Counted(tuple(walk.counted), tuple(walk.uncounted), tuple(walk.notes))


__all__ = ["Counted", "MODES", "count", "live_ops"]


def __getattr__(name):
    if name == "live_ops":  # TensorFlow's graphs: loaded on first use
        from keras_flops.counting.walk import live_ops

        return live_ops
    raise AttributeError(f"module 'keras_flops.counting' has no attribute {name!r}")
