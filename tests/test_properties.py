"""Properties over random stacks of layers (hypothesis).

For any model built from Dense, Conv1D/2D, depthwise convolutions, pooling,
normalization, activations, residual Add and Concatenate blocks and nested
sub-models:
- the per-layer rows sum to the totals;
- 2 x MACs <= FLOPs (every MAC is 2 FLOPs, other ops add FLOPs only);
- counts are affine in the batch size, FLOPs(b) = fixed + b x per_sample
  (per-channel normalization work is done once per batch);
- a chain of parts costs the sum of its parts profiled alone.
"""

import keras
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import keras_flops

SETTINGS = settings(max_examples=15, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

ACTIVATIONS = ["relu", "sigmoid", "tanh", "gelu", "swish", "elu", "softplus"]


def image_block(draw):
    kind = draw(st.sampled_from(["conv", "depthwise", "pool", "bn", "ln", "act", "dense", "residual", "concat"]))
    if kind == "conv":
        return ("conv", draw(st.integers(1, 4)), draw(st.sampled_from([1, 3])), draw(st.booleans()))
    if kind == "pool":
        return ("pool", draw(st.sampled_from(["max", "avg"])))
    if kind == "act":
        return ("act", draw(st.sampled_from(ACTIVATIONS)))
    if kind == "dense":
        return ("dense", draw(st.integers(1, 4)))
    return (kind,)


def sequence_block(draw):
    kind = draw(st.sampled_from(["conv1d", "pool1d", "dense", "act", "bn"]))
    if kind == "conv1d":
        return ("conv1d", draw(st.integers(1, 4)), draw(st.sampled_from([1, 3])))
    if kind == "dense":
        return ("dense", draw(st.integers(1, 4)))
    if kind == "act":
        return ("act", draw(st.sampled_from(ACTIVATIONS)))
    return (kind,)


def apply(spec, y):
    """Apply the layer a spec describes (built here, not in the strategy)."""
    kind, *args = spec
    L = keras.layers
    if kind == "conv":
        return L.Conv2D(args[0], args[1], padding="same", use_bias=args[2])(y)
    if kind == "depthwise":
        return L.DepthwiseConv2D(3, padding="same")(y)
    if kind == "pool":
        return (L.MaxPooling2D if args[0] == "max" else L.AveragePooling2D)(2, padding="same")(y)
    if kind == "conv1d":
        return L.Conv1D(args[0], args[1], padding="same")(y)
    if kind == "pool1d":
        return L.MaxPooling1D(2, padding="same")(y)
    if kind == "bn":
        return L.BatchNormalization()(y)
    if kind == "ln":
        return L.LayerNormalization()(y)
    if kind == "act":
        return L.Activation(args[0])(y)
    if kind == "dense":
        return L.Dense(args[0])(y)
    if kind == "residual":  # y + conv(y): Add
        return L.Add()([y, L.Conv2D(y.shape[-1], 3, padding="same")(y)])
    if kind == "concat":  # [y, relu(y)]: Concatenate
        return L.Concatenate()([y, L.ReLU()(y)])
    raise ValueError(spec)


def part(shape, specs):
    """A sub-model (nested in the chain) over the layers ``specs`` describe."""
    x = keras.Input(shape)
    y = x
    for spec in specs:
        y = apply(spec, y)
    return keras.Model(x, y)


@st.composite
def chains(draw):
    """(input shape, [specs of each part]) of a random chain."""
    image = draw(st.booleans())
    shape = (draw(st.integers(2, 6)), draw(st.integers(2, 6)), draw(st.integers(1, 3))) if image \
        else (draw(st.integers(2, 8)), draw(st.integers(1, 3)))
    block = image_block if image else sequence_block
    parts = [[block(draw) for _ in range(draw(st.integers(1, 3)))] for _ in range(draw(st.integers(1, 3)))]
    return shape, parts


def build(case):
    """(the chain model, its part models)."""
    shape, specs = case
    parts, current = [], shape
    for part_specs in specs:
        model = part(current, part_specs)
        parts.append(model)
        current = tuple(model.output.shape[1:])
    return keras.Sequential([keras.Input(shape), *parts]), parts


@SETTINGS
@given(chains(), st.integers(1, 3))
def test_rows_sum_to_totals_and_macs_are_at_most_half(case, batch):
    model, _ = build(case)
    report = keras_flops.profile(model, batch_size=batch, warn=False)
    assert report.uncounted == ()
    df = report.to_dataframe()
    assert df["flops"].sum() == report.flops
    assert df["macs"].sum() == report.macs
    assert 2 * report.macs <= report.flops
    assert report.to_dataframe(depth=1)["flops"].sum() == report.flops


@SETTINGS
@given(chains())
def test_counts_are_affine_in_batch_size(case):
    model, _ = build(case)
    f1, f2, f3 = (keras_flops.profile(model, batch_size=b, warn=False) for b in (1, 2, 3))
    assert f3.flops - f2.flops == f2.flops - f1.flops >= 0
    # MACs come from Conv and MatMul ops, whose work is all per sample
    assert (f1.macs * 2, f1.macs * 3) == (f2.macs, f3.macs)


@SETTINGS
@given(chains())
def test_a_chain_costs_the_sum_of_its_parts(case):
    whole_model, parts = build(case)
    whole = keras_flops.profile(whole_model, warn=False)
    alone = [keras_flops.profile(p, warn=False) for p in parts]
    assert whole.flops == sum(r.flops for r in alone)
    assert whole.macs == sum(r.macs for r in alone)
