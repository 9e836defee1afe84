"""The guides' figures, drawn by keras_flops at build time (docs/hooks/figures.py runs this
script in a process of its own, KERAS_BACKEND=jax): nothing here is committed as an image.

    python docs/hooks/draw_figures.py OUT_DIR

The models are the guides' own examples: ResNet50 built with weights=None (the
command line's --example) and Llama-2-7B's configuration built without weights.
"""

import sys
from pathlib import Path

import keras
import keras_hub

import keras_flops

LLAMA2_7B = dict(
    vocabulary_size=32000,
    num_layers=32,
    num_query_heads=32,
    num_key_value_heads=32,
    hidden_dim=4096,
    intermediate_dim=11008,
)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    resnet = keras.applications.ResNet50(weights=None)
    report = keras_flops.profile(resnet, batch_size=1)
    report.plot(top=10, path=out / "resnet50_layers.png")  # guides/outputs.md
    report.plot(kind="roofline", device="H100", path=out / "resnet50_roofline.png")  # guides/roofline.md

    with keras_flops.without_weights():
        backbone = keras_hub.models.LlamaBackbone(**LLAMA2_7B)  # float32, Keras's default
        bfloat16 = keras_hub.models.LlamaBackbone(**LLAMA2_7B, dtype="bfloat16")
    causal_lm = keras_hub.models.LlamaCausalLM(backbone=bfloat16, preprocessor=None)
    gen = keras_flops.profile_generation(causal_lm, prompt_length=512, max_length=1024)
    gen.plot("H100", path=out / "llama2_7b_generation.png")  # guides/generation.md, in bfloat16

    # guides/fit.md: a training step at 1 x 2,048 tokens with Adam, against an H100's 80 GiB
    memory = keras_flops.memory(
        backbone, input_shape={"token_ids": (2048,), "padding_mask": (2048,)}, batch_size=1, optimizer="adam"
    )
    memory.plot(device="H100", path=out / "llama2_7b_memory.png")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
