"""Measured time per layer on TensorFlow: the traced forward run on this
machine's device.

``measure`` runs the very function ``profile`` counted, warms it up, times
whole forward passes, then runs it under TensorFlow's own profiler and gives
each op execution of the trace to its layer with the same op -> layer map
that attributes FLOPs. Ops that TensorFlow's graph optimizer rewrote or fused
carry new names under the old op's name scope, and go to the layer that owns
that scope. Per-layer times are medians over the runs.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import statistics
import tempfile
import time
from typing import Dict, List, Optional

import tensorflow as tf

from keras_flops.backends.tensorflow import _compat as compat
from keras_flops.core.records import OUTSIDE
from keras_flops.core.report import FlopsReport


def measure(report: FlopsReport, traced, specs, repeats: int, warmup: int) -> FlopsReport:
    """``report`` (profile's count of ``traced``), plus measured times:
    ``report.time_ms`` (the median forward pass), and per layer ``time_ms``
    (median), ``time_iqr_ms`` (its interquartile range) and
    ``tflops_per_sec`` achieved. ``warmup`` untimed runs of the traced
    function on zeros of ``specs`` come first; then ``repeats`` timed runs,
    and ``repeats`` runs under TensorFlow's profiler."""
    function = traced.function
    example = tf.nest.map_structure(lambda spec: tf.zeros(spec.shape, spec.dtype), specs)

    def run():
        outputs = function(example)
        for t in tf.nest.flatten(outputs)[:1]:
            t.numpy()  # wait for the device

    for _ in range(warmup):
        run()
    forward = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        forward.append((time.perf_counter() - start) * 1e3)
    with tempfile.TemporaryDirectory(prefix="keras_flops-") as logdir:
        tf.profiler.experimental.start(logdir)
        try:
            for _ in range(repeats + 1):  # the first profiled call pays the profiler's start-up
                run()
        finally:
            tf.profiler.experimental.stop()
        ops, calls = compat.profiler_ops(logdir)
    per_run = _per_layer_per_run(ops, calls, _owners(traced), repeats, runs=repeats + 1)
    times = tuple((layer, statistics.median(runs), _iqr(runs)) for layer, runs in per_run.items())
    note = (
        "Times: the median forward pass of the traced function over "
        f"{repeats} runs on this machine; per layer, TensorFlow's profiler trace of "
        f"{repeats} more, each op given to its layer (ops TensorFlow's optimizer fused "
        "or rewrote, to the layer owning their name scope)."
    )
    return dataclasses.replace(
        report, layer_times=times, time_ms=statistics.median(forward), notes=report.notes + (note,)
    )


class _Owners:
    """Op name -> layer, with rewritten ops found by their name scope."""

    def __init__(self, names: Dict[str, str]):
        self.names = names
        scopes: Dict[str, Optional[str]] = {}
        for name, layer in names.items():
            parts = name.split("/")
            for end in range(1, len(parts)):
                scope = "/".join(parts[:end])
                scopes[scope] = layer if scopes.get(scope, layer) == layer else None
        self.scopes = scopes

    def __call__(self, name: str) -> str:
        layer = self.names.get(name)
        if layer is not None:
            return layer
        parts = name.split("/")
        for end in range(len(parts) - 1, 0, -1):
            layer = self.scopes.get("/".join(parts[:end]))
            if layer is not None:
                return layer
        return OUTSIDE


def _owners(traced) -> _Owners:
    names: Dict[str, str] = {}
    for (_, name), (layer, _) in traced.owners.items():
        names.setdefault(name, layer)
    return _Owners(names)


def _per_layer_per_run(ops, calls, owner, repeats: int, runs: Optional[int] = None) -> Dict[str, List[float]]:
    """{layer: [ms in each run]}, wall-clock time shared out: within each call
    window, every stretch of time goes to the ops running then, split evenly
    when several overlap (TensorFlow runs independent ops, a residual
    block's two branches, on parallel threads). So a run's layers sum to the
    time its ops kept the device busy, never more than the run took.

    Without one window per call (the profiler does not always record them)
    every op falls in one window, whose times are divided by ``runs``, the
    calls profiled: the mean of a run, with no spread."""
    calls = sorted(calls)[-repeats:] if len(calls) >= repeats else []
    windows = calls or [(min((s for _, s, _ in ops), default=0), float("inf"))]
    totals = [collections.Counter() for _ in windows]
    for i, (low, high) in enumerate(windows):
        inside = [
            (start, start + duration, owner(name)) for name, start, duration in ops if low <= start <= high
        ]
        _share_out(inside, totals[i])
    scale = 1e9 if calls else 1e9 * (runs or repeats)  # ps -> ms; one window holds every run
    layers = dict.fromkeys(layer for counter in totals for layer in counter)
    return {layer: [counter.get(layer, 0) / scale for counter in totals] for layer in layers}


def _share_out(intervals, into: collections.Counter) -> None:
    """Add each interval's share of wall time to its layer: a sweep over the
    start and end points, each stretch split among the intervals open then."""
    points = sorted({t for start, end, _ in intervals for t in (start, end)})
    if not points:
        return
    starts = sorted(intervals)
    active, k = [], 0
    for left, right in zip(points, points[1:]):
        while k < len(starts) and starts[k][0] <= left:
            active.append(starts[k])
            k += 1
        active = [iv for iv in active if iv[1] > left]
        if active:
            share = (right - left) / len(active)
            for _, _, layer in active:
                into[layer] += share


def _iqr(values: List[float]) -> float:
    """The interquartile range; NaN from one value (no per-run windows)."""
    if len(values) < 2:
        return math.nan
    q = statistics.quantiles(values, n=4)
    return q[2] - q[0]
