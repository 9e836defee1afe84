"""Formulas: what each op costs.

:mod:`keras_flops.formulas.registry` holds the records and the user registry
(no framework imported); :mod:`keras_flops.formulas.chain` resolves a
TensorFlow op's formula (and imports TensorFlow);
:mod:`keras_flops.formulas.jaxpr` prices JAX primitives. ``Chain``,
``TF_COUNTED_OPS`` and ``builtin_formula`` load the TensorFlow chain on
first use, so that the JAX backend never imports TensorFlow.
"""

from __future__ import annotations

import importlib

from keras_flops.formulas.registry import (  # noqa: F401
    MAC_OPS,
    ZERO_COST_OPS,
    Cost,
    Formula,
    OpSpec,
    apply,
    register_flops,
    unregister_flops,
    with_macs,
)

_FROM_CHAIN = ("Chain", "Resolution", "TF_COUNTED_OPS", "builtin_formula", "_BUILTIN", "tf_formulas")

__all__ = [
    "Chain", "Cost", "Formula", "MAC_OPS", "OpSpec", "Resolution", "TF_COUNTED_OPS",
    "ZERO_COST_OPS", "apply", "builtin_formula", "register_flops", "unregister_flops",
    "with_macs",
]


def __getattr__(name):
    if name in _FROM_CHAIN:
        return getattr(importlib.import_module("keras_flops.formulas.chain"), name)
    raise AttributeError(f"module 'keras_flops.formulas' has no attribute {name!r}")
