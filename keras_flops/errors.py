"""The errors and warnings keras_flops raises, and how an error from deep
inside a framework is turned into words a user can act on."""

from __future__ import annotations

import re


class UncountedOpsWarning(UserWarning):
    """Some ops may cost FLOPs but have no formula; see ``report.uncounted``."""


class ProfileError(RuntimeError):
    """The model could not be traced; the message says why and what to do."""


class WithoutWeightsError(ValueError):
    """A model could not be built inside ``keras_flops.without_weights()``;
    the message says what to build outside it."""


def first_line(err: BaseException) -> str:
    """The first line of an error's message with text, stripped; "" for none."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else ""


def reason(err: BaseException) -> str:
    """The error's own words, without AutoGraph's staged traceback, Keras's
    argument listing or terminal colours, starting with its type's name."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err))
    kept, in_code = [], False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("File ") or stripped == "in user code:":
            in_code = stripped.startswith("File ")
            continue
        if in_code and line.startswith("        "):  # the source line under a File line
            continue
        in_code = False
        if not stripped or stripped.startswith(("Arguments received", "•")):
            continue
        kept.append(stripped)
    words = " ".join(kept) or type(err).__name__
    if not words.startswith(type(err).__name__):
        words = f"{type(err).__name__}: {words}"
    return words if words.endswith(".") else words + "."
