"""Reports as plain JSON types, in the versioned schema of docs/report.schema.json."""

from __future__ import annotations

import dataclasses

SCHEMA_VERSION = (
    2  # 2: bytes and intensity (min_bytes, macs_by_dtype, mac_dtype, saved_bytes added within it)
)
_TRAINING = ("backward_flops", "backward_macs", "train_flops")
_ACTIVE = ("active_flops", "active_macs")


def as_dict(report) -> dict:
    """``report.to_dict()``: plain JSON types, ``schema_version`` 2, built
    from the report's own tables (no DataFrame in between)."""
    counts = (
        ("flops", "macs", "bytes", "min_bytes", "intensity", "share")
        + (_TRAINING + ("saved_bytes",) if report.training else ())
        + (_ACTIVE if report.experts else ())
    )
    totals = _totals(report)
    out = {
        "schema": "keras_flops.report",
        "schema_version": SCHEMA_VERSION,
        "model": report.model_name,
        "batch_size": report.batch_size,
        "counting": report.counting,
        "training": report.training,
        "inputs": [{"name": n, "shape": list(s)} for n, s in report.input_shapes],
        "totals": totals,
        "layers": [
            {
                "path": row["layer"],
                "class": row["class"],
                "output_shape": _jsonable(row["output_shape"]),
                "params": row["params"],
                "calls": row["calls"],
                "mac_dtype": row["mac_dtype"],
                **{k: _number(row[k]) for k in counts},
            }
            for row in report.layer_table()
        ],
        "ops": [
            {
                k: _number(row[k])
                for k in ("op_type", "count", "flops", "macs", "bytes", "min_bytes", "intensity", "share")
            }
            for row in report.op_table()
        ],
        "uncounted": [dataclasses.asdict(u) for u in report.uncounted],
        "experts": [dataclasses.asdict(e) for e in report.experts],
        "notes": list(report.notes),
    }
    if report.mesh:
        out["mesh"] = dict(report.mesh)
    if report.per_device is not None:
        out["per_device"] = _per_device(report.per_device)
    return out


def _totals(report) -> dict:
    """The report's totals, as plain numbers."""
    totals = {
        "flops": report.flops,
        "macs": report.macs,
        "bytes": report.bytes,
        "min_bytes": report.min_bytes,
        "macs_by_dtype": report.macs_by_dtype,
        "params": report.params,
        "flops_per_sample": report.flops_per_sample,
        "macs_per_sample": report.macs_per_sample,
    }
    if report.experts:
        totals.update(active_flops=report.active_flops, active_macs=report.active_macs)
    if report.training:
        totals.update(
            backward_flops=report.backward_flops,
            backward_macs=report.backward_macs,
            train_flops=report.train_flops,
            train_macs=report.train_macs,
            saved_bytes=report.saved_bytes,
        )
    return totals


def _per_device(device) -> dict:
    """One device's program: its totals, weight shards, collectives and XLA's memory."""
    return {
        "batch_size": device.batch_size,
        "totals": _totals(device),
        "weight_bytes": device.weight_bytes,
        "collective_bytes": device.collective_bytes,
        "device_memory": dict(device.device_memory or {}),
        "collectives": [c.row() for c in device.collective_ops],
    }


def _number(value):
    """NaN (an intensity of no bytes) as JSON's null."""
    return None if isinstance(value, float) and value != value else value


def _jsonable(shape):
    if shape is None:
        return None
    if isinstance(shape, list):
        return [_jsonable(s) for s in shape]
    return list(shape)
