"""The JAX backend: profile time against a bare make_jaxpr trace, peak memory.

For each model, in a fresh process with KERAS_BACKEND=jax (so each peak is
its own):
  build    ResNet50 (weights=None), or the keras_hub Llama-2 config under
           keras_flops.without_weights()
  trace    a bare trace: jax.make_jaxpr of model.stateless_call on abstract
           values (jax.ShapeDtypeStruct), nothing else
  profile  keras_flops.profile on it: the same trace with the layer
           recorder's name scopes, counting and the report
The peak RSS is the process's after the build and one profile; then trace
and profile alternate (--reps pairs, a garbage collection before each) for
the times. Targets: profile within 1.25x of the bare trace; Llama-2-7B
counted in 0.6 s and 70B in 1.5 s after the build; under 1 GB peak RSS; MACs
exact (the analytic Llama formula; ResNet50's known count).

    python benchmarks/jax_speed.py [--models resnet50 7b 70b] [--reps 3]

It counts with reuse=False, one trace of the whole model: the overhead over
that trace is what it measures (reuse by layer: benchmarks/reuse_speed.py).
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from llm_configs import CONFIGS, T, analytic_macs, paired  # noqa: E402

RESNET50_MACS = 3_857_973_248


def one(name: str, reps: int) -> dict:
    import jax
    import keras

    import keras_flops

    start = time.perf_counter()
    if name == "resnet50":
        model = keras.applications.ResNet50(weights=None)
        shapes, kwargs, expected = [jax.ShapeDtypeStruct((1, 224, 224, 3), "float32")], {}, RESNET50_MACS
    else:
        import keras_hub

        with keras_flops.without_weights():
            model = keras_hub.models.LlamaBackbone(**CONFIGS[name])
        spec = jax.ShapeDtypeStruct((1, T), "int32")
        shapes = [{"padding_mask": spec, "token_ids": spec}]
        kwargs = {"input_shape": {"token_ids": (T,), "padding_mask": (T,)}}
        expected = analytic_macs(CONFIGS[name])
    build = time.perf_counter() - start

    def bare():
        trainable = [jax.ShapeDtypeStruct(tuple(v.shape), v.dtype) for v in model.trainable_variables]
        other = [jax.ShapeDtypeStruct(tuple(v.shape), v.dtype) for v in model.non_trainable_variables]

        def forward(trainable, other, x):
            return model.stateless_call(trainable, other, x, training=False)[0]

        jax.make_jaxpr(forward)(trainable, other, *shapes)

    def profile():
        return keras_flops.profile(model, warn=False, reuse=False, **kwargs)

    start = time.perf_counter()
    report = profile()
    first = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    pairs = paired(bare, profile, reps)
    return {
        "model": name, "build_s": build, "first_profile_s": first,
        "trace_s": statistics.median(b for b, _ in pairs),
        "profile_s": statistics.median(p for _, p in pairs),
        "ratio": statistics.median(p / b for b, p in pairs),
        "macs": report.macs, "expected_macs": expected, "flops": report.flops,
        "uncounted": len(report.uncounted), "peak_rss_gb": peak,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet50", "7b", "70b"],
                        choices=["resnet50", *CONFIGS])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.reps)))
        return
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    print(f"KERAS_BACKEND=jax, batch 1 (Llama: sequence {T}), {args.reps} pairs each\n")
    print(f"{'model':<9} {'build s':>8} {'trace s':>8} {'profile s':>9} {'ratio':>6} "
          f"{'1st s':>6} {'peak GB':>8}  MACs")
    for name in args.models:
        out = subprocess.run([sys.executable, __file__, "--one", name, "--reps", str(args.reps)],
                             capture_output=True, text=True, check=True, env=env)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        exact = "exact" if r["macs"] == r["expected_macs"] else f"expected {r['expected_macs']:,}"
        print(f"{name:<9} {r['build_s']:>8.2f} {r['trace_s']:>8.2f} {r['profile_s']:>9.2f} "
              f"{r['ratio']:>5.2f}x {r['first_profile_s']:>6.2f} {r['peak_rss_gb']:>8.2f}  "
              f"{r['macs']:,} ({exact}); {r['uncounted']} uncounted")
    print("\ntargets: profile / trace <= 1.25x; 7b <= 0.6 s, 70b <= 1.5 s after the build; "
          "peak RSS < 1 GB per process")


if __name__ == "__main__":
    main()
