"""keras_flops' training memory estimate beside XLA's buffer assignment.

On the JAX backend, for each model, in one run, the same program on both
sides: the training step keras_flops traces (forward with training=True,
the loss, the gradients with respect to the trainable weights; no optimizer
update), compiled by XLA from that very jaxpr on abstract values (nothing is
allocated) and read with ``.compile().memory_analysis()``:

  XLA       argument + output + temporaries - aliased (the step's buffers, after fusion)
  estimate  keras_memory(...).peak without optimizer state: weights + gradients
            + the batch + saved activations + the largest transient (unfused)

Models: ResNet50 at batch 8 (224x224), a BERT-base-sized encoder (12 layers,
width 768, batch 8 x 128 tokens, no loss: the sum of its outputs) and a
GPT-2-small-sized CausalLM (12 layers, width 768, batch 8 x 128 tokens, its
compiled loss). Target: the estimate within 25% of XLA's total on each.

    KERAS_BACKEND=jax python benchmarks/memory_xla.py [--models resnet50 bert gpt2]
"""

import argparse
import os

os.environ["KERAS_BACKEND"] = "jax"

import jax  # noqa: E402
import jax.extend.core  # noqa: E402
import keras  # noqa: E402

import keras_flops  # noqa: E402
from keras_flops.core.memory import spec_bytes  # noqa: E402
from keras_flops.footprint import from_report  # noqa: E402
from keras_flops.profiling import profile_and_trace  # noqa: E402

B, T = 8, 128


def build(name):
    if name == "resnet50":
        model = keras.applications.ResNet50(weights=None)
        model.compile(loss="categorical_crossentropy", optimizer="sgd")
        return model, None
    import keras_hub

    tokens = {"token_ids": (T,), "padding_mask": (T,)}
    if name == "bert":
        with keras_flops.without_weights():
            model = keras_hub.models.BertBackbone(vocabulary_size=30522, num_layers=12, num_heads=12,
                                                  hidden_dim=768, intermediate_dim=3072, max_sequence_length=512)
        return model, {**tokens, "segment_ids": (T,)}
    with keras_flops.without_weights():
        backbone = keras_hub.models.GPT2Backbone(vocabulary_size=50257, num_layers=12, num_heads=12,
                                                 hidden_dim=768, intermediate_dim=3072, max_sequence_length=1024)
    return keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None), tokens


def xla_total(trace) -> int:
    closed = trace.jaxpr
    avals = [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in closed.in_avals]
    analysis = jax.jit(jax.extend.core.jaxpr_as_fun(closed)).lower(*avals).compile().memory_analysis()
    return (analysis.argument_size_in_bytes + analysis.output_size_in_bytes + analysis.temp_size_in_bytes
            - analysis.alias_size_in_bytes)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet50", "bert", "gpt2"])
    args = parser.parse_args()
    print(f"JAX {jax.__version__}, Keras {keras.__version__}, {jax.devices()[0].platform}; "
          f"training step without the optimizer's update, batch {B}\n")
    print(f"{'model':<10} {'weights':>8} {'grads':>8} {'batch':>7} {'saved':>8} {'transient':>9} "
          f"{'estimate':>9} {'XLA':>8} {'est / XLA':>9}   (MB)")
    for name in args.models:
        model, shape = build(name)
        profiled = profile_and_trace(model, B, shape, training=True)
        backend = keras_flops.backends.of(model)
        estimate = from_report(model, profiled.report, spec_bytes(profiled.inputs.specs, backend.flatten))
        peak = estimate.peak - estimate.optimizer_state  # like with like: no optimizer on either side
        xla = xla_total(profiled.trace)
        print(f"{name:<10} {estimate.weight_bytes / 1e6:>8.1f} {estimate.gradients / 1e6:>8.1f} "
              f"{estimate.inputs / 1e6:>7.1f} {estimate.saved_bytes / 1e6:>8.1f} {estimate.transient / 1e6:>9.1f} "
              f"{peak / 1e6:>9.1f} {xla / 1e6:>8.1f} {peak / xla:>9.2f}")


if __name__ == "__main__":
    main()
