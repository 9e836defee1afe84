"""How cost grows: one profile per value of the sequence length, the batch
size or the image size, and per layer the polynomial that fits the counts."""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from keras_flops import backends
from keras_flops.core import inputs
from keras_flops.core.report import FlopsReport
from keras_flops.profiling import profile

TOTAL = "(total)"
PARAMETERS = ("sequence_length", "batch_size", "image_size")


@dataclasses.dataclass(frozen=True)
class Sweep:
    """Reports for each value of one parameter (``parameter``, ``values``)."""

    parameter: str
    values: Tuple[int, ...]
    reports: Tuple[FlopsReport, ...]

    def to_dataframe(self, depth: Optional[int] = None) -> pd.DataFrame:
        """Rows: the values; columns ``(layer, "flops" | "macs")``, the total first
        (``"(total)"``); ``depth=1`` sums nested layers into their top-level one."""
        columns = {
            (TOTAL, "flops"): [r.flops for r in self.reports],
            (TOTAL, "macs"): [r.macs for r in self.reports],
        }
        tables = [r.to_dataframe(depth=depth) for r in self.reports]
        layers = list(dict.fromkeys(layer for table in tables for layer in table.index))
        for layer in layers:
            for measure in ("flops", "macs"):
                columns[(layer, measure)] = [int(table[measure].get(layer, 0)) for table in tables]
        df = pd.DataFrame(columns, index=pd.Index(self.values, name=self.parameter))
        df.columns = pd.MultiIndex.from_tuples(df.columns, names=["layer", "measure"])
        return df

    def fit(self, measure: str = "flops", depth: Optional[int] = None) -> pd.DataFrame:
        """Per layer (and ``"(total)"``): the ``constant``, ``linear`` and
        ``quadratic`` coefficients of the polynomial in the swept value that
        gives ``measure`` ("flops" or "macs"), fitted by least squares (exact
        for costs that are such polynomials, as a transformer's are in its
        sequence length), and ``grows``: "quadratically", "linearly" or "not".
        Three values or more fit a quadratic; two, a line."""
        if measure not in ("flops", "macs"):
            raise ValueError(f"measure must be 'flops' or 'macs', got {measure!r}.")
        if len(self.values) < 2:
            raise ValueError("fit() needs a sweep over at least two values.")
        df = self.to_dataframe(depth=depth).xs(measure, axis=1, level="measure")
        x = np.asarray(self.values, dtype=float)
        degree = min(2, len(self.values) - 1)
        rows = {}
        for layer in df.columns:
            y = df[layer].to_numpy(dtype=float)
            coefficients = np.polyfit(x, y, degree)[::-1]  # constant first
            constant, linear, quadratic = (list(coefficients) + [0.0, 0.0])[:3]
            scale = max(1.0, float(np.abs(y).max()))
            grows = (
                "quadratically"
                if abs(quadratic) * x.max() ** 2 > 1e-6 * scale
                else "linearly"
                if abs(linear) * x.max() > 1e-6 * scale
                else "not"
            )
            rows[layer] = {
                "constant": _clean(constant),
                "linear": _clean(linear),
                "quadratic": _clean(quadratic),
                "grows": grows,
            }
        fitted = pd.DataFrame.from_dict(rows, orient="index")
        fitted.index.name = "layer"
        return fitted

    def quadratic_layers(self, depth: Optional[int] = None) -> list:
        """The layers whose FLOPs grow quadratically with the swept value."""
        fitted = self.fit(depth=depth)
        return [
            layer
            for layer in fitted.index
            if layer != TOTAL and fitted.loc[layer, "grows"] == "quadratically"
        ]

    def plot(self, top: int = 5, measure: str = "flops", path=None, ax=None):
        """The total and the ``top`` costliest layers against the swept value."""
        from keras_flops.render import plot

        return plot.sweep_lines(self, top=top, measure=measure, path=path, ax=ax)


def _clean(value: float) -> float:
    """A fitted coefficient, rounded where it is an integer up to float error."""
    rounded = round(value)
    return float(rounded) if abs(value - rounded) < 1e-6 * max(1.0, abs(value)) else float(value)


def sweep(
    model,
    *,
    sequence_length: Optional[Sequence[int]] = None,
    batch_size: Optional[Sequence[int]] = None,
    image_size: Optional[Sequence[int]] = None,
    input_shape=None,
    counting: str = "full",
) -> Sweep:
    """Profile ``model`` once per value of one parameter:

    - ``sequence_length``: every unknown dim of every input set to the value
      (a language model's token_ids and padding_mask, say);
    - ``batch_size``: the batch;
    - ``image_size``: the height and width of every image input (rank 3, channels last)
      that leaves them unknown.

    ``input_shape`` fixes any other unknown dims, as in ``profile``.
    """
    swept = {
        n: v
        for n, v in (
            ("sequence_length", sequence_length),
            ("batch_size", batch_size),
            ("image_size", image_size),
        )
        if v is not None
    }
    if len(swept) != 1:
        raise ValueError(f"sweep over one of {PARAMETERS}: give exactly one, got {sorted(swept) or 'none'}.")
    ((parameter, values),) = swept.items()
    values = tuple(values)
    if not values or any(
        isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in values
    ):
        raise ValueError(f"{parameter} must be a list of positive ints, got {values!r}.")
    reports = []
    for value in values:
        value = int(value)
        if parameter == "batch_size":
            reports.append(
                profile(model, batch_size=value, input_shape=input_shape, counting=counting, warn=False)
            )
            continue
        if parameter == "sequence_length":
            shape = inputs.filled_shapes(model, value, input_shape, backends.of(model))
        else:
            shape = inputs.filled_shapes(
                model, value, input_shape, backends.of(model), only_rank=3, dims=(0, 1)
            )
        reports.append(profile(model, input_shape=shape, counting=counting, warn=False))
    return Sweep(parameter, tuple(int(v) for v in values), tuple(reports))
