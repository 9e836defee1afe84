"""How many times a counted loop runs, from its counter's start, step and limit.

Each backend reads the three numbers from its own loops (a TensorFlow While's
condition and body graphs, a jaxpr's ``while``); the arithmetic is here, once.
"""

from __future__ import annotations

from typing import Optional

COMPARISONS = ("lt", "le", "gt", "ge", "ne")  # counter <, <=, >, >=, != limit


def iterations(comparison: str, start: int, step: int, end: int) -> Optional[int]:
    """Trips of ``for (i = start; i <comparison> end; i += step)``; None when
    the counter never meets the limit (it steps away from it, or by 0)."""
    if step > 0 and comparison in ("lt", "le", "ne"):
        span = end - start + (1 if comparison == "le" else 0)
        if comparison == "ne" and (span < 0 or span % step):
            return None  # steps over the limit: never equal, never stops
        return max(0, -(-span // step))
    if step < 0 and comparison in ("gt", "ge", "ne"):
        span = start - end + (1 if comparison == "ge" else 0)
        if comparison == "ne" and (span < 0 or span % -step):
            return None
        return max(0, -(-span // -step))
    return None
