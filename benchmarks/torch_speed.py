"""Keras on PyTorch: keras_flops against PyTorch's own FlopCounterMode, side by side.

For each weightless Llama-2 config (sequence 128, batch 1), two alternating
rounds, each side in a fresh process (first call, so each peak RSS is its own):

  keras_flops   KERAS_BACKEND=torch: the keras_hub LlamaBackbone built under
                keras_flops.without_weights(), then keras_flops.profile (the
                trace on the meta device, counting, the report)
  FlopCounter   transformers' LlamaModel built on the meta device, then one
                forward under torch.utils.flop_counter.FlopCounterMode

Each side imports its entry point before the clock starts (keras_flops'
``profile``, torch's ``FlopCounterMode`` and transformers); both import the same torch; keras_hub's import of TensorFlow is blocked
on the keras_flops side, so its peak is Keras's and PyTorch's. transformers
is installed into a folder of this run's own (on the peer's PYTHONPATH)
when this Python lacks it; the tests never need it. Targets:
keras_flops within 2x of FlopCounterMode's time and under 1 GB peak RSS;
MACs equal to the analytic Llama formula (FlopCounterMode's are printed too).

    python benchmarks/torch_speed.py [--models 7b 70b] [--rounds 2]

It counts with reuse=False, one trace of the whole model: the overhead over
that trace is what it measures (reuse by layer: benchmarks/reuse_speed.py).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from llm_configs import CONFIGS, T, analytic_macs  # noqa: E402

KERAS_SIDE = """
import json, os, resource, sys, time
sys.modules["tensorflow"] = None  # keras_hub imports TensorFlow when it is installed
sys.path.insert(0, {here!r})
from llm_configs import CONFIGS, T
import keras, keras_hub, keras_flops
from keras_flops import profile  # imported before the clock, as the peer's FlopCounterMode is
with keras_flops.without_weights():
    model = keras_hub.models.LlamaBackbone(**CONFIGS[{name!r}])
start = time.perf_counter()
report = profile(model, warn=False, reuse=False, input_shape={{"token_ids": (T,), "padding_mask": (T,)}})
seconds = time.perf_counter() - start
print(json.dumps({{"seconds": seconds, "macs": report.macs, "uncounted": len(report.uncounted),
                  "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}}))
"""

# transformers' Llama of a config of llm_configs.CONFIGS on the meta device, as ``model``
# (MODEL_CLASS: LlamaModel, or LlamaForCausalLM for benchmarks/step_speed.py)
PEER_MODEL = """
import json, resource, time
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import LlamaConfig, MODEL_CLASS
c = {config!r}
config = LlamaConfig(vocab_size=c["vocabulary_size"], hidden_size=c["hidden_dim"],
                     intermediate_size=c["intermediate_dim"], num_hidden_layers=c["num_layers"],
                     num_attention_heads=c["num_query_heads"], num_key_value_heads=c["num_key_value_heads"])
with torch.device("meta"):
    model = MODEL_CLASS(config)
"""

PEER_SIDE = PEER_MODEL.replace("MODEL_CLASS", "LlamaModel") + """ids = torch.zeros((1, {T}), dtype=torch.long, device="meta")
start = time.perf_counter()
with torch.no_grad(), FlopCounterMode(display=False) as counter:
    model(input_ids=ids)
seconds = time.perf_counter() - start
print(json.dumps({{"seconds": seconds, "macs": counter.get_total_flops() // 2,
                  "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}}))
"""


def peer_path() -> str:
    """A folder that holds transformers for the peer's process (installed
    there for this run, without touching this Python's packages), or "" when
    this Python has it."""
    try:
        import transformers  # noqa: F401

        return ""
    except ImportError:
        pass
    target = os.path.join(tempfile.gettempdir(), "keras_flops_bench_transformers")
    check = [sys.executable, "-c", "import transformers.models.llama"]
    env = dict(os.environ, PYTHONPATH=target)
    if subprocess.run(check, env=env, capture_output=True).returncode:
        # without its dependencies: numpy, torch and the tokenizers this Python has stay the ones used
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", target,
                        "transformers", "huggingface_hub", "safetensors", "hf_xet"], check=True)
    return target


def run(code: str, **env) -> dict:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **env), timeout=1200)
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["7b", "70b"])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    peer = peer_path()
    rows = []
    for name in args.models:
        ours, theirs = [], []
        for _ in range(args.rounds):  # alternating, so that load on the machine falls on both
            ours.append(run(KERAS_SIDE.format(here=HERE, name=name), KERAS_BACKEND="torch"))
            theirs.append(run(PEER_SIDE.format(config=CONFIGS[name], T=T), PYTHONPATH=peer))
        best = lambda runs: min(r["seconds"] for r in runs)  # noqa: E731
        row = {
            "model": name,
            "keras_flops_s": [round(r["seconds"], 3) for r in ours],
            "flop_counter_s": [round(r["seconds"], 3) for r in theirs],
            "ratio": round(best(ours) / best(theirs), 2),
            "keras_flops_peak_gb": round(max(r["peak_rss_gb"] for r in ours), 2),
            "flop_counter_peak_gb": round(max(r["peak_rss_gb"] for r in theirs), 2),
            "macs": ours[0]["macs"], "analytic_macs": analytic_macs(CONFIGS[name]),
            "flop_counter_macs": theirs[0]["macs"], "uncounted": ours[0]["uncounted"],
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    print()
    print("| model | keras_flops (s) | FlopCounterMode (s) | ratio (best of each) | keras_flops peak RSS (GB) | MACs exact |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| Llama-2-{r['model']} | {' / '.join(map(str, r['keras_flops_s']))} | "
              f"{' / '.join(map(str, r['flop_counter_s']))} | {r['ratio']} | {r['keras_flops_peak_gb']} | "
              f"{r['macs'] == r['analytic_macs']} |")


if __name__ == "__main__":
    main()
