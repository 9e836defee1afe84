"""The FlopsCallback's TensorBoard sink: scalars and the per-layer table.

It writes with the backend's writer: ``tf.summary`` on TensorFlow, the
``tensorboard`` package alone on every other backend
(:mod:`keras_flops.render.events`), so that no other backend imports TensorFlow.
"""

from __future__ import annotations

import os
import warnings
from typing import Callable, Optional


class TensorBoardSink:
    """Writes into ``log_dir``, or into the ``train`` directory of the fit's
    own ``keras.callbacks.TensorBoard``; only the chief of a multi-worker fit
    writes. On any failure (TensorBoard not installed, a full disk) it warns
    once and stops writing: training goes on."""

    def __init__(
        self, log_dir: Optional[str], tensorboard=None, chief: bool = True, writer: Optional[Callable] = None
    ):
        if log_dir is None and tensorboard is not None:
            log_dir = os.path.join(tensorboard.log_dir, "train")  # where Keras writes train scalars
        self.log_dir = log_dir if chief else None
        self._make_writer = writer  # the backend's: log_dir -> writer
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
                self._writer = self._make_writer(self.log_dir)
            write(self._writer)
            self._writer.flush()
        except Exception as err:
            self._writer, self.log_dir = None, None
            warnings.warn(
                f"FlopsCallback: could not write TensorBoard summaries, so it stops trying "
                f"(pip install tensorboard, if it is missing): {err}",
                RuntimeWarning,
                stacklevel=4,
            )
