"""keras_flops' bytes beside XLA's: ResNet50, MobileNetV2 and a GPT-2 forward pass.

On the JAX backend, for each model at batch 1, in one run:
  bytes      keras_flops' unfused bytes: every op's inputs and outputs
  min_bytes  keras_flops' compulsory bytes: each layer's inputs, outputs and weights once
  XLA        XLA's own "bytes accessed" after fusion: jax.jit(stateless_call)
             .lower(abstract values).compile().cost_analysis(), on this machine's CPU
Where XLA lands depends on how finely the model is cut into layers.
min_bytes assumes every Keras layer is a kernel of its own: a ResNet's
convolution, batch normalization and activation are three layers, so each
activation is written and read again between them. XLA fuses them into one
kernel and goes below min_bytes. A transformer's attention is one layer, and
XLA writes its scores and softmax to memory inside it, so XLA goes above.
Both stay well below the unfused bytes. No weight is read or allocated: the
compile takes abstract values.

    KERAS_BACKEND=jax python benchmarks/xla_bytes.py [--models resnet50 mobilenetv2 gpt2]
"""

import argparse
import os

os.environ["KERAS_BACKEND"] = "jax"

import jax  # noqa: E402
import keras  # noqa: E402

import keras_flops  # noqa: E402

T = 128  # GPT-2's sequence length


def build(name):
    if name == "resnet50":
        return keras.applications.ResNet50(weights=None), [jax.ShapeDtypeStruct((1, 224, 224, 3), "float32")], {}
    if name == "mobilenetv2":
        return keras.applications.MobileNetV2(weights=None), [jax.ShapeDtypeStruct((1, 224, 224, 3), "float32")], {}
    import keras_hub

    with keras_flops.without_weights():  # GPT-2 base: 124M parameters, 12 layers of width 768
        model = keras_hub.models.GPT2Backbone(vocabulary_size=50257, num_layers=12, num_heads=12, hidden_dim=768,
                                              intermediate_dim=3072, max_sequence_length=1024)
    spec = jax.ShapeDtypeStruct((1, T), "int32")
    return model, [{"padding_mask": spec, "token_ids": spec}], {"input_shape": {"token_ids": (T,), "padding_mask": (T,)}}


def xla_bytes(model, inputs) -> float:
    trainable = [jax.ShapeDtypeStruct(tuple(v.shape), v.dtype) for v in model.trainable_variables]
    other = [jax.ShapeDtypeStruct(tuple(v.shape), v.dtype) for v in model.non_trainable_variables]

    def forward(trainable, other, x):
        return model.stateless_call(trainable, other, x, training=False)[0]

    cost = jax.jit(forward).lower(trainable, other, *inputs).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost["bytes accessed"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet50", "mobilenetv2", "gpt2"])
    args = parser.parse_args()
    print(f"JAX {jax.__version__}, Keras {keras.__version__}, {jax.devices()[0].platform}, batch 1 (GPT-2: {T} tokens)\n")
    print(f"{'model':<12} {'bytes MB':>9} {'min_bytes MB':>12} {'XLA MB':>8} {'XLA / min':>9} {'bytes / XLA':>11}")
    for name in args.models:
        model, inputs, kwargs = build(name)
        report = keras_flops.profile(model, warn=False, **kwargs)
        xla = xla_bytes(model, inputs)
        print(f"{name:<12} {report.bytes / 1e6:>9.1f} {report.min_bytes / 1e6:>12.1f} {xla / 1e6:>8.1f} "
              f"{xla / report.min_bytes:>9.2f} {report.bytes / xla:>11.2f}")


if __name__ == "__main__":
    main()
