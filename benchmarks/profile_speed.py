"""Time and peak memory of keras_flops.profile beside a bare trace and freeze + tf.profiler.

Runs in one process, for each model:
  trace    tf.function(model).get_concrete_function(fixed-batch spec), nothing else
  profile  keras_flops.profile(model): trace with layer wrapping, count, report
  freeze   trace, convert_variables_to_constants_v2, tf.compat.v1.profiler float_operation()

Each step is repeated (--reps) in turn and the median time is kept; memory is
the peak resident-set growth above the level before the step, sampled every
2 ms by a thread. Targets: profile within 1.10x of the bare trace, at least 5x
faster than freeze + tf.profiler on ResNet50, memory growth within 10% of the
weights' bytes.

    python benchmarks/profile_speed.py [--models ResNet50 VGG16] [--reps 3]

It counts with reuse=False, one trace of the whole model: the overhead over
that trace is what it measures (reuse by layer: benchmarks/reuse_speed.py).
"""

import argparse
import gc
import os
import statistics
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras_flops  # noqa: E402
from keras_flops import backends  # noqa: E402
from keras_flops import _compat as compat  # noqa: E402
from keras_flops.core import inputs  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class PeakRSS:
    """Peak RSS growth while the block runs, sampled by a background thread."""

    def __enter__(self):
        self.base = self.peak = rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss())
            time.sleep(0.002)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss())
        self.growth = self.peak - self.base


def bare_trace(model):
    spec = tf.TensorSpec((1,) + tuple(model.inputs[0].shape[1:]), tf.float32)
    return tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)


def run_profile(model):
    return keras_flops.profile(model, warn=False, reuse=False).flops


def freeze_and_tfprof(model):
    frozen = compat.freeze(bare_trace(model))
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    return tf.compat.v1.profiler.profile(frozen.graph, options=opts).total_float_ops


def measure(fn, model, reps):
    times, growth = [], []
    for _ in range(reps):
        gc.collect()  # a collection left over from the step before is not this step's
        with PeakRSS() as mem:
            start = time.perf_counter()
            fn(model)
            times.append(time.perf_counter() - start)
        growth.append(mem.growth)
    return statistics.median(times), max(growth)


def _median(runs):
    return statistics.median(t for t, _ in runs), max(g for _, g in runs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["ResNet50", "VGG16"])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--freeze-reps", type=int, default=1, help="freeze is slow: fewer reps")
    args = parser.parse_args()

    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, CPU, batch 1\n")
    header = f"{'model':<10} {'step':<8} {'time s':>8} {'peak MB':>8} {'of weights':>10}"
    for name in args.models:
        model = getattr(keras.applications, name)(weights=None)
        weight_bytes = sum(w.numpy().nbytes for w in model.weights)
        bare_trace(model)  # warm-up: the first trace in a process pays one-time costs
        run_profile(model)
        # trace and profile alternate, so that a slow spell of a shared
        # machine falls on both; freeze is slow, so it runs fewer times
        pairs = [(measure(bare_trace, model, 1), measure(run_profile, model, 1)) for _ in range(args.reps)]
        rows = {
            "trace": _median([t for t, _ in pairs]),
            "profile": _median([p for _, p in pairs]),
            "freeze": measure(freeze_and_tfprof, model, args.freeze_reps),
        }
        tf_backend = backends.of(model)
        traced = tf_backend.trace(model, inputs.resolve(model, 1, None, tf_backend).specs)
        start = time.perf_counter()
        tf_backend.count(traced)
        count_secs = time.perf_counter() - start
        print(f"{name}: {weight_bytes / 2**20:.0f} MB of weights")
        print(header)
        for step, (secs, grow) in rows.items():
            print(f"{name:<10} {step:<8} {secs:>8.3f} {grow / 2**20:>8.1f} {grow / weight_bytes:>10.1%}")
        t_trace, t_profile, t_freeze = (rows[k][0] for k in ("trace", "profile", "freeze"))
        paired = statistics.median(p[0] / t[0] for t, p in pairs)
        print(
            f"ratios: profile / trace = {t_profile / t_trace:.2f}x of the medians, {paired:.2f}x "
            f"the median of side-by-side pairs (target <= 1.10x); "
            f"freeze+tfprof / profile = {t_freeze / t_profile:.1f}x (target >= 5x); "
            f"profile memory = {rows['profile'][1] / weight_bytes:.1%} of weights (target <= 10%); "
            f"counting alone = {count_secs / t_trace:.1%} of the trace (target <= 10%)\n"
        )


if __name__ == "__main__":
    main()
