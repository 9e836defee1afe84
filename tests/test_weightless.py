"""Models whose weights were never allocated: counted exactly, and left unallocated."""

import keras
import pytest

import keras_flops
from keras_flops import _compat

T, D, H = 6, 8, 2  # tokens, width, heads


def block():
    """Dense, dropout, batch normalization, attention and an LSTM: layers with
    state updates (moving averages, a seed) and a loop."""
    x = keras.Input((T, D), name="x")
    h = keras.layers.Dense(D, name="proj")(x)
    h = keras.layers.Dropout(0.1, name="drop")(h)
    h = keras.layers.BatchNormalization(name="bn")(h)
    h = keras.layers.MultiHeadAttention(H, D // H, name="mha")(h, h)
    y = keras.layers.LSTM(4, name="lstm")(h)
    return keras.Model(x, keras.layers.Dense(2, name="head")(y), name="block")


def weightless(build):
    with keras_flops.without_weights():
        return build()


def allocated(model) -> list:
    return [v.path for v in model.variables if _compat.is_allocated(v)]


def compiled(model):
    model.compile(optimizer="sgd", loss="mse")  # compile outside the scope: the optimizer's step is a variable
    return model


def test_weights_are_deferred_by_the_scope():
    model = weightless(block)
    assert model.count_params() > 0 and allocated(model) == []


@pytest.mark.parametrize("training", [False, True], ids=["forward", "training"])
def test_same_counts_per_layer_as_with_weights(training):
    keras.utils.set_random_seed(0)
    without = compiled(weightless(block))
    with_weights = compiled(block())
    a = keras_flops.profile(without, batch_size=3, training=training)
    b = keras_flops.profile(with_weights, batch_size=3, training=training)
    columns = ["flops", "macs"] + (["backward_flops", "backward_macs"] if training else [])
    assert a.to_dataframe()[columns].equals(b.to_dataframe()[columns])
    assert (a.flops, a.macs, a.train_flops) == (b.flops, b.macs, b.train_flops)
    assert a.uncounted == b.uncounted == ()
    assert allocated(without) == []


def test_hand_count_without_weights():
    # proj: Dense 8 -> 8 on 3 x 6 tokens: 18 x 64 = 1,152 MACs; head: 3 x 4 x 2 = 24 MACs;
    # mha: q, k, v, o projections 4 x 18 x 8 x 8 = 4,608; scores and values
    # 2 x 3 batch x 2 heads x 6 x 6 x 4 = 1,728; lstm: 6 steps x 3 x 4 gates x 4 x (8 + 4) = 3,456
    report = keras_flops.profile(weightless(block), batch_size=3)
    macs = report.to_dataframe(depth=1)["macs"]
    assert macs["proj"] == 18 * 8 * 8 == 1152
    assert macs["mha"] == 4 * 18 * 8 * 8 + 2 * 3 * 2 * 6 * 6 * 4 == 6336
    assert macs["lstm"] == 6 * 3 * 4 * 4 * (8 + 4) == 3456
    assert macs["head"] == 3 * 4 * 2 == 24
    assert report.macs == 1152 + 6336 + 3456 + 24


def test_no_initializer_reaches_the_count():
    report = keras_flops.profile(weightless(block), batch_size=1)
    random = {op.op_type for op in report.ops} & {
        "RandomStandardNormal", "TruncatedNormal", "RandomUniform", "StatelessRandomNormalV2",
        "StatelessTruncatedNormalV2", "StatelessRandomUniformV2"}
    assert random == set()


def test_summary_and_callback_free_paths_leave_weights_unallocated():
    model = weightless(block)
    out = []
    keras_flops.summary(model, batch_size=2, print_fn=out.append)
    keras_flops.attach(model, batch_size=2)
    model.summary(print_fn=out.append)
    assert "Total FLOPs" in out[0] and "Total FLOPs" in out[1]
    assert allocated(model) == []


def test_models_built_under_keras_own_scope():
    with keras.StatelessScope(initialize_variables=False):
        model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, name="d")])
    # Dense 5 -> 3, batch 2: 2 x 2 x 5 x 3 + 6 = 66 FLOPs, 30 MACs
    report = keras_flops.profile(model, batch_size=2)
    assert (report.flops, report.macs) == (66, 30)
    assert allocated(model) == []


def test_without_weights_is_the_stateless_scope():
    scope = keras_flops.without_weights()
    assert isinstance(scope, keras.StatelessScope) and scope.initialize_variables is False


def test_a_later_stateless_scope_leaves_weightless_models_unallocated():
    # Keras initializes every variable made under StatelessScope(initialize_variables=False)
    # when the next StatelessScope() exits, as a Lambda layer's shape inference does; the
    # variables made under without_weights() are kept off that list and stay unallocated.
    with keras_flops.without_weights():
        model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, name="d")])
    assert not any(id(v) in {id(p) for p in _compat.pending_variables()} for v in model.variables)
    keras.layers.Lambda(lambda t: t * 2)(keras.Input((None,)))
    assert allocated(model) == []
    with keras.StatelessScope(initialize_variables=False):  # Keras's own scope: its list, as read here
        other = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
    assert {id(v) for v in other.variables} <= {id(p) for p in _compat.pending_variables()}
    _compat.keep_deferred(other.variables)
    assert not {id(v) for v in other.variables} & {id(p) for p in _compat.pending_variables()}


def test_a_task_model_built_without_weights_gets_our_error():
    # keras_hub's task model compiles a default optimizer in its constructor:
    # its iteration counter is a variable with a value, which Keras refuses
    # in a stateless scope
    keras_hub = pytest.importorskip("keras_hub")
    config = dict(vocabulary_size=64, num_layers=1, num_query_heads=2, num_key_value_heads=1,
                  hidden_dim=16, intermediate_dim=32)  # fmt: skip
    with pytest.raises(keras_flops.WithoutWeightsError) as err:
        with keras_flops.without_weights():
            backbone = keras_hub.models.LlamaBackbone(**config)
            keras_hub.models.LlamaCausalLM(backbone=backbone, preprocessor=None)
    message = str(err.value)
    assert "Build the backbone inside the block and the task model outside it" in message
    assert "    causal_lm = keras_hub.models.LlamaCausalLM(backbone=backbone, preprocessor=None)" in message
    # as the message says: the task model outside, around a weightless backbone
    with keras_flops.without_weights():
        backbone = keras_hub.models.LlamaBackbone(**config)
    causal_lm = keras_hub.models.LlamaCausalLM(backbone=backbone, preprocessor=None)
    assert keras_flops.profile_generation(causal_lm, 2, 4).prefill.macs > 0


class Peek(keras.layers.Layer):
    """Projects by the kernel of a layer it does not hold (a closure, not
    tracked): a weight read outside the layer that holds it."""

    def __init__(self, kernel_of, **kwargs):
        super().__init__(**kwargs)
        self._kernel_of = kernel_of

    def call(self, h):
        return keras.ops.matmul(h, self._kernel_of())


def dense_chain(peek: bool = False):
    """A stem and five like Dense blocks (D x D kernels and D biases); with
    ``peek``, a last layer projecting by the third block's kernel."""
    x = keras.Input((T, D), name="x")
    h = keras.layers.Dense(D, use_bias=False, name="stem")(x)
    blocks = [keras.layers.Dense(D, name=f"block{i}") for i in range(5)]
    for b in blocks:
        h = b(h)
    if peek:
        h = Peek(lambda: blocks[2].kernel, name="peek")(h)
    return keras.Model(x, h, name="chain")


def read_at_once(model, reuse: bool):
    """The report of one inference call on a batch of 2, what it holds at
    once read (as ``keras_flops.memory`` reads it)."""
    from keras_flops.profiling import profile_and_trace

    return profile_and_trace(model, 2, None, memory=True, reuse=reuse).report


def assert_whole(fewer, whole):
    columns = ["flops", "macs", "bytes", "min_bytes"]
    assert fewer.to_dataframe()[columns].equals(whole.to_dataframe()[columns])
    assert fewer.activations == whole.activations
    assert any(n.startswith("Traced with fewer calls of") for n in fewer.notes), fewer.notes


def placeholders_traced(monkeypatch):
    """The number of the variables' placeholders each TensorFlow trace takes."""
    from keras_flops.backends.tensorflow import trace as tf_trace

    taken, traced = [], tf_trace._trace_call

    def counting(model, call, specs, autograph, passthrough, variables, sharing):
        taken.append(len(sharing.firsts))
        return traced(model, call, specs, autograph, passthrough, variables, sharing)

    monkeypatch.setattr(tf_trace, "_trace_call", counting)
    return taken


def test_variables_only_calls_passed_through_hold_share_placeholders(monkeypatch):
    """The program with the chain's first block and its last (the three
    between passed through, their memory read as run) takes a placeholder
    each for the stem's kernel and the first and last blocks' kernels and
    biases, 1 + 2 x 2 = 5, and one per shape and dtype for the six weights
    of the blocks between (a D x D kernel, a D bias): 7, not 1 + 5 x 2 = 11.
    The counts are the whole program's; nothing is allocated."""
    model = weightless(dense_chain)
    taken = placeholders_traced(monkeypatch)
    fewer = read_at_once(model, reuse=True)
    assert taken == [1 + 2 * 2 + 2]
    monkeypatch.undo()
    assert_whole(fewer, read_at_once(model, reuse=False))
    assert allocated(model) == []


def test_a_weight_read_by_a_layer_that_does_not_hold_it_gets_its_own_placeholder(monkeypatch):
    """The peek layer reads the third block's kernel, which that block alone
    holds: the program passing the block through reads the kernel's shared
    placeholder, so it is traced again with one placeholder per variable
    (1 + 5 x 2 = 11), and counted as the whole program is. By hand, per
    sequence: the stem, five blocks and the peek, 7 T D D MACs."""
    model = weightless(lambda: dense_chain(peek=True))
    taken = placeholders_traced(monkeypatch)
    fewer = read_at_once(model, reuse=True)
    assert taken == [7, 11]
    monkeypatch.undo()
    assert_whole(fewer, read_at_once(model, reuse=False))
    assert fewer.macs == 2 * 7 * T * D * D == 5376
