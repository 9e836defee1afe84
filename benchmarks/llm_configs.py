"""Llama-2-7B and -70B configs counted without weights: time and peak memory.

For each config, in a fresh process (so each peak is its own):
  build    the keras_hub LlamaBackbone under keras_flops.without_weights()
  trace    a bare trace of that weightless model: tf.function over the model
           with a placeholder per variable, nothing else
  profile  keras_flops.profile on it: the same trace with layer recording,
           counting and the report
The peak RSS is the process's after the build and one profile, what a user's
run does; then trace and profile alternate (--reps pairs, a garbage
collection before each) for the times. Targets: profile within 1.25x of the
bare trace; the whole process under 1 GB peak RSS; exact MACs (checked
against the analytic Llama formula).

    python benchmarks/llm_configs.py [--configs 7b 70b] [--reps 3]

It counts with reuse=False, one trace of the whole model: the overhead over
that trace is what it measures (reuse by layer: benchmarks/reuse_speed.py).
"""

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

CONFIGS = {
    # Llama-2's published configs; sequence 128, batch 1
    "7b": dict(vocabulary_size=32000, num_layers=32, num_query_heads=32, num_key_value_heads=32,
               hidden_dim=4096, intermediate_dim=11008),
    "70b": dict(vocabulary_size=32000, num_layers=80, num_query_heads=64, num_key_value_heads=8,
                hidden_dim=8192, intermediate_dim=28672),
}
T = 128

# The start of a keras_flops side's script in a fresh process (benchmarks/reuse_speed.py,
# benchmarks/step_speed.py): keras_hub's import of TensorFlow blocked but on TensorFlow.
KERAS_HEADER = """
import json, os, resource, sys, time
if os.environ["KERAS_BACKEND"] != "tensorflow":
    sys.modules["tensorflow"] = None  # keras_hub imports TensorFlow when it is installed
sys.path.insert(0, {here!r})
from llm_configs import CONFIGS, T
import keras, keras_hub, keras_flops"""


def analytic_macs(c) -> int:
    """Llama: q and o d x d, k and v d x kv heads x head dim, attention 2 H T^2 hd,
    SwiGLU 3 T d F, RoPE 2 T hd / 2 per layer (the position x frequency product)."""
    d, H, KV, F, L = (c[k] for k in ("hidden_dim", "num_query_heads", "num_key_value_heads",
                                     "intermediate_dim", "num_layers"))
    hd = d // H
    per_layer = 2 * T * d * d + 2 * T * d * KV * hd + 2 * H * T * T * hd + 3 * T * d * F + T * hd
    return L * per_layer


def paired(bare, profile, reps: int) -> list:
    """``reps`` pairs of (bare trace, profile) times, alternating, each step
    after a garbage collection of the last one's trace."""
    pairs = []
    for _ in range(reps):
        gc.collect()
        t = time.perf_counter()
        bare()
        t_bare = time.perf_counter() - t
        gc.collect()
        t = time.perf_counter()
        profile()
        pairs.append((t_bare, time.perf_counter() - t))
    return pairs


def one(name: str, reps: int) -> dict:
    import keras_hub
    import tensorflow as tf

    import keras_flops
    from keras_flops import _compat, backends
    from keras_flops.core import inputs, weightless

    start = time.perf_counter()
    with keras_flops.without_weights():
        model = keras_hub.models.LlamaBackbone(**CONFIGS[name])
    build = time.perf_counter() - start
    shapes = {"token_ids": (T,), "padding_mask": (T,)}

    def bare():
        variables = weightless.deferred_variables(model)

        def forward(x, values):
            with weightless.values_for(variables, values):
                return model(x, training=False)

        specs = inputs.resolve(model, 1, shapes, backends.of(model)).specs
        tf.function(forward).get_concrete_function(specs, weightless.value_specs(variables, backends.of(model).spec))

    def profile():
        return keras_flops.profile(model, input_shape=shapes, warn=False, reuse=False)

    # what a user's process does: build, then profile once; its peak is the one to keep
    report = profile()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    pairs = paired(bare, profile, reps)
    return {
        "config": name,
        "params": model.count_params(),
        "build_s": build,
        "trace_s": statistics.median(b for b, _ in pairs),
        "profile_s": statistics.median(p for _, p in pairs),
        "ratio": statistics.median(p / b for b, p in pairs),
        "flops": report.flops,
        "macs": report.macs,
        "analytic_macs": analytic_macs(CONFIGS[name]),
        "uncounted": len(report.uncounted),
        "allocated": sum(1 for v in model.variables if _compat.is_allocated(v)),
        "peak_rss_gb": peak,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.reps)))
        return
    print(f"Llama-2 configs without weights, sequence {T}, batch 1, {args.reps} pairs each\n")
    print(f"{'config':<6} {'params':>8} {'build s':>8} {'trace s':>8} {'profile s':>9} "
          f"{'ratio':>6} {'peak GB':>8}  MACs (= analytic?)")
    for name in args.configs:
        out = subprocess.run([sys.executable, __file__, "--one", name, "--reps", str(args.reps)],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        exact = "exact" if r["macs"] == r["analytic_macs"] else f"analytic {r['analytic_macs']:,}"
        print(f"{name:<6} {r['params'] / 1e9:>7.2f}B {r['build_s']:>8.2f} {r['trace_s']:>8.2f} "
              f"{r['profile_s']:>9.2f} {r['ratio']:>5.2f}x {r['peak_rss_gb']:>8.2f}  "
              f"{r['macs']:,} ({exact}); {r['flops']:,} FLOPs; {r['uncounted']} uncounted; "
              f"{r['allocated']} variables allocated")
    print("\ntargets: profile / trace <= 1.25x; peak RSS < 1 GB per process")


if __name__ == "__main__":
    main()
