"""Formulas: what each op costs. No framework is imported here.

:mod:`keras_flops.formulas.registry` holds the records formulas return, the
user registry, a backend's :class:`~keras_flops.formulas.registry.Table` and
the :class:`~keras_flops.formulas.registry.Chain` that picks an op's formula;
:mod:`keras_flops.formulas.compute` the formulas by what an op computes
(elementwise, reductions, scans, pooling, contractions, top-k, FFT), written
once. Each backend maps its op types onto them
(:mod:`keras_flops.backends.tensorflow.formulas`,
:mod:`keras_flops.backends.jax.formulas`, :mod:`keras_flops.backends.torch.formulas`).
"""

from __future__ import annotations

from keras_flops.formulas.registry import (  # noqa: F401
    Chain,
    Cost,
    Formula,
    OpSpec,
    Resolution,
    Table,
    apply,
    register_flops,
    unregister_flops,
    user_formula,
    with_macs,
)

# fmt: off
__all__ = [
    "Chain", "Cost", "Formula", "OpSpec", "Resolution", "Table", "apply",
    "register_flops", "unregister_flops", "user_formula", "with_macs",
]
# fmt: on
