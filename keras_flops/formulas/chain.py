"""What each TensorFlow op costs: one resolution chain over every formula.

(Loaded by :mod:`keras_flops.formulas` on first use: it imports TensorFlow.)

An op's cost is looked up in this order, first match wins:

1. a formula passed to one ``profile(..., formulas={...})`` call;
2. a formula registered with :func:`register_flops`;
3. TensorFlow's own registered ``"flops"`` statistic, the function that
   ``tf.compat.v1.profiler``'s ``float_operation()`` calls (when it fails,
   on an NCHW pooling say, keras_flops' formula for the op takes over);
4. a formula of keras_flops' own (:mod:`keras_flops.formulas.ours`);
5. :data:`ZERO_COST_OPS`, op types that do no arithmetic;
6. otherwise the op is *uncounted*: it goes to ``report.uncounted`` and into a
   warning, never silently into the total as 0.

``Chain(tensorflow_only=True)`` is tf.profiler's chain: TensorFlow's formulas
and the zero list only. Nothing here writes into TensorFlow's global
statistics registry, so importing keras_flops beside code that does is safe.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple, Optional, Tuple, Union

import tensorflow as tf

from keras_flops.formulas import ours as _ours  # noqa: F401  (registers them)
from keras_flops.formulas import tensorflow as tf_formulas
from keras_flops.formulas.registry import (
    _BUILTIN, _EXACT, _USER, ZERO_COST_OPS, Cost, Formula, OpSpec, apply, with_macs,
)

TF_COUNTED_OPS = tf_formulas.COUNTED_OPS

__all__ = ["Chain", "Resolution", "TF_COUNTED_OPS", "builtin_formula"]


class Resolution(NamedTuple):
    """Which formula an op gets: ``source`` is user, tensorflow, keras_flops or zero."""

    source: str
    formula: Optional[Formula]


Priced = Union[Tuple[Cost, str], str, None]


class Chain:
    """The resolution chain of one profile call.

    ``price(op)`` gives ``(Cost, source)``, ``None`` for an op that costs
    nothing, or the reason (a string) it could not be counted.
    """

    def __init__(self, per_call: Optional[Mapping[str, Formula]] = None, tensorflow_only: bool = False):
        self.per_call = dict(per_call or {})
        self.tensorflow_only = tensorflow_only

    def resolve(self, op_type: str) -> Optional[Resolution]:
        """The formula for an op type, or ``None`` if it has none."""
        if self.tensorflow_only:
            if op_type in TF_COUNTED_OPS:
                return Resolution("tensorflow", None)
            return Resolution("zero", None) if op_type in ZERO_COST_OPS else None
        if op_type in self.per_call:
            return Resolution("user", self.per_call[op_type])
        if op_type in _USER:
            return Resolution("user", _USER[op_type])
        if op_type in _EXACT:
            return Resolution("keras_flops", _EXACT[op_type])
        if op_type in TF_COUNTED_OPS:
            return Resolution("tensorflow", None)
        if op_type in _BUILTIN:
            return Resolution("keras_flops", _BUILTIN[op_type])
        if op_type in ZERO_COST_OPS:
            return Resolution("zero", None)
        return None

    def price(self, op) -> Priced:
        resolution = self.resolve(op.type)
        if resolution is not None and resolution.source == "zero":
            return None
        if not self.tensorflow_only and _on_strings(op) and (resolution is None or resolution.source != "user"):
            return None
        if resolution is None:
            if self.tensorflow_only and Chain(self.per_call).resolve(op.type) is not None:
                return "tf.profiler has no formula for it (counting='tfprof')"
            return f"no formula for op type {op.type}"
        if resolution.source == "tensorflow":
            try:
                flops = tf_formulas.count(op)
            except ValueError as err:
                fallback = None if self.tensorflow_only else _BUILTIN.get(op.type)
                if fallback is None:
                    return f"TensorFlow's {op.type} formula failed: {err}"
                resolution = Resolution("keras_flops", fallback)
            else:
                return with_macs(op.type, flops, tf_formulas.explain(op)), "tensorflow"
        try:
            cost = apply(resolution.formula, OpSpec.from_op(op))
        except Exception as err:  # a formula's failure is reported, never fatal
            return f"{resolution.source} formula for {op.type} failed: {type(err).__name__}: {err}"
        return cost, resolution.source


def _on_strings(op) -> bool:
    """Whether an op works on strings, which is text processing (TextVectorization,
    StringLookup), not floating-point arithmetic: such ops count 0."""
    return any(t.dtype == tf.string for t in op.inputs)


def builtin_formula(op_type: str) -> Optional[Formula]:
    """keras_flops' own formula for an op type, if it has one."""
    return _BUILTIN.get(op_type)
