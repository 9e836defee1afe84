"""Reuse by layer: keras_flops on each backend against PyTorch's FlopCounterMode, side by side.

One run measures, each side in a fresh process (first call, so each peak
RSS is its own), in alternating rounds:

  FlopCounter        transformers' LlamaModel built on the meta device, one
                     forward under torch.utils.flop_counter.FlopCounterMode
  jax / tensorflow   keras_hub's LlamaBackbone built under
  / torch            keras_flops.without_weights(), then keras_flops.profile
                     (each distinct layer traced once: reuse by layer)
  ... whole          the same with reuse=False (one trace of the whole model)

for weightless Llama-2-7B and -70B (sequence 128, batch 1); then a sweep of
the 7B over 8 sequence lengths on JAX, and ResNet50 (blocks repeat less)
with and without reuse on TensorFlow and JAX. Each side imports its entry
point before the clock starts; keras_hub's import of TensorFlow is blocked
on the JAX and PyTorch sides. transformers is installed into a folder of
this run's own when this Python lacks it (see torch_speed.py); the tests
never need it. Targets: under 1 GB peak RSS; on JAX at most 0.5x
FlopCounterMode's time, on TensorFlow at most 1x; the 7B sweep under 3 s
on JAX; ResNet50 no slower with reuse. MACs equal the analytic formula.

    python benchmarks/reuse_speed.py [--models 7b 70b] [--rounds 2] [--backends jax tensorflow torch]
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from llm_configs import CONFIGS, KERAS_HEADER, T, analytic_macs  # noqa: E402
from torch_speed import PEER_SIDE, peer_path, run  # noqa: E402

KERAS_SIDE = KERAS_HEADER + """
from keras_flops import profile, sweep  # imported before the clock, as the peer's FlopCounterMode is
with keras_flops.without_weights():
    model = keras_hub.models.LlamaBackbone(**CONFIGS[{name!r}])
start = time.perf_counter()
if {sweep!r}:
    result = sweep(model, sequence_length=[16, 32, 64, 128, 256, 512, 1024, 2048])
    macs, uncounted = result.reports[3].macs, sum(len(r.uncounted) for r in result.reports)
else:
    report = profile(model, warn=False, reuse={reuse!r}, input_shape={{"token_ids": (T,), "padding_mask": (T,)}})
    macs, uncounted = report.macs, len(report.uncounted)
seconds = time.perf_counter() - start
print(json.dumps({{"seconds": seconds, "macs": macs, "uncounted": uncounted,
                  "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}}))
"""

RESNET_SIDE = """
import json, resource, time
import keras, keras_flops
from keras_flops import profile
model = keras.applications.ResNet50(weights=None)
start = time.perf_counter()
report = profile(model, warn=False, reuse={reuse!r})
seconds = time.perf_counter() - start
print(json.dumps({{"seconds": seconds, "macs": report.macs, "uncounted": len(report.uncounted),
                  "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}}))
"""


def best(runs):
    return min(r["seconds"] for r in runs)


def times(runs):
    return " / ".join(f"{r['seconds']:.2f}" for r in runs)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["7b", "70b"])
    parser.add_argument("--backends", nargs="+", default=["jax", "tensorflow", "torch"])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    peer = peer_path()
    lines = ["| model | side | seconds (rounds) | / FlopCounterMode | peak RSS (GB) | MACs = formula |",
             "|---|---|---|---|---|---|"]
    for name in args.models:
        sides = {"FlopCounterMode": []}
        for backend in args.backends:
            sides[backend] = []
            sides[f"{backend}, reuse=False"] = []
        for _ in range(args.rounds):  # alternating, so that load on the machine falls on every side
            sides["FlopCounterMode"].append(run(PEER_SIDE.format(config=CONFIGS[name], T=T), PYTHONPATH=peer))
            for backend in args.backends:
                for reuse in (True, False):
                    code = KERAS_SIDE.format(here=HERE, name=name, reuse=reuse, sweep=False)
                    label = backend if reuse else f"{backend}, reuse=False"
                    sides[label].append(run(code, KERAS_BACKEND=backend))
        peer_s = best(sides["FlopCounterMode"])
        for label, runs in sides.items():
            exact = runs[0]["macs"] == analytic_macs(CONFIGS[name]) if label != "FlopCounterMode" else "-"
            row = (f"| Llama-2-{name} | {label} | {times(runs)} | {best(runs) / peer_s:.2f}x | "
                   f"{max(r['peak_rss_gb'] for r in runs):.2f} | {exact} |")
            lines.append(row)
            print(row, flush=True)
    if "jax" in args.backends:
        runs = [run(KERAS_SIDE.format(here=HERE, name="7b", reuse=True, sweep=True), KERAS_BACKEND="jax")
                for _ in range(args.rounds)]
        row = (f"| Llama-2-7b, sweep over 8 lengths (16 to 2,048) | jax | {times(runs)} | - | "
               f"{max(r['peak_rss_gb'] for r in runs):.2f} | - |")
        lines.append(row)
        print(row, flush=True)
    for backend in [b for b in args.backends if b != "torch"]:
        sides = {True: [], False: []}
        for _ in range(args.rounds):
            for reuse in (True, False):
                sides[reuse].append(run(RESNET_SIDE.format(reuse=reuse), KERAS_BACKEND=backend))
        for reuse, runs in sides.items():
            row = (f"| ResNet50 | {backend}{'' if reuse else ', reuse=False'} | {times(runs)} | - | "
                   f"{max(r['peak_rss_gb'] for r in runs):.2f} | {runs[0]['macs'] == 3_857_973_248} |")
            lines.append(row)
            print(row, flush=True)
    print()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
