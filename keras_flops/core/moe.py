"""Mixture-of-experts layers: found by the attributes keras_hub's MoE blocks carry.

A layer with integer ``num_experts`` and ``top_k`` (or ``num_experts_per_tok``)
that has a sublayer with ``num_experts`` and no ``top_k`` (the expert bank) is a
mixture of experts whose bank runs every expert densely; the report scales
that bank's count by top_k / num_experts for its "active" figures.
"""

from __future__ import annotations

from typing import Optional, Tuple

from keras_flops.core.records import ExpertsLayer
from keras_flops.core.layers import layer_tree

_TOP_K = ("top_k", "num_experts_per_tok")


def _int(layer, name: str) -> Optional[int]:
    value = getattr(layer, name, None)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _top_k(layer) -> Optional[int]:
    return next(filter(None, (_int(layer, n) for n in _TOP_K)), None)


def find(model) -> Tuple[ExpertsLayer, ...]:
    """Every mixture-of-experts layer of ``model`` with its expert bank."""
    tree = layer_tree(model)
    found = []
    for path, layer in tree:
        experts, k = _int(layer, "num_experts"), _top_k(layer)
        if not (experts and k):
            continue
        depth = path.count("/") + 1
        for inner_path, inner in tree:
            if (
                inner_path.startswith(path + "/")
                and inner_path.count("/") == depth
                and _int(inner, "num_experts")
                and not _top_k(inner)
            ):
                found.append(ExpertsLayer(path, inner_path, experts, min(k, experts)))
    return tuple(found)
