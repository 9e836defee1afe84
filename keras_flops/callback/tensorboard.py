"""The FlopsCallback's TensorBoard sink: scalars and the per-layer table."""

from __future__ import annotations

import os
import warnings
from typing import Optional

import tensorflow as tf


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
        def write():
            for key, value in values.items():
                tf.summary.scalar(f"{prefix}{key}", value)

        self._write(write, step)

    def text(self, tag: str, text: str, step: int = 0) -> None:
        self._write(lambda: tf.summary.text(tag, text), step)

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def _write(self, write, step: int) -> None:
        if self.log_dir is None:
            return
        try:
            if self._writer is None:
                self._writer = tf.summary.create_file_writer(self.log_dir)
            with self._writer.as_default(step=step):
                write()
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
