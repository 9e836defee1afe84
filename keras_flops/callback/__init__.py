"""FlopsCallback: FLOPs in the training logs and TensorBoard, measured training
FLOPs, throughput and model FLOPs utilization, on one device or many.

It derives from the Callback of the backend Keras runs on (on TensorFlow
``tf.keras.callbacks.Callback``: Keras 3's, or tf_keras's when
``TF_USE_LEGACY_KERAS=1``, so it fits either kind of model; on JAX
``keras.callbacks.Callback``, and no TensorFlow is imported).

The callback profiles the live model once per fit, with the batch training
really uses: the forward pass (``gflops``, ``gmacs`` per sample) and one
training step, traced and counted (forward with ``training=True``, the
compiled loss, the gradients). After that it only reads a clock at batch ends.
If anything about profiling fails it warns once and training goes on without
its keys: it never stops training. The pieces beside it: the batch it trains
on (:mod:`.batch`), the clock (:mod:`.timing`), TensorBoard (:mod:`.tensorboard`).
"""

from __future__ import annotations

import warnings
from typing import Optional

from keras_flops import _compat, backends
from keras_flops.callback import batch as _batch
from keras_flops.callback.tensorboard import TensorBoardSink
from keras_flops.callback.timing import Throughput
from keras_flops.core import hardware, inputs
from keras_flops.core.report import FlopsReport
from keras_flops.core.assemble import compute_dtype as _compute_dtype
from keras_flops.core.memory import spec_bytes
from keras_flops.footprint import from_report
from keras_flops.profiling import profile, profile_and_trace
from keras_flops.render.text import format_count


class FlopsCallback(backends.callbacks().Callback):
    """Log FLOPs, MACs, achieved TFLOP/s and MFU while a model trains.

    At every epoch end the logs (so History and the progress bar) get:

    - ``gflops``: forward GFLOPs per sample;
    - ``gmacs``: forward GMACs (multiply-accumulates) per sample;
    - ``tflops_per_sec``: achieved TFLOP/s, the measured FLOPs of one training
      step (forward, loss and gradients, on all replicas) x the steps timed /
      their wall time; the first step of a fit, which traces the step, is not
      timed;
    - ``mfu``: model FLOP/s / peak, where the peak (TFLOP/s per device,
      times the devices in sync) is ``peak_tflops`` or known for the local GPU:
      each op at the peak of the dtype its MACs run in (int8 matmuls at the
      int8 peak), the rest at the model's compute dtype's; model FLOPs leave
      out the forward work rematerialization runs again in the backward pass;
    - ``hfu``: ``tflops_per_sec`` / peak, hardware FLOPs utilisation: what
      executes, recompute included (``hfu == mfu`` without rematerialization);
    - ``peak_tflops``: the peak both divided by;
    - ``memory_gib``: the estimated peak memory of one training step per
      replica, in GiB (``keras_flops.memory``: weights, gradients, optimizer
      state, the batch, saved activations, the largest transient);
    - ``peak_memory_gib``: beside it, the most memory in use at once on a GPU
      so far, as the backend reports it (TensorFlow's ``get_memory_info``,
      JAX's ``memory_stats()``); absent without a GPU.

    Under a ``keras.distribution`` (JAX), the step is counted at the global
    batch as XLA partitions it, and the logs add ``device_gflops`` (the most
    loaded device's GFLOPs per step) and ``collective_gb`` (the GB its link
    carries per step, by the ring formulas); ``mfu`` is then that device's
    TFLOP/s over one device's peak.

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
    # thread, and tf_keras need not turn the batch logs into numbers for them
    # (tf_keras reads this attribute of ours).
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
        self.memory = None  # the training step's memory estimate, per replica (a MemoryReport)
        self._reset()

    def _reset(self):
        self._done = False  # profiled, or gave up
        self._spy = _batch.LossSpy()
        self._clock = Throughput()
        self._sink = TensorBoardSink(None)
        self._step_flops = None  # one training step, all replicas, as it executes (recompute included)
        self._model_flops = None  # the same without the recompute of rematerialization: MFU's
        self._device_flops = None  # one training step of one device, under a keras.distribution
        self._device_model_flops = None
        self._replicas = 1  # data-parallel copies of the model, each on its share of the batch
        self._devices = 1  # devices in sync: MFU's peak is theirs together
        self._peak = None  # TFLOP/s per device
        self._peak_device = ""  # the GPU whose peak it is, when detected
        self._epoch = 0

    # ------------------------------------------------------------------ hooks
    def on_train_begin(self, logs=None):
        self._reset()
        try:
            backend = backends.of(self.model)
            siblings = _compat.calling_callbacks(depth=2)
            tensorboard = next((c for c in siblings if isinstance(c, backend.callbacks().TensorBoard)), None)
            distribution = backend.distribution(self.model)
            self._sink = TensorBoardSink(
                self.log_dir, tensorboard, distribution.chief, backend.summary_writer
            )
            self._replicas, self._devices = distribution.replicas, distribution.devices
            self._spy.install(self.model, backend)
            if self.batch_size is not None and self.model.built:
                self._profile()
        except Exception as err:  # never stop training
            self._give_up(err)

    def on_train_batch_begin(self, batch, logs=None):
        # The first step of a fit traces the training function: profile after
        # it, and time from the next one.
        if not self._done and batch >= 1:
            self._profile()
        if self._done and self._clock.started is None and (batch >= 1 or self._epoch > 0):
            self._clock.start(batch)

    def on_train_batch_end(self, batch, logs=None):
        # may run in Keras's callback thread, after the next batch has begun
        if self._clock.step_end(batch) and self.update_freq != "epoch":
            if self._clock.steps % self.update_freq == 0:
                rate = self._clock.window_rate(self._step_flops)
                if rate is not None:
                    self._sink.scalars({"tflops_per_sec": rate}, step=self._clock.steps, prefix="batch_")

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._clock.reset()

    def on_epoch_end(self, epoch, logs=None):
        if not self._done:
            self._profile()  # an epoch of one batch
        if logs is None or self.report is None:
            return
        values = self._values()
        logs.update(values)
        self._sink.scalars(values, step=epoch)

    def on_train_end(self, logs=None):
        self._spy.remove()
        self._sink.flush()

    # ------------------------------------------------------------- profiling
    def _profile(self):
        self._done = True
        self._spy.remove()
        try:
            backends.of(self.model).outside_distribution(self._measure)
            self._announce()
            self._sink.text(
                "keras_flops/layers",
                (self.train_report or self.report).to_markdown(device=self._roofline_device()),
            )
        except Exception as err:  # never stop training
            self._give_up(err)

    def _measure(self):
        """Profile the forward pass and one training step at the replica batch."""
        x_spec, y_spec = self._spy.specs or (None, None)
        backend = backends.of(self.model)
        batch = _batch.replica_batch(self.model, x_spec, self._replicas, self.batch_size, backend)
        shape = _batch.sample_shape(x_spec, backend)
        # under a keras.distribution XLA partitions the whole step: it is counted at the global batch
        replicas = self._replicas
        if backend.partitioner(self.model) is not None:
            batch, replicas = batch * self._replicas, 1
        self.report = profile(self.model, batch_size=batch, input_shape=shape, warn=False)
        if self.training_flops:
            targets = _batch.usable_targets(y_spec, backend)
            profiled = profile_and_trace(
                self.model, batch_size=batch, input_shape=shape, training=True, targets=targets, memory=True
            )
            self.train_report = profiled.report
            self._step_flops = self.train_report.train_flops * replicas
            self._model_flops = self.train_report.model_flops * replicas
            device = self.train_report.per_device
            if device is not None:
                self._device_flops, self._device_model_flops = device.train_flops, device.model_flops
            try:
                labels = inputs.fix_batch(targets, batch, backend)
                batch_bytes = spec_bytes(profiled.inputs.specs, backend.flatten) + (
                    spec_bytes(labels, backend.flatten) if labels is not None else 0
                )
                self.memory = from_report(self.model, self.train_report, batch_bytes)
            except Exception as err:  # an optimizer whose state is not known, say: the FLOPs go on
                warnings.warn(f"FlopsCallback: no memory estimate: {err}", RuntimeWarning, stacklevel=2)
        peak = self._find_peak(backend)
        self._peak, self._peak_device = (peak.tflops, peak.device) if peak else (None, "")
        if self.attach:
            from keras_flops.model_summary import attach

            attach(self.model, batch_size=batch, report=self.report)

    def _roofline_device(self):
        """The detected GPU, for the table's roofline ``bound`` column, if its
        bandwidth is known too."""
        if not self._peak_device:
            return None
        try:
            return hardware.device(
                self._peak_device, _compute_dtype(self.model), backends.of(self.model).tensor_float_32()
            )
        except ValueError:
            return None

    def _find_peak(self, backend) -> Optional[hardware.Peak]:
        """The given peak; else the detected GPU's, each op of the training
        step (the forward pass without it) at the peak of the dtype its MACs
        run in: int8 matmuls at the int8 peak."""
        if self.peak_tflops is not None:
            return hardware.Peak(float(self.peak_tflops), "")
        dtype, tf32 = _compute_dtype(self.model), backend.tensor_float_32()
        peak = hardware.detect_peak(backend.gpu_names(), dtype, tf32)
        counted = self.train_report or self.report
        if peak is None or counted is None:
            return peak
        return hardware.Peak(hardware.effective_peak(peak.device, counted.ops, dtype, tf32), peak.device)

    def _give_up(self, err: Exception):
        self._done = True
        self.report = self.train_report = self.memory = None
        self._spy.remove()
        warnings.warn(
            f"FlopsCallback: profiling {self.model.name!r} failed, so its FLOPs are not logged; "
            f"training goes on. {type(err).__name__}: {err}",
            RuntimeWarning,
            stacklevel=2,
        )

    def _announce(self):
        if not self.verbose:
            return
        r = self.report
        line = (
            f"FlopsCallback: forward {_amount(r.flops_per_sample, 'FLOPs')} = "
            f"{_amount(r.macs_per_sample, 'MACs')} per sample"
        )
        if self._step_flops is not None and self._device_flops is not None:
            mesh = " x ".join(f"{axis} {size}" for axis, size in (self.train_report.mesh or {}).items())
            line += (
                f"; training {_amount(self._step_flops, 'FLOPs')} per step, batch {r.batch_size}, on a mesh "
                f"of {mesh}: the most loaded device {_amount(self._device_flops, 'FLOPs')} and "
                f"{_amount(self.train_report.per_device.collective_bytes, 'bytes')} over its link"
            )
        elif self._step_flops is not None:
            line += (
                f"; training {_amount(self._step_flops, 'FLOPs')} per step "
                f"({self.train_report.train_flops / max(self.train_report.flops, 1):.2f}x forward, "
                f"batch {r.batch_size} per replica x {self._replicas}"
                + (f", on {self._devices} devices" if self._devices != self._replicas else "")
                + ")"
            )
        if self._peak_device:
            line += f"; MFU against {self._peak_device}'s {self._peak:g} TFLOP/s"
        # Keras's progress bar (verbose=1) keeps its line open between steps:
        # start a line of our own rather than glue onto it.
        progress_bar_open = (self.params or {}).get("verbose") == 1
        print(("\n" if progress_bar_open else "") + line, flush=True)

    # ---------------------------------------------------------------- values
    def _values(self) -> dict:
        values = {
            "gflops": self.report.flops_per_sample / 1e9,
            "gmacs": self.report.macs_per_sample / 1e9,
        }
        rate = self._clock.rate(self._step_flops)
        executed, model, peak = self._step_flops, self._model_flops, None
        if self._peak:
            peak = self._peak * self._devices
        if self._device_flops is not None:
            device = self.train_report.per_device
            values["device_gflops"] = self._device_flops / 1e9
            values["collective_gb"] = device.collective_bytes / 1e9
            # the most loaded device's FLOPs per step over its own peak
            executed, model, peak = self._device_flops, self._device_model_flops, self._peak
        if rate is not None:
            values["tflops_per_sec"] = rate
            if peak:
                values["mfu"] = self._clock.rate(model) / peak
                values["hfu"] = self._clock.rate(executed) / peak
                values["peak_tflops"] = peak
        if self.memory is not None:
            values["memory_gib"] = self.memory.peak / 2**30
            try:
                used = backends.of(self.model).peak_memory()
            except Exception:  # a framework that cannot say: no key, never an error
                used = None
            if used is not None:
                values["peak_memory_gib"] = used / 2**30
        return values


def _amount(n: float, unit: str) -> str:
    """``4.09 GFLOPs``, ``660 FLOPs``."""
    text = format_count(n)
    return f"{text}{unit}" if text[-1].isalpha() else f"{text} {unit}"
