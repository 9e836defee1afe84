"""Training steps and generation: keras_flops on each backend against PyTorch's FlopCounterMode, side by side.

The counts users pay for most often: a FlopsCallback counts a training step
at train begin, and largest_context, sweep and the fit questions count
generation. One run measures, each side in a fresh process (first call,
entry points imported before the clock, so each peak RSS is its own), in
alternating rounds:

  FlopCounterMode   transformers' LlamaForCausalLM built on the meta device:
                    for training, the loss and its backward under
                    torch.utils.flop_counter.FlopCounterMode; for generation,
                    a prefill of the prompt and one decode step with the cache
  jax / tensorflow  keras_hub's LlamaCausalLM around a LlamaBackbone built
  / torch           under keras_flops.without_weights(): for training,
                    keras_flops.profile(training=True); for generation,
                    keras_flops.profile_generation (the prefill and one step)

for a weightless Llama-2-7B and -70B training step (batch 1, 128 tokens)
and the 7B's generation (a prompt of 512, max_length 1,024). Each side's
MACs are printed: keras_flops' forward and backward, FlopCounterMode's
total / 2. Targets (issue "Training steps and generation by distinct
layer"): JAX and PyTorch at most 0.5x the peer's time, TensorFlow at most
1x, every side under 1 GB.

    python benchmarks/step_speed.py [--cases train-7b train-70b generate-7b] [--rounds 2]
        [--backends jax tensorflow torch]
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from llm_configs import CONFIGS, KERAS_HEADER  # noqa: E402
from reuse_speed import best, times  # noqa: E402
from torch_speed import PEER_MODEL, peer_path, run  # noqa: E402

T, PROMPT, MAX_LENGTH = 128, 512, 1024

KERAS_SIDE = KERAS_HEADER + """
from keras_flops import profile, profile_generation  # imported before the clock, as the peer's are
with keras_flops.without_weights():
    backbone = keras_hub.models.LlamaBackbone(**CONFIGS[{name!r}])
causal_lm = keras_hub.models.LlamaCausalLM(backbone=backbone, preprocessor=None)
start = time.perf_counter()
if {kind!r} == "train":
    report = profile(causal_lm, training=True, warn=False,
                     input_shape={{"token_ids": ({T},), "padding_mask": ({T},)}})
    macs = [report.macs, report.backward_macs]
else:
    gen = profile_generation(causal_lm, prompt_length={prompt}, max_length={max_length})
    macs = [gen.prefill.macs, gen.decode.macs]
seconds = time.perf_counter() - start
print(json.dumps({{"seconds": seconds, "macs": macs,
                  "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}}))
"""

PEER_SIDE = PEER_MODEL.replace("MODEL_CLASS", "LlamaForCausalLM") + """
start = time.perf_counter()
if {kind!r} == "train":
    ids = torch.zeros((1, {T}), dtype=torch.long, device="meta")
    with FlopCounterMode(display=False) as counter:
        model(input_ids=ids, labels=ids).loss.backward()
else:
    ids = torch.zeros((1, {prompt}), dtype=torch.long, device="meta")
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model(input_ids=ids, use_cache=True)
        model(input_ids=ids[:, :1], past_key_values=out.past_key_values, use_cache=True)
seconds = time.perf_counter() - start
print(json.dumps({{"seconds": seconds, "macs": [counter.get_total_flops() // 2],
                  "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}}))
"""

CASES = {"train-7b": ("train", "7b"), "train-70b": ("train", "70b"), "generate-7b": ("generate", "7b")}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--backends", nargs="+", default=["jax", "tensorflow", "torch"])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    peer = peer_path()
    fields = dict(here=HERE, T=T, prompt=PROMPT, max_length=MAX_LENGTH)
    lines = ["| case | side | seconds (rounds) | / FlopCounterMode | peak RSS (GB) | MACs |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for case in args.cases:
        kind, name = CASES[case]
        sides = {"FlopCounterMode": [], **{b: [] for b in args.backends}}
        for _ in range(args.rounds):  # alternating, so that load on the machine falls on every side
            peer_code = PEER_SIDE.format(config=CONFIGS[name], kind=kind, **fields)
            sides["FlopCounterMode"].append(run(peer_code, PYTHONPATH=peer))
            for backend in args.backends:
                code = KERAS_SIDE.format(name=name, kind=kind, **fields)
                sides[backend].append(run(code, KERAS_BACKEND=backend))
        peer_s = best(sides["FlopCounterMode"])
        for side, runs in sides.items():
            seconds = times(runs)
            macs = " + ".join(f"{m:,}" for m in runs[0]["macs"])
            row = (f"| {case} | {side} | {seconds} | {best(runs) / peer_s:.2f}x | "
                   f"{max(r['peak_rss_gb'] for r in runs):.2f} | {macs} |")  # fmt: skip
            lines.append(row)
            print(row, flush=True)
    print()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
