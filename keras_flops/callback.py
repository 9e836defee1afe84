"""FlopsCallback: FLOPs in the training logs and TensorBoard, measured training
FLOPs, throughput and model FLOPs utilization, on one device or many.

It derives from ``tf.keras.callbacks.Callback``: Keras 3's Callback, or
tf_keras's when ``TF_USE_LEGACY_KERAS=1``, so it fits either kind of model.

The callback profiles the live model once per fit, with the batch training
really uses: the forward pass (``gflops``, ``gmacs`` per sample) and one
training step, traced and counted (forward with ``training=True``, the
compiled loss, the gradients). After that it only reads a clock at batch ends.
If anything about profiling fails it warns once and training goes on without
its keys: it never stops training.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
import warnings
from typing import Optional

import tensorflow as tf

from keras_flops import hardware
from keras_flops.profiling import profile
from keras_flops.report import FlopsReport, format_count


class FlopsCallback(tf.keras.callbacks.Callback):
    """Log FLOPs, MACs, achieved TFLOP/s and MFU while a model trains.

    At every epoch end the logs (so History and the progress bar) get:

    - ``gflops``: forward GFLOPs per sample;
    - ``gmacs``: forward GMACs (multiply-accumulates) per sample;
    - ``tflops_per_sec``: achieved TFLOP/s, the measured FLOPs of one training
      step (forward, loss and gradients, on all replicas) x the steps timed /
      their wall time; the first step of a fit, which traces the step, is not
      timed;
    - ``mfu``: ``tflops_per_sec`` / peak, where the peak (TFLOP/s per device,
      times the devices in sync) is ``peak_tflops`` or known for the local GPU
      and the model's compute dtype.

    Args:
      peak_tflops: peak TFLOP/s of one device, for ``mfu``; by default detected
        for known GPUs (H100, H200, A100, V100, L4, T4).
      log_dir: write the values as TensorBoard scalars here (and the per-layer
        table as text). With a ``keras.callbacks.TensorBoard`` in the same fit
        and no ``log_dir``, they go into its ``train`` directory.
      update_freq: ``"epoch"``, or N to also write ``tflops_per_sec`` every N
        batches.
      batch_size: the global batch size, if the data does not say it; then the
        model is profiled at train begin.
      training_flops: also count one training step (needed for
        ``tflops_per_sec`` and ``mfu``).
      attach: make ``model.summary()`` show the FLOPs columns afterwards.
      verbose: print one line with the counts when the profile is made.
    """

    # Batch hooks only read a clock: Keras 3 may run them in its callback
    # thread, and tf_keras need not turn the batch logs into numbers for them.
    async_safe = True
    _supports_tf_logs = True

    def __init__(
        self,
        peak_tflops: Optional[float] = None,
        log_dir: Optional[str] = None,
        update_freq="epoch",
        batch_size: Optional[int] = None,
        training_flops: bool = True,
        attach: bool = True,
        verbose: int = 1,
    ):
        super().__init__()
        if update_freq != "epoch" and not (isinstance(update_freq, int) and update_freq > 0):
            raise ValueError(f"update_freq must be 'epoch' or a positive int, got {update_freq!r}.")
        self.peak_tflops = peak_tflops
        self.log_dir = log_dir
        self.update_freq = update_freq
        self.batch_size = batch_size
        self.training_flops = training_flops
        self.attach = attach
        self.verbose = verbose
        self.report: Optional[FlopsReport] = None  # forward, per replica batch
        self.train_report: Optional[FlopsReport] = None  # one training step, per replica
        self._reset()

    # ------------------------------------------------------------------ state
    def _reset(self):
        self._done = False  # profiled, or gave up
        self._specs = None  # (x, y) specs seen by compute_loss while the step traced
        self._spy_installed = False
        self._step_flops = None  # one training step, all replicas
        self._replicas = 1
        self._writer = None
        self._peak = None
        self._epoch = 0
        self._start = None
        self._first_timed = 0
        self._steps = 0
        self._last_end = None
        self._window = (None, 0)

    @property
    def _strategy(self):
        return getattr(self.model, "distribute_strategy", None) or tf.distribute.get_strategy()

    # ------------------------------------------------------------------ hooks
    def on_train_begin(self, logs=None):
        self._reset()
        self._tensorboard = _find_tensorboard(sys._getframe(1))
        try:
            self._replicas = int(self._strategy.num_replicas_in_sync)
            self._install_spy()
            if self.batch_size is not None and self.model.built:
                self._profile()
        except Exception as err:  # never stop training
            self._give_up(err)

    def on_train_batch_begin(self, batch, logs=None):
        # The first step of a fit traces the training function: profile after
        # it, and time from the next one.
        if not self._done and batch >= 1:
            self._profile()
        if self._done and self._start is None and (batch >= 1 or self._epoch > 0):
            self._start, self._first_timed = time.perf_counter(), batch
            self._window = (self._start, 0)

    def on_train_batch_end(self, batch, logs=None):
        # may run in Keras's callback thread, after the next batch has begun
        if self._start is None or batch < self._first_timed:
            return
        self._steps += 1
        self._last_end = time.perf_counter()
        if self.update_freq != "epoch" and self._steps % self.update_freq == 0:
            self._write_window()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._start, self._steps, self._last_end = None, 0, None

    def on_epoch_end(self, epoch, logs=None):
        if not self._done:
            self._profile()  # an epoch of one batch
        if logs is None or self.report is None:
            return
        values = self._values()
        logs.update(values)
        self._write_scalars(values, step=epoch)

    def on_train_end(self, logs=None):
        self._remove_spy()
        if self._writer is not None:
            self._writer.flush()

    # ------------------------------------------------------------- profiling
    def _install_spy(self):
        """Wrap this model's compute_loss (an instance attribute, removed again)
        to see the x and y specs Keras traces the training step with."""
        model = self.model
        bound = model.compute_loss
        callback = self

        @functools.wraps(bound)
        def compute_loss(*args, **kwargs):
            if callback._specs is None:
                x = kwargs.get("x", args[0] if args else None)
                y = kwargs.get("y", args[1] if len(args) > 1 else None)
                callback._specs = (_spec_of(x), _spec_of(y))
            return bound(*args, **kwargs)

        self._had_own = "compute_loss" in vars(model)
        self._own = vars(model).get("compute_loss")
        object.__setattr__(model, "compute_loss", compute_loss)
        self._spy_installed = True

    def _remove_spy(self):
        if self._spy_installed:
            if self._had_own:
                object.__setattr__(self.model, "compute_loss", self._own)
            else:
                vars(self.model).pop("compute_loss", None)
            self._spy_installed = False

    def _profile(self):
        self._done = True
        self._remove_spy()
        try:
            _outside_strategy_scope(self._measure)
            self._announce(self.report.batch_size)
            self._write_table()
        except Exception as err:  # never stop training
            self._give_up(err)

    def _measure(self):
        """Profile the forward pass and one training step at the replica batch."""
        batch = self._replica_batch()
        x_spec, y_spec = self._specs or (None, None)
        shape = _sample_shape(x_spec)
        self.report = profile(self.model, batch_size=batch, input_shape=shape, warn=False)
        if self.training_flops:
            self.train_report = profile(
                self.model, batch_size=batch, input_shape=shape, training=True,
                targets=_usable_targets(y_spec), warn=False,
            )
            self._step_flops = self.train_report.train_flops * self._replicas
        self._peak = self._find_peak()
        if self.attach:
            from keras_flops.summary import attach

            attach(self.model, batch_size=batch, report=self.report)

    def _replica_batch(self) -> int:
        if self.batch_size is not None:
            return max(1, self.batch_size // self._replicas)
        x_spec = self._specs[0] if self._specs else None
        static = _static_batch(x_spec)
        if static:
            return static
        counted = _samples_seen(self.model)
        if counted:
            per_call = getattr(self.model, "steps_per_execution", 1)  # a variable in tf_keras
            per_call = int(per_call.numpy() if hasattr(per_call, "numpy") else per_call or 1)
            return max(1, counted // per_call // self._replicas)
        raise ValueError(
            "could not tell the batch size from the data; pass FlopsCallback(batch_size=...)"
        )

    def _give_up(self, err: Exception):
        self._done = True
        self.report = self.train_report = None
        self._remove_spy()
        warnings.warn(
            f"FlopsCallback: profiling {self.model.name!r} failed, so its FLOPs are not logged; "
            f"training goes on. {type(err).__name__}: {err}",
            RuntimeWarning,
            stacklevel=2,
        )

    def _announce(self, batch: int):
        if not self.verbose:
            return
        r = self.report
        line = (
            f"FlopsCallback: forward {_amount(r.flops_per_sample, 'FLOPs')} = "
            f"{_amount(r.macs_per_sample, 'MACs')} per sample"
        )
        if self._step_flops is not None:
            line += (
                f"; training {_amount(self._step_flops, 'FLOPs')} per step "
                f"({self.train_report.train_flops / max(self.train_report.flops, 1):.2f}x forward, "
                f"batch {batch} per replica x {self._replicas})"
            )
        print(line, flush=True)

    # ---------------------------------------------------------------- values
    def _values(self) -> dict:
        values = {
            "gflops": self.report.flops_per_sample / 1e9,
            "gmacs": self.report.macs_per_sample / 1e9,
        }
        rate = self._rate(self._start, self._steps, self._last_end)
        if rate is not None:
            values["tflops_per_sec"] = rate
            if self._peak:
                values["mfu"] = rate / (self._peak * self._replicas)
        return values

    def _rate(self, start, steps, end) -> Optional[float]:
        if self._step_flops is None or not steps or start is None or end is None or end <= start:
            return None
        return self._step_flops * steps / (end - start) / 1e12

    def _find_peak(self) -> Optional[float]:
        if self.peak_tflops is not None:
            return float(self.peak_tflops)
        policy = getattr(self.model, "dtype_policy", None)
        dtype = getattr(policy, "compute_dtype", None) or "float32"
        return hardware.detect_peak_tflops(str(dtype))[0]

    # ----------------------------------------------------------- TensorBoard
    def _summary_writer(self):
        if self._writer is None:
            directory = self.log_dir
            if directory is None and self._tensorboard is not None:
                tb = self._tensorboard
                directory = getattr(tb, "_train_dir", None) or os.path.join(tb.log_dir, "train")
            if directory is None or not _is_chief(self._strategy):
                return None
            self._writer = tf.summary.create_file_writer(directory)
        return self._writer

    def _write_scalars(self, values: dict, step: int, prefix: str = "epoch_"):
        def write():
            for key, value in values.items():
                tf.summary.scalar(f"{prefix}{key}", value)

        self._write(write, step)

    def _write(self, write, step: int):
        """Run ``write`` under the summary writer, if there is one; on any
        failure (TensorBoard not installed, a full disk) warn once and stop."""
        try:
            writer = self._summary_writer()
            if writer is None:
                return
            with writer.as_default(step=step):
                write()
            writer.flush()
        except Exception as err:
            self._writer, self.log_dir, self._tensorboard = None, None, None
            warnings.warn(
                f"FlopsCallback: could not write TensorBoard summaries, so it stops trying "
                f"(pip install tensorboard, if it is missing): {err}",
                RuntimeWarning, stacklevel=3,
            )

    def _write_window(self):
        start, steps = self._window
        start = start if start is not None else self._start
        rate = self._rate(start, self._steps - steps, self._last_end)
        self._window = (self._last_end, self._steps)
        if rate is not None:
            step = self._steps  # batches timed so far in this epoch
            self._write_scalars({"tflops_per_sec": rate}, step=step, prefix="batch_")

    def _write_table(self):
        report = self.train_report or self.report
        self._write(lambda: tf.summary.text("keras_flops/layers", report.to_markdown()), step=0)


# --------------------------------------------------------------------------
# helpers


def _find_tensorboard(frame):
    """The keras.callbacks.TensorBoard of this fit, if any: the CallbackList
    calling on_train_begin is the caller's ``self``."""
    callback_list = frame.f_locals.get("self") if frame is not None else None
    for cb in getattr(callback_list, "callbacks", None) or ():
        if isinstance(cb, tf.keras.callbacks.TensorBoard):
            return cb
    return None


def _outside_strategy_scope(fn):
    """Run ``fn`` where no distribution strategy's scope is entered: tf_keras
    calls callbacks inside the scope, where a gradient tape cannot read
    distributed variables. A scope is per thread, so a fresh thread has none."""
    if not tf.distribute.has_strategy():
        return fn()
    result = {}

    def run():
        try:
            result["value"] = fn()
        except BaseException as err:  # re-raised in the caller's thread
            result["error"] = err

    thread = threading.Thread(target=run, name="keras_flops-profile")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


def _is_chief(strategy) -> bool:
    """Only one worker of a multi-worker fit writes TensorBoard events."""
    extended = getattr(strategy, "extended", None)
    return bool(getattr(extended, "should_save_summary", True))


def _spec_of(value):
    if value is None:
        return None
    return tf.nest.map_structure(
        lambda t: tf.TensorSpec(t.shape, t.dtype) if hasattr(t, "shape") and hasattr(t, "dtype") else None,
        value,
    )


def _static_batch(spec) -> Optional[int]:
    for s in tf.nest.flatten(spec) if spec is not None else ():
        if s is not None and s.shape.rank and s.shape[0] is not None:
            return int(s.shape[0])
    return None


def _sample_shape(spec):
    """Per-sample shapes of the traced inputs, for models with unknown dims."""
    if spec is None:
        return None
    flat = [s for s in tf.nest.flatten(spec) if s is not None]
    if len(flat) != 1 or flat[0].shape.rank is None:
        return None
    shape = tuple(flat[0].shape.as_list()[1:])
    return shape if all(d is not None for d in shape) else None


def _usable_targets(spec):
    """The label specs Keras traced with, if every one is known (profile()
    fixes their batch dim), else None: labels are then made for the loss."""
    flat = tf.nest.flatten(spec) if spec is not None else [None]
    if any(s is None or s.shape.rank is None for s in flat):
        return None
    return spec


def _samples_seen(model) -> Optional[int]:
    """Samples the loss has been averaged over so far (all replicas): after the
    first step, that step's global batch. One read, one device sync, once."""
    tracker = getattr(model, "_loss_tracker", None)  # Keras 3
    if tracker is None:
        tracker = getattr(getattr(model, "compiled_loss", None), "_total_loss_mean", None)  # tf_keras
    count = getattr(tracker, "count", None)
    try:
        return int(count.numpy()) if count is not None else None
    except Exception:  # pragma: no cover
        return None


def _amount(n: float, unit: str) -> str:
    """``4.09 GFLOPs``, ``660 FLOPs``."""
    text = format_count(n)
    return f"{text}{unit}" if text[-1].isalpha() else f"{text} {unit}"
