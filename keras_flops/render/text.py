"""Reports as text: readable units, tables, totals, and the uncounted-ops message."""

from __future__ import annotations

import collections
from typing import Optional

import pandas as pd

_UNITS = ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "K"))


def format_count(n: float) -> str:
    """A count in readable units with 3 significant digits: 7755299312 -> '7.76 G'."""
    for scale, unit in _UNITS:
        if abs(n) >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.3g}" if isinstance(n, float) and n != int(n) else str(int(n))


def count_text(n: int, raw: bool = False) -> str:
    """``7.76 G``, or ``7,755,299,312`` with ``raw``."""
    return f"{n:,}" if raw else format_count(n)


def shape_text(shape) -> str:
    if shape is None:
        return ""
    if isinstance(shape, list):
        return ", ".join(shape_text(s) for s in shape)
    return str(tuple(shape))


def top_rows(df: pd.DataFrame, n: Optional[int]) -> pd.DataFrame:
    """The ``n`` rows with the most FLOPs, ties in table order (all for None)."""
    if n is None:
        return df
    return df.sort_values("flops", ascending=False, kind="stable").head(n)


def totals(report, style: str = "line", raw: bool = False) -> str:
    """The totals, in one of three places' words:

    - ``"line"``: ``Total FLOPs: 7.76 G (7,755,299,312) = 3.86 G MACs (3,857,973,248) for a batch of 1``
    - ``"markdown"``: ``**Total FLOPs:** 7.76 G (7,755,299,312), **MACs:** ..., for a batch of 1``
    - ``"footer"`` (the summary's): ``Total FLOPs: 7.76 G (3.86 G MACs) for a batch of 1``
    """
    f, m, batch = report.flops, report.macs, f"for a batch of {report.batch_size}"
    if style == "line":
        return f"Total FLOPs: {format_count(f)} ({f:,}) = {format_count(m)} MACs ({m:,}) {batch}"
    if style == "markdown":
        return f"**Total FLOPs:** {format_count(f)} ({f:,}), **MACs:** {format_count(m)} ({m:,}), {batch}"
    if style == "footer":
        return f"Total FLOPs: {count_text(f, raw)} ({count_text(m, raw)} MACs) {batch}"
    raise ValueError(f"style must be 'line', 'markdown' or 'footer', got {style!r}.")


def readable(report, by: str = "layer", top: Optional[int] = None, raw_counts: bool = False) -> pd.DataFrame:
    """``report.to_dataframe(by)`` with counts in K, M, G, T (or exact with
    ``raw_counts``), shapes as text and shares in percent."""
    df = top_rows(report.to_dataframe(by=by), top)
    out = df.copy()
    for column in ("flops", "macs", "bytes", "min_bytes", "params", "count"):
        if column in out:
            out[column] = [count_text(v, raw_counts) for v in out[column]]
    if "output_shape" in out:
        out["output_shape"] = [shape_text(s) for s in out["output_shape"]]
    out["share"] = [f"{v:.1%}" for v in df["share"]]
    if "intensity" in out:
        out["intensity"] = ["" if v != v else f"{v:.3g}" for v in df["intensity"]]
    return out


def markdown(
    report, by: str = "layer", top: Optional[int] = None, raw_counts: bool = False, device=None
) -> str:
    table = readable(report, by=by, top=top, raw_counts=raw_counts)
    if device is not None and by == "layer":
        table["bound"] = report.roofline(device)["bound"].reindex(table.index)
    return table.to_markdown() + "\n\n" + totals(report, "markdown") + "\n"


def report_text(report) -> str:
    """What ``print(report)`` shows: the inputs, the per-layer table, the
    totals, the notes and the uncounted ops."""
    df = report.to_dataframe()
    shown = pd.DataFrame(
        {
            "Class": df["class"],
            "Output shape": [shape_text(s) for s in df["output_shape"]],
            "Params": [f"{p:,}" for p in df["params"]],
            "FLOPs": [f"{f:,}" for f in df["flops"]],
            "MACs": [f"{m:,}" for m in df["macs"]],
            "Share": [f"{s:.1%}" for s in df["share"]],
        },
        index=df.index.rename("Layer"),
    )
    inputs = ", ".join(f"{name} {shape}" for name, shape in report.input_shapes)
    lines = [
        f"Model {report.model_name!r}, a batch of {report.batch_size}, inputs: {inputs}",
        shown.to_string(),
        totals(report, "line"),
    ]
    if report.time_ms is not None:
        lines.append(measured_line(report))
    lines += list(report.notes)
    if report.uncounted:
        lines.append(uncounted_summary(report))
    return "\n".join(lines)


def measured_line(report, top: int = 3) -> str:
    """The measured forward time, what its layers sum to, and the slowest layers."""
    total = sum(median for _, median, _ in report.layer_times)
    slowest = sorted(report.layer_times, key=lambda t: t[1], reverse=True)[:top]
    listed = ", ".join(f"{layer} {median:.3g} ms ({median / total:.0%})" for layer, median, _ in slowest)
    return (
        f"Measured forward: {report.time_ms:.3g} ms (median); its layers sum to {total:.3g} ms "
        f"({total / report.time_ms:.2f}x); slowest: {listed}"
    )


def uncounted_summary(report) -> str:
    """One paragraph naming the uncounted op types, or "" when there are none."""
    if not report.uncounted:
        return ""
    by_type = collections.Counter(u.op_type for u in report.uncounted)
    parts = ", ".join(f"{t} x{n}" for t, n in by_type.most_common())
    first = report.uncounted[0]
    return (
        f"keras_flops: {len(report.uncounted)} op(s) in {report.model_name!r} may cost "
        f"FLOPs but were not counted ({parts}); e.g. {first.node} in layer "
        f"{first.layer!r}: {first.reason}. They are listed in report.uncounted; "
        "keras_flops.register_flops(op_type) adds a formula."
    )
