"""Reuse by layer: each distinct layer call traced once, its count given to
every call like it; exactly the counts of one trace of the whole model.

Backend-neutral: collected here on TensorFlow, and by the JAX and PyTorch
suites (tests/jax_suite/test_reuse_jax.py, tests/torch_suite/test_reuse_torch.py).
"""

import keras
import numpy as np
import pytest

import keras_flops
from keras_flops.profiling import profile_and_trace

COLUMNS = ["flops", "macs", "bytes", "min_bytes"]


def rows(report):
    return [(r.path, r.class_name, r.output_shape, r.params, r.calls) for r in report.layers]


def assert_same_as_whole(model, **kwargs):
    """Reuse by layer and the whole trace agree on every layer's FLOPs, MACs,
    bytes and compulsory bytes, on the layer rows and on what is uncounted;
    the reuse's report."""
    reused = keras_flops.profile(model, warn=False, **kwargs)
    whole = keras_flops.profile(model, warn=False, reuse=False, **kwargs)
    assert reused.to_dataframe()[COLUMNS].equals(whole.to_dataframe()[COLUMNS])
    assert rows(reused) == rows(whole)
    assert sorted(map(str, reused.uncounted)) == sorted(map(str, whole.uncounted))
    assert (reused.flops, reused.macs, reused.bytes) == (whole.flops, whole.macs, whole.bytes)
    return reused


def fallback(report):
    return [n for n in report.notes if n.startswith("Traced as one program, not layer by layer")]


def blocks(n=3, d=16):
    x = inputs = keras.Input((8,))
    x = keras.layers.Dense(d, activation="relu", name="first")(x)
    for i in range(n):
        x = keras.layers.Dense(d, name=f"block{i}")(x)  # auto-named sublayers would map too
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(x))


def test_chains_are_runs_of_like_calls_each_reading_the_last():
    # "first" (8 -> 16) is not like the blocks (16 -> 16); the head (16 -> 2) neither
    assert profile_and_trace(blocks(3), batch_size=4).trace.chains == (("block0", "block1", "block2"),)
    # a block that reads the input of the one before it, not its output, ends a run
    x = inputs = keras.Input((16,))
    x = keras.layers.Dense(16, activation="relu", name="pre")(x)
    a = keras.layers.Dense(16, name="a")(x)
    b = keras.layers.Dense(16, name="b")(a)
    c = keras.layers.Dense(16, name="c")(a)
    model = keras.Model(inputs, keras.layers.Add(name="add")([b, c]))
    assert profile_and_trace(model, batch_size=4).trace.chains == (("a", "b"),)


def test_chains_are_found_beside_a_shared_layer_which_is_in_none():
    from keras_flops import backends
    from keras_flops.core import inputs
    from keras_flops.core.reuse import find_chains

    shared = keras.layers.Dense(16, name="shared")
    x = inputs_ = keras.Input((16,))
    x = shared(x)
    for i in range(3):
        x = keras.layers.Dense(16, name=f"b{i}")(x)
    model = keras.Model(inputs_, shared(x))
    backend = backends.of(model)
    specs = inputs.resolve(model, 4, None, backend).specs
    # reuse by layer falls back (a shared layer), and the chain is still found
    assert fallback(keras_flops.profile(model, batch_size=4)) != []
    assert find_chains(model, specs, backend) == (("b0", "b1", "b2"),)


def test_repeated_dense_blocks_are_traced_once_and_counted_each():
    B, d = 4, 16
    model = blocks(3, d)
    profiled = profile_and_trace(model, batch_size=B)
    report = profiled.report
    # first, one of the three like blocks, head: three traces for five calls
    assert (profiled.trace.traced, profiled.trace.calls) == (3, 5)
    by_layer = report.to_dataframe()
    block = 2 * B * d * d + B * d  # the matmul's 2 FLOPs a MAC, then the bias
    assert list(by_layer["flops"]) == [2 * B * 8 * d + 2 * B * d, block, block, block, 2 * B * d * 2 + B * 2]
    assert list(by_layer["flops"]) == [1152, 2112, 2112, 2112, 264]  # relu: B x d more in "first"
    assert list(by_layer["macs"]) == [B * 8 * d, B * d * d, B * d * d, B * d * d, B * d * 2]
    assert fallback(report) == []
    assert_same_as_whole(model, batch_size=B)


def test_a_sequential_counts_by_layer():
    model = keras.Sequential([keras.Input((8,))] + [keras.layers.Dense(8, name=f"d{i}") for i in range(4)])
    profiled = profile_and_trace(model, batch_size=3)
    # d0 reads the model's input, d1-d3 a layer's output: two traces for four calls
    assert (profiled.trace.traced, profiled.trace.calls) == (2, 4)
    assert profiled.report.macs == 4 * 3 * 8 * 8 == 768
    assert_same_as_whole(model, batch_size=3)


def test_nested_functional_models_and_keras_ops_between_layers():
    inner_in = keras.Input((6,))
    inner = keras.Model(inner_in, keras.layers.Dense(6, name="inner_dense")(inner_in), name="inner")
    x = inputs = keras.Input((6,))
    a = inner(x)
    b = keras.layers.Dense(6, name="other")(x)
    y = keras.ops.add(a, b)  # an op between layers: its own small trace
    model = keras.Model(inputs, keras.layers.Dense(3, name="out")(y))
    report = assert_same_as_whole(model, batch_size=2)
    assert fallback(report) == []
    by_layer = report.to_dataframe()
    assert by_layer.loc["inner/inner_dense", "macs"] == 2 * 6 * 6 == 72
    assert by_layer.loc[by_layer["class"] == "Add", "flops"].tolist() == [2 * 6] == [12]
    assert "inner" in by_layer.index  # the nested model's own row, after its layers


class TwoOutputs(keras.layers.Layer):
    def call(self, x):
        return x * 2.0, x * 3.0 + 1.0


class ReadsFirst(keras.layers.Layer):
    def call(self, a, b):
        return a + 1.0  # b is passed and never read


def test_an_output_a_later_layer_never_reads_counts_nothing():
    x = inputs = keras.Input((5,))
    a, b = TwoOutputs(name="two")(x)
    model = keras.Model(inputs, ReadsFirst(name="reads_first")(a, b))
    report = assert_same_as_whole(model, batch_size=1)
    # "two" runs x * 2 only (5 FLOPs): x * 3 + 1 feeds nothing that runs
    assert report.to_dataframe().loc["two", "flops"] == 5
    assert report.to_dataframe().loc["reads_first", "flops"] == 5


def test_a_pass_through_and_its_input_are_one_value_for_their_reader():
    B = 2
    x = inputs = keras.Input((4,))
    dropped = keras.layers.Dropout(0.5, name="dropout")(x)  # at inference: x itself
    model = keras.Model(inputs, keras.layers.Add(name="sum")([x, dropped]))
    report = assert_same_as_whole(model, batch_size=B)
    # "sum" reads x once (B x 4 floats), though it takes it twice, and writes B x 4
    assert report.to_dataframe().loc["sum", "min_bytes"] == B * 4 * 4 + B * 4 * 4 == 64
    assert report.to_dataframe().loc["sum", "flops"] == B * 4 == 8


class OneSpecThrice(keras.layers.Layer):
    """Its graph lists one tensor as its three outputs (as D-FINE's decoder does)."""

    def call(self, x):
        return x * 2.0, x * 3.0, x * 4.0

    def compute_output_spec(self, x):
        spec = keras.KerasTensor(x.shape, x.dtype)
        return spec, spec, spec


def test_one_tensor_listed_as_several_outputs_keeps_the_last():
    x = inputs = keras.Input((4,))
    model = keras.Model(inputs, list(OneSpecThrice(name="thrice")(x)))
    report = assert_same_as_whole(model, batch_size=1)
    # Keras maps the one tensor to the call's last output, x * 4: 4 FLOPs; x * 2 and x * 3 never run
    assert report.to_dataframe().loc["thrice", "flops"] == 4


def test_a_small_constant_a_keras_op_makes_is_read_as_one_program_reads_it():
    x = inputs = keras.Input((2,))
    ones = keras.ops.ones_like(x)  # for a batch of 1: a constant, 1 x 2
    model = keras.Model(inputs, keras.layers.Dense(3, name="dense")(ones))
    report = assert_same_as_whole(model, batch_size=1)
    if keras.config.backend() == "tensorflow":
        # TensorFlow folds it into a Const, written into the MatMul: "dense"
        # reads its kernel (2 x 3 floats) and bias (3), and writes 1 x 3
        assert report.to_dataframe().loc["dense", "min_bytes"] == 4 * (2 * 3 + 3 + 3) == 48


class Tiled(keras.layers.Layer):
    """Returns its one-row weight broadcast over the batch: a part larger than its whole."""

    def build(self, shape):
        self.w = self.add_weight(shape=(1, shape[-1]), initializer="ones")

    def call(self, x):
        return keras.ops.broadcast_to(self.w, keras.ops.shape(x))


def test_a_broadcast_weight_passed_on_is_read_at_the_weights_size():
    B = 8
    x = inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Add(name="sum")([x, Tiled(name="tiled")(x)]))
    report = assert_same_as_whole(model, batch_size=B)
    assert fallback(report) == []
    # "sum" reads x (B x 4 floats) and writes its result (B x 4); the
    # broadcast it reads is, in one TensorFlow program, at most the variable
    # it is of (4 floats, read from memory); on JAX and PyTorch the weight is
    # the program's argument, and the broadcast counts its own B x 4
    weight = 4 * 4 if keras.config.backend() == "tensorflow" else B * 4 * 4
    assert report.to_dataframe().loc["sum", "min_bytes"] == B * 4 * 4 + weight + B * 4 * 4


def test_a_shared_layer_falls_back_and_says_why():
    x = inputs = keras.Input((4,))
    dense = keras.layers.Dense(4, name="shared")
    model = keras.Model(inputs, dense(dense(x)))
    report = assert_same_as_whole(model, batch_size=3)
    assert fallback(report)[0].startswith(
        "Traced as one program, not layer by layer: layer 'shared' is called more than once")
    assert report.macs == 2 * 3 * 4 * 4 == 96


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__(name="subclassed")
        self.dense = keras.layers.Dense(4)

    def call(self, x):
        return self.dense(x) * 2.0


def test_a_subclassed_model_falls_back_and_says_why():
    model = Subclassed()
    model(np.zeros((1, 3), "float32"))
    report = assert_same_as_whole(model, batch_size=1)
    assert fallback(report) == [
        "Traced as one program, not layer by layer: Subclassed 'subclassed' is not a functional "
        "model (a subclassed model runs its own call, which the layer graph does not show)."]


class NoConfig(keras.layers.Layer):
    def __init__(self, table, **kwargs):  # an argument get_config() cannot serialize
        super().__init__(**kwargs)
        self.table = table
        self.dense = keras.layers.Dense(4)

    def call(self, x):
        return self.dense(x)


def test_a_layer_without_a_config_is_traced_per_call_and_named():
    x = inputs = keras.Input((4,))
    for i in range(2):
        x = NoConfig(object(), name=f"no_config{i}")(x)
    model = keras.Model(inputs, x)
    profiled = profile_and_trace(model, batch_size=2)
    assert (profiled.trace.traced, profiled.trace.calls) == (2, 2)
    report = assert_same_as_whole(model, batch_size=2)
    assert fallback(report) == []
    assert ("Traced each call on its own, not shared with calls like it (get_config() fails: "
            "NotImplementedError): 'no_config0', 'no_config1'.") in report.notes
    assert report.macs == 2 * (2 * 4 * 4) == 64


class BrokenConfig(keras.layers.Layer):
    """A layer whose get_config() reads an attribute it never set (as
    keras_hub's Llama decoder does)."""

    def __init__(self, units, activation, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.activation = activation
        self.dense = keras.layers.Dense(units)

    def call(self, x):
        return self.activation(self.dense(x))

    def get_config(self):
        return {**super().get_config(), "scaling": self.scaling}


def test_a_layer_whose_config_fails_is_keyed_by_what_it_holds():
    x = inputs = keras.Input((4,))
    x = keras.layers.Dense(4, name="first")(x)  # each block reads a value a layer made
    for i, activation in enumerate([keras.ops.relu, keras.ops.relu, keras.ops.tanh]):
        x = BrokenConfig(4, activation, name=f"broken{i}")(x)
    model = keras.Model(inputs, x)
    profiled = profile_and_trace(model, batch_size=2)
    # "first"; the two ReLU blocks share a trace; the tanh block, the same in all else, has its own
    assert (profiled.trace.traced, profiled.trace.calls) == (3, 4)
    report = assert_same_as_whole(model, batch_size=2)
    assert report.notes == ()
    assert report.macs == 4 * 2 * 4 * 4 == 128


def test_training_and_reuse_false_trace_the_whole_model():
    model = blocks(2)
    model.compile(loss="mse")
    report = keras_flops.profile(model, batch_size=2, training=True)
    assert fallback(report) == [
        "Traced as one program, not layer by layer: a training step's backward pass is traced with "
        "the whole model (reuse by layer covers inference)."]
    assert fallback(keras_flops.profile(model, batch_size=2, reuse=False)) == []  # asked for: no note


def test_a_sweep_and_the_summary_count_by_layer():
    model = blocks(2)
    table = keras_flops.sweep(model, batch_size=[1, 2]).to_dataframe()
    assert list(table[("(total)", "macs")]) == [8 * 16 + 2 * 16 * 16 + 16 * 2, 2 * (8 * 16 + 2 * 16 * 16 + 16 * 2)]
    assert list(table[("(total)", "macs")]) == [672, 1344]


# --------------------------------------------------------------------------
# The keras_hub zoo: every traceable backbone, reuse against the whole trace

hub_zoo = pytest.importorskip("hub_zoo")


@pytest.mark.parametrize("name", hub_zoo.TRACEABLE)
def test_every_zoo_backbone_counts_the_same_by_layer_as_whole(name):
    pytest.importorskip("keras_hub")
    model = hub_zoo.build(name)
    shape = hub_zoo.input_shape(name)
    reused = keras_flops.profile(model, input_shape=shape, warn=False)
    whole = keras_flops.profile(model, input_shape=shape, warn=False, reuse=False)
    assert reused.to_dataframe()[COLUMNS].equals(whole.to_dataframe()[COLUMNS])
    assert rows(reused) == rows(whole)
    assert sorted(map(str, reused.uncounted)) == sorted(map(str, whole.uncounted))
    assert fallback(whole) == []


class Holder(keras.layers.Layer):
    """A block that holds a sublayer it is given: its get_config() cannot
    rebuild it, so its key reads the sublayer's config."""

    def __init__(self, sub, **kwargs):
        super().__init__(**kwargs)
        self.sub = sub

    def call(self, x):
        return keras.ops.cast(self.sub(x), "float32")


def test_a_sublayer_computing_in_another_dtype_is_not_like_the_others():
    """Five blocks alike but for the fourth's Dense, which computes in
    bfloat16 (mixed_bfloat16): configs are keyed without names, yet a dtype
    policy's name is what it computes in, so the fourth is traced on its own
    (its MACs in bfloat16, its bytes its own); every layer as the whole
    trace. MACs by hand: five Dense(8) on 6 positions of 8, 5 * 6 * 8 * 8."""
    x = keras.Input((6, 8))
    h = x
    for i in range(5):
        h = Holder(keras.layers.Dense(8, dtype="mixed_bfloat16" if i == 3 else "float32"))(h)
    report = assert_same_as_whole(keras.Model(x, h))
    assert report.macs == 5 * 6 * 8 * 8 == 1920
    assert [op.mac_dtype for op in report.ops if op.macs] == ["float32"] * 3 + ["bfloat16", "float32"]
