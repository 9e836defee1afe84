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
        ax.text(
            bar.get_width(),
            bar.get_y() + bar.get_height() / 2,
            f" {format_count(flops)} ({share:.1%})",
            va="center",
            fontsize=8,
        )
    from matplotlib.ticker import EngFormatter

    ax.xaxis.set_major_formatter(EngFormatter())
    ax.set_xlabel(f"FLOPs for a batch of {report.batch_size}")
    ax.set_title(
        f"{report.model_name}: top {len(df)} {'layers' if by == 'layer' else 'op types'} "
        f"of {format_count(report.flops)} FLOPs"
    )
    ax.margins(x=0.25)
    fig.tight_layout()
    return _finish(fig, plt, path)


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
    return _finish(fig, plt, path)


def roofline(report, device, path=None, ax=None, traffic: str = "min"):
    """The classic roofline, log-log: FLOP/s against FLOPs per byte, the
    device's roof (bandwidth x intensity up to the ridge, then the peak), and
    one point per layer at its intensity (of ``traffic``: compulsory bytes by
    default, or "unfused") and roofline-attainable rate, sized by its FLOPs,
    coloured by its bound. Returns the Figure."""
    df = report.roofline(device, traffic=traffic)
    colors = {"memory": ("tab:red", "memory-bound layer"), "compute": ("tab:blue", "compute-bound layer")}
    return _roofline([(df, None, colors)], df.attrs["device"], f"{report.model_name}", path, ax, traffic)


def generation_roofline(gen, device, path=None, ax=None, traffic: str = "min"):
    """A generation's roofline: one point per layer and phase, the prefill's
    (circles) and one decode step's (triangles), each coloured by its bound.
    Decode's points sit far left of prefill's: the same weights, read for one
    token. Returns the Figure."""
    phases = []
    for part, marker, name in ((gen.prefill, "o", "prefill"), (gen.decode, "^", "decode")):
        colors = {
            "memory": ("tab:red", f"{name}, memory-bound"),
            "compute": ("tab:blue", f"{name}, compute-bound"),
        }
        phases.append((part.roofline(device, traffic=traffic), marker, colors))
    return _roofline(
        phases, phases[0][0].attrs["device"], f"{gen.model_name}: prefill and decode", path, ax, traffic
    )


def _roofline(phases, dev, title, path, ax, traffic):
    import numpy as np
    from matplotlib.ticker import EngFormatter

    plt = _pyplot(headless=path is not None and ax is None)
    column = "min_bytes" if traffic == "min" else "bytes"
    phases = [(df[(df["flops"] > 0) & (df[column] > 0)], marker, colors) for df, marker, colors in phases]
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 5.5))
    else:
        fig = ax.figure
    peak, bandwidth = dev.peak_tflops * 1e12, dev.bandwidth_gbps * 1e9
    intensities = [i for df, _, _ in phases for i in df["intensity"]]
    low = min([dev.ridge / 100] + [i / 2 for i in intensities])
    high = max([dev.ridge * 100] + [i * 2 for i in intensities])
    x = np.geomspace(low, high, 200)
    ax.plot(
        x,
        np.minimum(peak, bandwidth * x),
        color="black",
        linewidth=1.5,
        label=f"{dev.name}: {dev.peak_tflops:g} TFLOP/s, {dev.bandwidth_gbps:g} GB/s",
    )
    ax.axvline(dev.ridge, color="gray", linestyle=":", linewidth=1)
    largest = max([df["flops"].max() for df, _, _ in phases if len(df)] or [1])
    layers = 0
    for df, marker, colors in phases:
        layers += len(df)
        attainable = np.minimum(df["peak_tflops"] * 1e12, bandwidth * df["intensity"])
        sizes = 20 + 300 * df["flops"] / largest
        ax.scatter(
            df["intensity"],
            attainable,
            s=sizes,
            c=[colors[b][0] for b in df["bound"]],
            alpha=0.6,
            edgecolors="none",
            marker=marker or "o",
        )
        for bound in dict.fromkeys(df["bound"]):
            ax.scatter([], [], c=colors[bound][0], alpha=0.6, marker=marker or "o", label=colors[bound][1])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(EngFormatter())
    ax.yaxis.set_major_formatter(EngFormatter(unit="FLOP/s"))
    ax.set_xlabel(f"arithmetic intensity (FLOPs per byte, {'compulsory' if traffic == 'min' else 'unfused'})")
    ax.set_ylabel("attainable")
    ax.set_title(f"{title}: {layers} layers on {dev.name}")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return _finish(fig, plt, path)


def depth(report, path=None, ax=None):
    """FLOPs and bytes along the network, in layer order: the costly stages
    stand out. Returns the Figure."""
    from matplotlib.ticker import EngFormatter

    plt = _pyplot(headless=path is not None and ax is None)
    df = report.to_dataframe()
    if ax is None:
        fig, ax = plt.subplots(figsize=(10, 4))
    else:
        fig = ax.figure
    positions = range(len(df))
    ax.bar(positions, df["flops"], color="tab:blue", label="FLOPs")
    ax.set_ylabel("FLOPs")
    ax.yaxis.set_major_formatter(EngFormatter())
    other = ax.twinx()
    other.plot(positions, df["bytes"], color="tab:orange", linewidth=1.2, label="bytes")
    other.set_ylabel("bytes")
    other.yaxis.set_major_formatter(EngFormatter(unit="B"))
    ax.set_xlabel(f"layers in call order (of {len(df)})")
    ax.set_title(f"{report.model_name}: FLOPs and bytes along the network")
    fig.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return _finish(fig, plt, path)


PART_COLORS = {
    "weights": "tab:blue",
    "gradients": "tab:orange",
    "optimizer_state": "tab:green",
    "inputs": "tab:gray",
    "saved_activations": "tab:red",
    "activations": "tab:red",
    "kv_cache": "tab:purple",
    "transient": "tab:olive",
}


def memory_parts(memory, device=None, path=None, ax=None):
    """A memory estimate by part: one horizontal bar, its segments the parts
    of the peak in order (weights, gradients, optimizer state, the batch,
    saved activations or the KV cache, the transient), each labelled with
    its bytes; with ``device``, a line at its capacity. Returns the Figure."""
    from matplotlib.ticker import EngFormatter

    plt = _pyplot(headless=path is not None and ax is None)
    size = EngFormatter(unit="B", places=1)
    if ax is None:
        fig, ax = plt.subplots(figsize=(9, 2.3))
    else:
        fig = ax.figure
    left = 0
    for part, n in memory.parts().items():
        ax.barh([0], [n], left=left, color=PART_COLORS[part], label=f"{part.replace('_', ' ')}: {size(n)}")
        left += n
    if device is not None:
        fit = memory.fits(device)
        ax.axvline(
            fit.capacity,
            color="black",
            linestyle="--",
            linewidth=1.5,
            label=f"{fit.device}: {size(fit.capacity)}",
        )
    ax.set_yticks([])
    ax.xaxis.set_major_formatter(EngFormatter(unit="B"))
    what = "training step" if memory.training else ("generation" if memory.kv_cache else "inference")
    ax.set_title(f"{memory.model_name}: {what}, batch of {memory.batch_size}, peak {size(memory.peak)}")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=3, frameon=False)
    fig.tight_layout()
    return _finish(fig, plt, path)


def _finish(fig, plt, path):
    if path is not None:
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig
