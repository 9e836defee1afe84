"""A weightless Llama-2 planned on a mesh: keras_flops' per-device count
beside the same model counted without a mesh, side by side in one run.

In a fresh process per side (so each peak RSS is its own), on JAX with 8
host devices (XLA_FLAGS=--xla_force_host_platform_device_count=8):

  global     keras_flops.profile of the weightless model, no distribution
             (reuse by layer)
  per device the same under keras.distribution.ModelParallel with
             keras_hub's layout map on a (1, 8) mesh, compiled by XLA's SPMD
             partitioner on abstract values and its per-device program read:
             with reuse by layer (the decoder blocks' chain partitioned with
             two and one middle blocks), and with reuse=False (every block)

It prints each side's seconds, peak RSS, MACs and (per device) the weight
shards' bytes and XLA's temp bytes, and the ratios of the times. Targets
(issue "Sharded models"): the 70B planned in seconds and under 1 GB, nothing
allocated; per device 17.7 GB of its 137.95 GB of weights; both per-device
sides the same counts.

    python benchmarks/sharded_plan.py [--configs 7b 70b]
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from llm_configs import CONFIGS, T  # noqa: E402

SIDE = """
import json, os, resource, sys, time
sys.modules["tensorflow"] = None  # keras_hub imports TensorFlow when it is installed
import jax, keras, keras_hub
import keras_flops
config = dict(json.loads({config!r}), dtype="bfloat16")
mesh, reuse = {mesh!r}, {reuse!r}
if mesh:
    device_mesh = keras.distribution.DeviceMesh((1, 8), ["batch", "model"], jax.devices())
    layout = keras_hub.models.LlamaBackbone.get_layout_map(device_mesh)
    keras.distribution.set_distribution(keras.distribution.ModelParallel(layout_map=layout, batch_dim_name="batch"))
with keras_flops.without_weights():
    model = keras_hub.models.LlamaBackbone(**config)
start = time.perf_counter()
report = keras_flops.profile(model, input_shape={{"token_ids": ({T},), "padding_mask": ({T},)}}, reuse=reuse)
seconds = time.perf_counter() - start
device = report.per_device
print(json.dumps(dict(
    seconds=seconds, rss_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
    macs=(device or report).macs, weight_bytes=device.weight_bytes if device else None,
    temp_bytes=device.device_memory["temp_bytes"] if device else None,
)))
"""


def run(config: dict, mesh: bool, reuse: bool = True) -> dict:
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu",
               XLA_FLAGS="--xla_force_host_platform_device_count=8")  # fmt: skip
    code = SIDE.format(config=json.dumps(config), mesh=mesh, reuse=reuse, T=T)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=["70b"], choices=sorted(CONFIGS))
    args = parser.parse_args()
    print("| model | side | seconds | peak RSS (GB) | MACs | weights per device (GB) | XLA temp (GB) |")
    print("|---|---|---|---|---|---|---|")
    for name in args.configs:
        whole, device, every = run(CONFIGS[name], False), run(CONFIGS[name], True), run(CONFIGS[name], True, False)
        print(f"| Llama-2-{name} | global | {whole['seconds']:.2f} | {whole['rss_gb']:.2f} | {whole['macs']:,} | - | - |")
        for side, got in (("per device, (1, 8) mesh", device), ("per device, `reuse=False`", every)):
            print(f"| Llama-2-{name} | {side} | {got['seconds']:.2f} | {got['rss_gb']:.2f} | {got['macs']:,} | "
                  f"{got['weight_bytes'] / 1e9:.2f} | {got['temp_bytes'] / 1e9:.2f} |")  # fmt: skip
        same = (device["macs"], device["temp_bytes"]) == (every["macs"], every["temp_bytes"])
        print(f"\nper device / global time: {device['seconds'] / whole['seconds']:.1f}x; "
              f"reuse=False / reuse: {every['seconds'] / device['seconds']:.1f}x; same counts: {same}")  # fmt: skip


if __name__ == "__main__":
    main()
