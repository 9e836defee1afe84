"""The FlopsCallback's TensorBoard sink: scalars and the per-layer table.

It writes with ``tf.summary`` where TensorFlow is installed, else (JAX
without TensorFlow) with the ``tensorboard`` package alone.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
import warnings
from typing import Optional



class TensorBoardSink:
    """Writes into ``log_dir``, or into the ``train`` directory of the fit's
    own ``keras.callbacks.TensorBoard``; only the chief of a multi-worker fit
    writes. On any failure (TensorBoard not installed, a full disk) it warns
    once and stops writing: training goes on."""

    def __init__(self, log_dir: Optional[str], tensorboard=None, strategy=None):
        if log_dir is None and tensorboard is not None:
            log_dir = os.path.join(tensorboard.log_dir, "train")  # where Keras writes train scalars
        self.log_dir = log_dir if _is_chief(strategy) else None
        self._writer = None

    def scalars(self, values: dict, step: int, prefix: str = "epoch_") -> None:
        self._write(lambda w: [w.scalar(f"{prefix}{k}", v, step) for k, v in values.items()])

    def text(self, tag: str, text: str, step: int = 0) -> None:
        self._write(lambda w: w.text(tag, text, step))

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def _write(self, write) -> None:
        if self.log_dir is None:
            return
        try:
            if self._writer is None:
                # tf.summary wherever TensorFlow is installed (the tensorboard
                # package would load it anyway), else the package alone
                kind = _TfWriter if _has_tensorflow() else _EventWriter
                self._writer = kind(self.log_dir)
            write(self._writer)
            self._writer.flush()
        except Exception as err:
            self._writer, self.log_dir = None, None
            warnings.warn(
                f"FlopsCallback: could not write TensorBoard summaries, so it stops trying "
                f"(pip install tensorboard, if it is missing): {err}",
                RuntimeWarning, stacklevel=4,
            )


def _is_chief(strategy) -> bool:
    """Only one worker of a multi-worker fit writes TensorBoard events."""
    extended = getattr(strategy, "extended", None)
    return bool(getattr(extended, "should_save_summary", True))


class _TfWriter:
    """``tf.summary`` into one directory."""

    def __init__(self, log_dir: str):
        import tensorflow as tf

        self._tf = tf
        self._writer = tf.summary.create_file_writer(log_dir)

    def scalar(self, tag: str, value: float, step: int) -> None:
        with self._writer.as_default(step=step):
            self._tf.summary.scalar(tag, value)

    def text(self, tag: str, text: str, step: int) -> None:
        with self._writer.as_default(step=step):
            self._tf.summary.text(tag, text)

    def flush(self) -> None:
        self._writer.flush()


class _EventWriter:
    """The ``tensorboard`` package's event file writer, with the summary
    protos built here: the events ``tf.summary`` writes, without TensorFlow
    (the package's own summary functions import it)."""

    def __init__(self, log_dir: str):
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.plugins.text import metadata as text_metadata
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
        from tensorboard.util import tensor_util

        self._event, self._summary = event_pb2.Event, summary_pb2.Summary
        self._text_metadata, self._tensor = text_metadata, tensor_util.make_tensor_proto
        self._writer = EventFileWriter(log_dir)

    def _add(self, value, step: int) -> None:
        summary = self._summary(value=[value])
        self._writer.add_event(self._event(wall_time=time.time(), step=int(step), summary=summary))

    def scalar(self, tag: str, value: float, step: int) -> None:
        self._add(self._summary.Value(tag=tag, simple_value=float(value)), step)

    def text(self, tag: str, text: str, step: int) -> None:
        metadata = self._text_metadata.create_summary_metadata(display_name=tag, description="")
        tensor = self._tensor(text.encode("utf-8"))
        self._add(self._summary.Value(tag=tag, metadata=metadata, tensor=tensor), step)

    def flush(self) -> None:
        self._writer.flush()


def _has_tensorflow() -> bool:
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"] is not None
    return importlib.util.find_spec("tensorflow") is not None
