"""Training time with and without FlopsCallback, side by side in one process.

Fits the same small CNN on the same random data, alternating runs without and
with the callback. Epochs after the first are the steady state, where the
callback should cost nothing (it only reads a clock at batch ends); the first
epoch carries its one-time profile. Prints the median steady epoch time of
each, their ratio, and the one-time cost.

    python benchmarks/callback_overhead.py [--runs 3] [--epochs 4]
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_flops  # noqa: E402


class EpochTimes(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._start)


def model():
    m = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10, activation="softmax"),
    ])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


def run(with_callback: bool, x, y, epochs: int):
    timer = EpochTimes()
    callbacks = [keras_flops.FlopsCallback(verbose=0), timer] if with_callback else [timer]
    keras.utils.set_random_seed(0)
    model().fit(x, y, batch_size=64, epochs=epochs, callbacks=callbacks, verbose=0)
    return timer.times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--samples", type=int, default=4096)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.random((args.samples, 32, 32, 3), dtype="float32")
    y = rng.integers(0, 10, args.samples)
    steps = -(-args.samples // 64)
    without, with_cb = [], []
    for _ in range(args.runs):
        without.append(run(False, x, y, args.epochs))
        with_cb.append(run(True, x, y, args.epochs))
    steady_without = statistics.median(t for r in without for t in r[1:])
    steady_with = statistics.median(t for r in with_cb for t in r[1:])
    first_without = statistics.median(r[0] for r in without)
    first_with = statistics.median(r[0] for r in with_cb)
    print(f"small CNN, {args.samples} samples, batch 64 ({steps} steps per epoch), "
          f"{args.runs} runs x {args.epochs} epochs each way")
    print(f"steady epoch: without {steady_without:.3f} s, with {steady_with:.3f} s, "
          f"ratio {steady_with / steady_without:.3f}")
    print(f"per step: without {steady_without / steps * 1e3:.2f} ms, with {steady_with / steps * 1e3:.2f} ms")
    print(f"first epoch (the one-time profile): without {first_without:.2f} s, with {first_with:.2f} s, "
          f"+{first_with - first_without:.2f} s")


if __name__ == "__main__":
    main()
