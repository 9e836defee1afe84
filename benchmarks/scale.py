"""Scale: a model past 2 GiB of weights, and 100 vs 1,000 layers, in one process.

- Dense 16384 -> 32768 (2 GiB of float32 weights, past protobuf's 2 GiB
  limit that freezing would hit): the exact count, and the peak resident
  memory growth of profile() against the weights' bytes (target <= 10%).
- A stack of N small Dense layers, N = 100 and 1,000: profile() CPU time,
  and the ratio (target: 1,000 vs 100 layers within 12x, close to linear),
  beside a bare trace's, which is most of it.

    python benchmarks/scale.py

It counts with reuse=False, one trace of the whole model: the overhead over
that trace is what it measures (reuse by layer: benchmarks/reuse_speed.py).
"""

import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_flops  # noqa: E402
from profile_speed import PeakRSS  # noqa: E402


def big():
    return keras.Sequential([keras.Input((16384,)), keras.layers.Dense(32768, kernel_initializer="zeros")])


def deep(n):
    # Keras builds a Sequential's graph recursively: 1,000 layers need a deeper stack
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20 * n))
    return keras.Sequential([keras.Input((16,))] + [keras.layers.Dense(16) for _ in range(n)])


def bare_trace(model):
    spec = tf.TensorSpec((1,) + tuple(model.inputs[0].shape[1:]), tf.float32)
    tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)


def timed(models, reps=7):
    """Median CPU seconds of profile() and of a bare trace for each model,
    measured in turn (models interleaved), which other load disturbs less
    than wall time."""
    profiled = {n: [] for n in models}
    bare = {n: [] for n in models}
    for model in models.values():
        keras_flops.profile(model, warn=False, reuse=False)  # warm-up
    for _ in range(reps):
        for n, model in models.items():
            start = time.process_time()
            keras_flops.profile(model, warn=False, reuse=False)
            profiled[n].append(time.process_time() - start)
            start = time.process_time()
            bare_trace(model)
            bare[n].append(time.process_time() - start)
    return {n: (statistics.median(profiled[n]), statistics.median(bare[n])) for n in models}


def main():
    model = big()
    weight_bytes = sum(w.numpy().nbytes for w in model.weights)
    keras_flops.profile(model, warn=False, reuse=False)  # warm-up
    with PeakRSS() as mem:
        report = keras_flops.profile(model, warn=False, reuse=False)
    expected = 2 * 16384 * 32768 + 32768
    print(f"Dense 16384 -> 32768: {weight_bytes / 2**30:.3f} GiB of weights; "
          f"FLOPs {report.flops:,} (expected {expected:,}: {'exact' if report.flops == expected else 'WRONG'}); "
          f"profile memory growth {mem.growth / 2**20:.1f} MB = {mem.growth / weight_bytes:.2%} "
          "of the weights (target <= 10%)")
    del model
    times = timed({100: deep(100), 1000: deep(1000)})
    (p100, b100), (p1000, b1000) = times[100], times[1000]
    print(f"profile (CPU time): 100 Dense layers {p100:.2f} s, 1,000 {p1000:.2f} s: ratio {p1000 / p100:.1f}x "
          f"(target <= 12x); a bare trace alone: {b100:.2f} s, {b1000:.2f} s: {b1000 / b100:.1f}x")


if __name__ == "__main__":
    main()
