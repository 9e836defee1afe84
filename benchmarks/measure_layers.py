"""Do the measured per-layer times account for the measured forward pass?

keras_flops.measure on ResNet50 (CPU, batch 1): the median forward pass of
the traced function, and the per-layer medians from TensorFlow's profiler
trace; prints their ratio (target: the layers sum to within 15% of the
forward pass) for a few runs, and the slowest layers against the roofline of
a device given as peak TFLOP/s and GB/s (this machine's, roughly).

    python benchmarks/measure_layers.py [--model ResNet50] [--runs 3] [--repeats 10]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

import keras_flops  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ResNet50")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--peak-tflops", type=float, default=0.2, help="for the roofline (a CPU's, roughly)")
    parser.add_argument("--bandwidth-gbps", type=float, default=20.0)
    args = parser.parse_args()
    model = getattr(keras.applications, args.model)(weights=None)
    print(f"{args.model}, batch 1, CPU, {args.repeats} repeats per measure\n")
    for run in range(args.runs):
        report = keras_flops.measure(model, repeats=args.repeats)
        layers = sum(median for _, median, _ in report.layer_times)
        print(f"run {run + 1}: forward {report.time_ms:.1f} ms (median), layers sum to {layers:.1f} ms: "
              f"ratio {layers / report.time_ms:.3f} (target within 0.85-1.15)")
    device = keras_flops.Device(args.peak_tflops, args.bandwidth_gbps, name="this CPU (given)")
    roof = report.roofline(device).sort_values("measured_s", ascending=False).head(5)
    print("\nslowest layers, measured against the roofline time:")
    print(roof[["class", "flops", "bytes", "bound", "time_s", "measured_s", "measured_ratio"]].to_string())


if __name__ == "__main__":
    main()
