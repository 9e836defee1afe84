"""Wall-clock throughput of timed training steps, per epoch and per window."""

from __future__ import annotations

import time
from typing import Optional


class Throughput:
    """Counts timed steps and turns them into TFLOP/s.

    ``start()`` begins timing (the first step of a fit, which traces the
    step, is left out by the caller); ``step_end()`` marks a step's end,
    possibly in Keras's callback thread after the next step has begun.
    """

    def __init__(self):
        self.reset()

    def reset(self):
        self.started: Optional[float] = None
        self.first_step = 0
        self.steps = 0
        self.last_end: Optional[float] = None
        self._window = (None, 0)  # (start, steps before it)

    def start(self, step: int) -> None:
        self.started, self.first_step = time.perf_counter(), step
        self._window = (self.started, 0)

    def step_end(self, step: int) -> bool:
        """Mark a step's end; False when the step is not timed."""
        if self.started is None or step < self.first_step:
            return False
        self.steps += 1
        self.last_end = time.perf_counter()
        return True

    def rate(self, step_flops: Optional[int]) -> Optional[float]:
        """TFLOP/s over every timed step since ``start``."""
        return _rate(step_flops, self.started, self.steps, self.last_end)

    def window_rate(self, step_flops: Optional[int]) -> Optional[float]:
        """TFLOP/s over the steps since the last call, and start a new window."""
        start, before = self._window
        rate = _rate(
            step_flops, start if start is not None else self.started, self.steps - before, self.last_end
        )
        self._window = (self.last_end, self.steps)
        return rate


def _rate(step_flops, start, steps, end) -> Optional[float]:
    if step_flops is None or not steps or start is None or end is None or end <= start:
        return None
    return step_flops * steps / (end - start) / 1e12
