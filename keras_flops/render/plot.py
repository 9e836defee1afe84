"""Reports as matplotlib figures (an optional extra: ``keras-flops[plot]``)."""

from __future__ import annotations

from keras_flops.render.text import format_count, top_rows


def _pyplot(headless: bool):
    try:
        import matplotlib

        if headless:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError("report.plot() needs matplotlib: pip install 'keras-flops[plot]'.") from err
    return plt


def bars(report, top: int = 10, path=None, by: str = "layer", ax=None):
    """Horizontal bars of the ``top`` layers (or op types) by FLOPs, each
    labelled with its share; shown, or written to ``path``. Returns the Figure."""
    plt = _pyplot(headless=path is not None and ax is None)
    df = top_rows(report.to_dataframe(by=by), top).iloc[::-1]  # largest at the top
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 0.4 * len(df) + 1.2))
    else:
        fig = ax.figure
    labels = [str(i) for i in df.index]
    drawn = ax.barh(labels, df["flops"], color="tab:blue")
    for bar, share, flops in zip(drawn, df["share"], df["flops"]):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2,
                f" {format_count(flops)} ({share:.1%})", va="center", fontsize=8)
    ax.set_xlabel(f"FLOPs for a batch of {report.batch_size}")
    ax.set_title(f"{report.model_name}: top {len(df)} {'layers' if by == 'layer' else 'op types'} "
                 f"of {format_count(report.flops)} FLOPs")
    ax.margins(x=0.25)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig


def sweep_lines(sweep, top: int = 5, measure: str = "flops", path=None, ax=None):
    """The total and the ``top`` costliest layers (at the largest value)
    against the swept value, counts in K, M, G, T. Returns the Figure."""
    from matplotlib.ticker import EngFormatter

    plt = _pyplot(headless=path is not None and ax is None)
    df = sweep.to_dataframe().xs(measure, axis=1, level="measure")
    layers = df.drop(columns="(total)").iloc[-1].sort_values(ascending=False).index[:top]
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 5))
    else:
        fig = ax.figure
    ax.plot(df.index, df["(total)"], marker="o", linewidth=2, label="(total)")
    for layer in layers:
        ax.plot(df.index, df[layer], marker=".", label=str(layer))
    ax.yaxis.set_major_formatter(EngFormatter())
    ax.set_xlabel(sweep.parameter)
    ax.set_ylabel(measure.upper() if measure == "macs" else "FLOPs")
    ax.set_title(f"{sweep.reports[0].model_name}: {measure} against {sweep.parameter}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig
