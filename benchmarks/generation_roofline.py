"""Llama-2-7B's generation on an H100, from the traced model: float and int8.

Builds the Llama-2-7B config without weights (keras_flops.without_weights()),
in bfloat16, and again quantized to int8 (model.quantize under the same
scope: still no weight allocated), counts generate() for one prompt of 512
tokens up to 1,024, and prints, side by side: the weights by stored width,
the KV cache, one decode step's compulsory bytes against the analytic sum
(every weight once, the embedding table only for the gathered row, plus the
whole fixed-size cache), and the roofline on an H100 (3.35 TB/s; bfloat16
989.4 TFLOP/s, int8 1,978.9 TOPS).

    python benchmarks/generation_roofline.py [--device H100] [--prompt 512] [--max-length 1024]
"""

import argparse
import math
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import keras_hub  # noqa: E402

import keras_flops  # noqa: E402

LLAMA2_7B = dict(vocabulary_size=32000, num_layers=32, num_query_heads=32, num_key_value_heads=32,
                 hidden_dim=4096, intermediate_dim=11008)


def one(quantized: bool, prompt: int, max_length: int, device: str):
    start = time.perf_counter()
    with keras_flops.without_weights():
        backbone = keras_hub.models.LlamaBackbone(**LLAMA2_7B, dtype="bfloat16")
        if quantized:
            backbone.quantize("int8")
    lm = keras_hub.models.LlamaCausalLM(backbone=backbone, preprocessor=None)
    built = time.perf_counter()
    gen = keras_flops.profile_generation(lm, prompt_length=prompt, max_length=max_length, warn=False)
    seconds = (built - start, time.perf_counter() - built)
    weight_bytes = sum(math.prod(w.shape) * _size(w.dtype) for w in backbone.weights)
    table = backbone.token_embedding.embeddings
    table_bytes = math.prod(table.shape) * _size(table.dtype)
    row = LLAMA2_7B["hidden_dim"] * _size(table.dtype)
    analytic = weight_bytes - table_bytes + row + gen.kv_cache_bytes
    return gen, weight_bytes, analytic, seconds, gen.roofline(device)


def _size(dtype) -> int:
    return {"bfloat16": 2, "float16": 2, "float32": 4, "int8": 1}[keras.backend.standardize_dtype(dtype)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="H100")
    parser.add_argument("--prompt", type=int, default=512)
    parser.add_argument("--max-length", type=int, default=1024)
    args = parser.parse_args()
    print(f"Keras {keras.__version__} on {keras.config.backend()}; Llama-2-7B, batch 1, prompt {args.prompt}, "
          f"max_length {args.max_length}, on {args.device}\n")
    print(f"{'weights':<9} {'weights GB':>10} {'KV cache GB':>11} {'decode min GB':>13} {'analytic GB':>11} "
          f"{'ratio':>6} {'prefill ms':>10} {'bound':>8} {'step ms':>8} {'bound':>7} {'tokens/s':>9} {'build s':>8} "
          f"{'count s':>8}")
    for quantized in (False, True):
        gen, weights, analytic, seconds, roof = one(quantized, args.prompt, args.max_length, args.device)
        print(f"{'int8' if quantized else 'bfloat16':<9} {weights / 1e9:>10.2f} {gen.kv_cache_bytes / 1e9:>11.3f} "
              f"{gen.decode.min_bytes / 1e9:>13.3f} {analytic / 1e9:>11.3f} {gen.decode.min_bytes / analytic:>6.4f} "
              f"{roof.prefill_s * 1e3:>10.2f} {roof.prefill_bound:>8} {roof.decode_step_s * 1e3:>8.3f} "
              f"{roof.decode_bound:>7} {roof.tokens_per_s:>9.1f} {seconds[0]:>8.1f} {seconds[1]:>8.1f}")
        print(f"          decode MACs by dtype: {gen.decode.macs_by_dtype}")


if __name__ == "__main__":
    main()
