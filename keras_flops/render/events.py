"""TensorBoard events written with the ``tensorboard`` package alone, no TensorFlow.

The package's own ``EventFileWriter`` opens its file through
``tensorboard.compat.tf``, which imports TensorFlow wherever it is
installed; this writer opens a local file itself and frames each event with
the package's ``RecordWriter``, as ``tf.summary`` writes it.
"""

from __future__ import annotations

import itertools
import os
import socket
import time

_FILES = itertools.count()


class EventWriter:
    """An event file in ``log_dir`` (a local directory), with the summary
    protos built here: the events ``tf.summary`` writes."""

    def __init__(self, log_dir: str):
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.plugins.text import metadata as text_metadata
        from tensorboard.summary.writer.record_writer import RecordWriter
        from tensorboard.util import tensor_util

        self._event, self._summary = event_pb2.Event, summary_pb2.Summary
        self._text_metadata, self._tensor = text_metadata, tensor_util.make_tensor_proto
        os.makedirs(log_dir, exist_ok=True)
        name = (
            f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}.{next(_FILES)}"
        )
        self._writer = RecordWriter(open(os.path.join(log_dir, name), "wb"))
        self._write(self._event(wall_time=time.time(), file_version="brain.Event:2"))

    def _write(self, event) -> None:
        self._writer.write(event.SerializeToString())

    def _add(self, value, step: int) -> None:
        summary = self._summary(value=[value])
        self._write(self._event(wall_time=time.time(), step=int(step), summary=summary))

    def scalar(self, tag: str, value: float, step: int) -> None:
        self._add(self._summary.Value(tag=tag, simple_value=float(value)), step)

    def text(self, tag: str, text: str, step: int) -> None:
        metadata = self._text_metadata.create_summary_metadata(display_name=tag, description="")
        tensor = self._tensor(text.encode("utf-8"))
        self._add(self._summary.Value(tag=tag, metadata=metadata, tensor=tensor), step)

    def flush(self) -> None:
        self._writer.flush()
