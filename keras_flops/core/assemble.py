"""A counted trace assembled into a :class:`~keras_flops.core.report.FlopsReport`:
the layer rows, the mixture-of-experts layers, the compute dtype."""

from __future__ import annotations

import dataclasses
import math

from keras_flops.core import moe
from keras_flops.core.activations import Activations
from keras_flops.core.dtypes import dtype_name
from keras_flops.core.layers import own_params
from keras_flops.core.records import OUTSIDE, LayerRow
from keras_flops.core.report import FlopsReport


def build_report(
    model,
    traced,
    counted,
    backend,
    *,
    batch_size: int,
    input_shapes,
    notes=(),
    counting: str = "full",
    training: bool = False,
    extra_layers=(),
    experts=None,
) -> FlopsReport:
    """The FlopsReport of a counted trace of ``model``: its layer rows (and
    ``extra_layers``), its mixture-of-experts layers, its compute dtype, and
    whether ``backend`` runs float32 matmuls as TF32 (for rooflines).
    ``experts`` may be given when already found (one search per model)."""
    experts = moe.find(model) if experts is None else experts
    return FlopsReport(
        model_name=model.name,
        batch_size=batch_size,
        input_shapes=input_shapes,
        layers=layer_rows(model, traced.layers, counted) + tuple(extra_layers),
        ops=counted.ops,
        uncounted=counted.uncounted,
        notes=tuple(notes) + counted.notes + tuple(e.note() for e in experts),
        counting=counting,
        training=training,
        experts=experts,
        compute_dtype=compute_dtype(model),
        tensor_float_32=backend.tensor_float_32(),
        activations=counted.activations,
    )


def with_per_device(report: FlopsReport, partitioned, replicas: int) -> FlopsReport:
    """``report`` with its ``mesh`` and ``per_device``: the report of one
    device's program as XLA partitioned it (a
    :class:`~keras_flops.core.records.Partitioned`), for that device's share
    of the batch (``replicas`` devices split it), with its collectives, the
    compiled program's memory and the device's weight shards. Every device
    runs the same program (SPMD), so it is the most loaded device's."""
    devices = math.prod(partitioned.mesh.values())
    mesh = " x ".join(f"{axis} {size}" for axis, size in partitioned.mesh.items())
    device = dataclasses.replace(
        report,
        batch_size=max(1, report.batch_size // max(1, replicas)),
        ops=partitioned.ops,
        uncounted=partitioned.uncounted,
        notes=report.notes
        + partitioned.notes
        + (
            f"One device's program of {devices} on a mesh of {mesh}, as XLA's SPMD partitioner compiled "
            "it: its shapes are the device's shards, its collectives are the communication XLA inserted, "
            "and its counts are what the device executes after XLA's rewrites.",
        ),
        experts=(),
        activations=Activations(),
        mesh=dict(partitioned.mesh),
        collective_ops=partitioned.collectives,
        device_memory=dict(partitioned.memory),
        weight_shards=partitioned.weights,
    )
    return dataclasses.replace(report, mesh=dict(partitioned.mesh), per_device=device)


def compute_dtype(model) -> str:
    """The dtype the model computes in (float16 under mixed precision)."""
    return dtype_name(getattr(getattr(model, "dtype_policy", None), "compute_dtype", None))


def layer_rows(model, layers, counted) -> tuple:
    """The called layers, and a "(model)" row when ops or weights belong to
    the model itself rather than any layer."""
    own = own_params(model)
    outside = any(op.layer == OUTSIDE and op.flops for op in counted.ops)
    if outside or own or any(u.layer == OUTSIDE for u in counted.uncounted):
        layers = layers + (LayerRow(OUTSIDE, type(model).__name__, None, own, 1),)
    return layers
