"""Training steps and generation with fewer calls of a chain of like calls
(keras_flops/core/chains.py): the programs with three and two of a model's
decoder blocks give, per layer, exactly what the whole program gives.

Backend-neutral: collected here on TensorFlow, and by the JAX and PyTorch
suites (tests/jax_suite/test_chains_jax.py, tests/torch_suite/test_chains_torch.py).
Each task model of the zoo (tests/hub_zoo.py) is built with 5 blocks (its
backbones' test configs have 2): three left out of the programs with more.
"""

import copy

import keras
import pytest

import keras_flops

keras_hub = pytest.importorskip("keras_hub", reason="pip install --no-deps keras-hub (see the README)")

import hub_zoo  # noqa: E402

BLOCKS = 5
B = 2
COLUMNS = ["flops", "macs", "bytes", "min_bytes"]
TRAINING = COLUMNS + ["backward_flops", "backward_macs", "saved_bytes"]
CAUSAL_LMS = [name for name in hub_zoo.TASKS if name.endswith("CausalLM")]


def deep_task(name):
    """The zoo's task model ``name`` around its backbone with ``BLOCKS`` blocks."""
    task, backbone, kwargs = hub_zoo.TASKS[name]
    config = copy.deepcopy(hub_zoo.ZOO[backbone]["config"])
    if "num_layers" in config["config"]:
        config["config"]["num_layers"] = BLOCKS
    weights = keras.config.backend() == "torch"  # as hub_zoo.build_task: an int variable on torch
    if weights:
        built = keras.saving.deserialize_keras_object(config)
    else:
        with keras_flops.without_weights():
            built = keras.saving.deserialize_keras_object(config)
    model = getattr(keras_hub.models, task)(backbone=built, preprocessor=None, **kwargs)
    return model, hub_zoo.input_shape(backbone)


def rows(report):
    return [(r.path, r.class_name, r.output_shape, r.params, r.calls) for r in report.layers]


def assert_same(shortened, whole, columns):
    assert shortened.to_dataframe()[columns].equals(whole.to_dataframe()[columns])
    assert rows(shortened) == rows(whole)
    assert shortened.activations == whole.activations
    assert sorted(map(str, shortened.uncounted)) == sorted(map(str, whole.uncounted))


def shortened(report) -> bool:
    return any(n.startswith("Traced with fewer calls of") for n in report.notes)


@pytest.mark.parametrize("name", list(hub_zoo.TASKS))
def test_a_training_step_with_fewer_blocks_is_the_whole_step(name):
    model, shape = deep_task(name)
    step = keras_flops.profile(model, batch_size=B, input_shape=shape, training=True, warn=False)
    whole = keras_flops.profile(
        model, batch_size=B, input_shape=shape, training=True, warn=False, reuse=False
    )
    assert_same(step, whole, TRAINING)
    assert (step.macs, step.backward_macs) == (whole.macs, whole.backward_macs)
    if name.endswith("CausalLM"):  # the decoder blocks: programs of three and two of the five
        assert shortened(step), step.notes
    assert not shortened(whole)


@pytest.mark.parametrize("name", CAUSAL_LMS)
def test_a_generation_with_fewer_blocks_is_the_whole_generation(name, monkeypatch):
    """One program per phase: the prefill with two of the five blocks (the
    first and the last), the decode step with the first alone (it returns
    no block's output), the others read as run where they stand, as the
    first; per layer and in memory, the whole generation's."""
    from keras_flops import backends

    causal_lm, _ = deep_task(name)
    backend, traced = backends.of(causal_lm), []
    trace_call = backend.trace_call
    monkeypatch.setattr(
        backend, "trace_call", lambda *a, **k: traced.append(k.get("passthrough")) or trace_call(*a, **k)
    )
    gen = keras_flops.profile_generation(causal_lm, 2, 5, batch_size=B, warn=False)
    assert [len(passed) for passed in traced] == [5 - 2, 5 - 1]
    monkeypatch.undo()
    whole = keras_flops.profile_generation(causal_lm, 2, 5, batch_size=B, warn=False, reuse=False)
    for part, every in ((gen.prefill, whole.prefill), (gen.decode, whole.decode)):
        assert_same(part, every, COLUMNS)
        assert shortened(part) and read_as_run(part), part.notes
    assert (gen.memory.peak, gen.kv_cache_bytes) == (whole.memory.peak, whole.kv_cache_bytes)


def test_the_left_out_blocks_count_as_the_worked_formula():
    """A 5-block GPT-2's training step: 3x its forward MACs ("6N"), as the
    whole step; its forward, by hand, L (4 T d^2 + 2 T^2 d + 2 T d F) + T d V
    per sequence (tests/test_six_n.py's formula)."""
    V, L, d, H, F, T = 10, 5, 8, 2, 16, 6
    backbone = keras_hub.models.GPT2Backbone(vocabulary_size=V, num_layers=L, num_heads=H, hidden_dim=d,
                                             intermediate_dim=F, max_sequence_length=T)  # fmt: skip
    lm = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
    step = keras_flops.profile(lm, batch_size=B, input_shape={"token_ids": (T,), "padding_mask": (T,)},
                               training=True, warn=False)  # fmt: skip
    forward = B * (L * (4 * T * d * d + 2 * T * T * d + 2 * T * d * F) + T * d * V)
    assert forward == 2 * (5 * (1536 + 576 + 1536) + 480) == 37440
    assert (step.macs, step.backward_macs) == (forward, 2 * forward)
    assert shortened(step)
    per_block = step.to_dataframe(depth=2)["macs"]
    blocks = [per_block[f"{backbone.name}/transformer_layer_{i}"] for i in range(L)]
    assert blocks == [B * (4 * T * d * d + 2 * T * T * d + 2 * T * d * F)] * L  # 7,296 each, the left-out too


def read_as_run(report) -> bool:
    """Whether a chain's calls passed through were read as run where they stand (one program)."""
    return any("read where it stands" in n for n in report.notes)


def one_program(report) -> bool:
    return any("One program sufficed for" in n for n in report.notes)


@pytest.mark.parametrize("name", ["GPT2CausalLM", "LlamaCausalLM"])
def test_a_closed_chain_is_counted_from_one_program_where_nothing_else_is_read(name):
    """A decoder block reads no floating value but the block before's output
    (its padding mask is integer): its inference call (traced whole for its
    tied embedding) comes from one program with two of the five blocks
    (the first and the last), and so does a training step's report (its
    saved activations):
    every backward op goes to the layer it differentiates. What
    a step holds at once (memory=True, as keras_flops.memory reads it) needs
    the program with two blocks as well; each is the whole program's."""
    from keras_flops.profiling import profile_and_trace

    model, shape = deep_task(name)
    call = keras_flops.profile(model, batch_size=B, input_shape=shape, warn=False)
    every = keras_flops.profile(model, batch_size=B, input_shape=shape, warn=False, reuse=False)
    assert shortened(call) and one_program(call), call.notes
    assert_same(call, every, COLUMNS)
    step = keras_flops.profile(model, batch_size=B, input_shape=shape, training=True, warn=False)
    assert shortened(step) and one_program(step), step.notes
    assert step.activations.peak == step.activations.transient == 0  # not read by profile
    full, every = (
        profile_and_trace(model, B, shape, training=True, memory=True, reuse=reuse).report
        for reuse in (True, False)
    )
    assert shortened(full) and not one_program(full), full.notes
    assert_same(full, every, TRAINING)
    assert full.activations.peak > full.activations.saved_bytes > 0


T, D = 8, 4


class Mix(keras.layers.Layer):
    """A block that adds a floating side input to its dense projection."""

    def build(self, h_shape, side_shape):
        self.dense = keras.layers.Dense(D)
        self.dense.build(h_shape)

    def call(self, h, side):
        return self.dense(h) + side


class Trim(keras.layers.Layer):
    """A block that drops its first position: (None, None, D) in the graph
    either side, one position fewer each call when traced."""

    def build(self, shape):
        self.dense = keras.layers.Dense(D)
        self.dense.build(shape)

    def call(self, h):
        return self.dense(h)[:, 1:]


def step_and_whole(outputs_of):
    """The training step of the model ``outputs_of(x)`` (mean squared error)
    on (B, T, D), counted with reuse and traced whole, the two checked equal."""
    x = keras.Input((None, D))
    model = keras.Model(x, outputs_of(x))
    model.compile(loss="mse")
    step, whole = (
        keras_flops.profile(model, batch_size=B, input_shape=(T, D), training=True, warn=False, reuse=reuse)
        for reuse in (True, False)
    )
    assert_same(step, whole, TRAINING)
    return step


def test_a_chain_reading_another_floating_value_is_counted_from_two_programs():
    """Five blocks each read the side value s = Dense(x): in the backward
    pass the five cotangents of s are summed outside the blocks, once per
    block, so the chain is not closed and both programs are traced; the
    count is the whole step's. Forward by hand: the side Dense T*D*D, five
    blocks T*D*D each (the adds are not MACs), per sequence."""

    def blocks(x):
        side, h = keras.layers.Dense(D)(x), x
        for _ in range(BLOCKS):
            h = Mix()(h, side)
        return h

    step = step_and_whole(blocks)
    assert shortened(step) and not one_program(step), step.notes
    assert step.macs == B * (1 + BLOCKS) * T * D * D == 2 * 6 * 8 * 16 == 1536


def test_an_inference_call_read_at_once_is_counted_from_one_program():
    """The same five blocks, one inference call, what it holds at once
    read (memory=True, as keras_flops.memory reads it): the blocks passed
    through are read as run where they stand, from the program with three
    of them; the whole program's per layer and in memory. By hand, per
    sequence: the side Dense and each block's projection T*D*D MACs. Held
    at once (float32, B*T*D*4 = 256 B a value): the side value, a block's
    input and its projection (the sum written into one of them, read there
    last), 3 x 256 = 768 B; the result, 256 B."""
    from keras_flops.profiling import profile_and_trace

    x = keras.Input((None, D))
    side, h = keras.layers.Dense(D)(x), x
    for _ in range(BLOCKS):
        h = Mix()(h, side)
    model = keras.Model(x, h)
    call, whole = (
        profile_and_trace(model, B, (T, D), memory=True, reuse=reuse).report for reuse in (True, False)
    )
    assert_same(call, whole, COLUMNS)
    assert shortened(call) and read_as_run(call), call.notes
    assert call.macs == B * (1 + BLOCKS) * T * D * D == 1536
    assert B * T * D * 4 == 256
    assert (call.activations.peak, call.activations.transient, call.activations.results) == (
        3 * 256,
        3 * 256,
        256,
    )


def passed_through(monkeypatch):
    """For each program a count traces with calls passed through, their number."""
    from keras_flops import backends

    backend, passed = backends.of(), []
    trace = backend.trace

    def counting(*args, **kwargs):
        if kwargs.get("passthrough"):
            passed.append(len(kwargs["passthrough"]))
        return trace(*args, **kwargs)

    monkeypatch.setattr(backend, "trace", counting)
    return passed


def dense_blocks(stem: bool):
    """Five Dense blocks (D to D), after a stem unlike them (no bias) or on the model's input."""

    def blocks(x):
        h = keras.layers.Dense(D, use_bias=False)(x) if stem else x
        for _ in range(BLOCKS):
            h = keras.layers.Dense(D)(h)
        return h

    return blocks


def test_a_closed_chain_whose_first_call_is_like_its_last_is_counted_from_its_first_and_last(monkeypatch):
    """Five Dense blocks after a Dense stem, a training step: each block's
    input takes a gradient (the stem's weights are trained), so the first
    block's ops (forward and backward) are the last's, and one program with
    those two, the three between standing in for the first, gives the whole
    step. By hand, per sequence: forward, the stem and five blocks, 6 T D D
    MACs; backward, every kernel's gradient (6 T D D) and every block's
    input's (5 T D D; the stem's input, the model's, takes none)."""
    passed = passed_through(monkeypatch)
    step = step_and_whole(dense_blocks(stem=True))
    assert passed == [BLOCKS - 2]  # one program: the first block and the last
    assert shortened(step) and one_program(step), step.notes
    assert T * D * D == 128
    assert (step.macs, step.backward_macs) == (B * 6 * 128, B * (6 + 5) * 128) == (1536, 2816)


def test_a_closed_chain_whose_first_call_takes_no_gradient_is_counted_from_its_first_two_and_last(
    monkeypatch,
):
    """Five Dense blocks on the model's input, a training step: the first
    block's input takes no gradient, so its backward pass lacks what every
    other block's has (its input's gradient); the first and the last differ,
    and the program with the first two and the last is traced too, each
    block between standing in for the second. By hand, per sequence: forward
    5 T D D MACs; backward, five kernels' gradients and four inputs' (9 T D D)."""
    passed = passed_through(monkeypatch)
    step = step_and_whole(dense_blocks(stem=False))
    assert passed == [BLOCKS - 2, BLOCKS - 3]  # the first and the last; then the first two and the last
    assert shortened(step) and one_program(step), step.notes
    assert (step.macs, step.backward_macs) == (B * 5 * 128, B * 9 * 128) == (1280, 2304)


class Holding(keras.layers.Layer):
    """A Dense block that also holds a weight another layer computes with."""

    def __init__(self, held, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(D)
        self.held = held  # tracked: one of this layer's weights too

    def build(self, shape):
        self.dense.build(shape)

    def call(self, h):
        return self.dense(h)


def test_a_weight_a_passed_through_call_holds_with_another_layer_takes_its_gradient():
    """Five blocks after a stem, each holding the head's kernel as well as
    its own Dense: the blocks passed through hold the kernel, but the head
    computes with it, so its gradient is taken. By hand, per sequence:
    forward, the stem, five blocks and the head, 7 T D D MACs; backward,
    seven kernels' gradients and six inputs' (the blocks' and the head's):
    13 T D D."""
    head = keras.layers.Dense(D, name="head")
    head.build((None, None, D))

    def blocks(x):
        h = keras.layers.Dense(D, use_bias=False)(x)
        for _ in range(BLOCKS):
            h = Holding(head.kernel)(h)
        return head(h)

    step = step_and_whole(blocks)
    assert shortened(step), step.notes
    assert (step.macs, step.backward_macs) == (B * 7 * 128, B * 13 * 128) == (1792, 3328)


def test_a_chain_whose_calls_take_other_specs_is_traced_whole():
    """Five Mix blocks look alike in the graph, but the second adds the
    mean of x over positions, (B, 1, D), and the third x itself, (B, T, D):
    the third, passed through, is called on other shapes than the second it
    stands in for, so every block is traced, and the note says why. MACs by
    hand: five projections of T positions, 5 T D D per sequence (the mean
    and the adds are not MACs)."""

    def blocks(x):
        mean, h = keras.ops.mean(x, axis=1, keepdims=True), x
        for i in range(BLOCKS):
            h = Mix()(h, mean if i % 2 else x)
        return h

    step = step_and_whole(blocks)
    assert not shortened(step)
    assert any("is called on other arguments (shapes, dtypes, values)" in n for n in step.notes), step.notes
    assert step.macs == B * BLOCKS * T * D * D == 2 * 5 * 8 * 16 == 1280


def test_a_chain_whose_block_changes_its_shape_is_traced_whole():
    """Five Trim blocks: (None, None, D) either side in the graph, one
    position fewer each call when traced; the second returns a value of a
    shape none of its arguments has, so none stands in for it. MACs by
    hand: block i (0-based) projects T - i positions."""

    def blocks(x):
        h = x
        for _ in range(BLOCKS):
            h = Trim()(h)
        return h

    step = step_and_whole(blocks)
    assert not shortened(step)
    assert any("returns a value of a shape and dtype none of its arguments has" in n for n in step.notes)
    assert step.macs == B * (8 + 7 + 6 + 5 + 4) * D * D == 2 * 30 * 16 == 960


def test_a_count_reads_each_layer_once_and_no_count_after_it():
    """Inside ``steady()`` (a count), a layer's tree and own parameters are
    read once: a sublayer added meanwhile is not seen until the block ends.
    Dense(4) on 3 features holds 3*4 + 4 = 16 parameters."""
    from keras_flops.core.layers import layer_tree, own_params, steady

    outer = keras.layers.Layer()
    outer.dense = keras.layers.Dense(4)
    outer.dense.build((None, 3))
    with steady():
        assert layer_tree(outer) == [(outer.dense.name, outer.dense)]
        assert own_params(outer.dense) == 3 * 4 + 4
        outer.extra = keras.layers.Dense(2)  # tracked as a sublayer
        assert layer_tree(outer) == [(outer.dense.name, outer.dense)]
    assert [layer for _, layer in layer_tree(outer)] == [outer.dense, outer.extra]


def test_only_the_sublayers_calls_passed_through_alone_would_call_are_left_unwrapped_and_unread():
    """Blocks b0 to b3, each holding a Dense; b2 and b3 hold one Dense,
    shared. With b1 and b2 passed through (standing in for b0), b1's Dense is
    called by no one and is not wrapped, and no call reads its weights; the
    shared Dense, found first under b2, is called by b3: it is wrapped, and
    its weights are read; every other layer is wrapped."""
    from keras_flops.core.layers import _within_passed, layer_tree, passed_over, steady

    class Block(keras.layers.Layer):
        def __init__(self, inner, **kwargs):
            super().__init__(**kwargs)
            self.inner = inner

    class Top(keras.layers.Layer):
        def __init__(self, blocks, **kwargs):
            super().__init__(**kwargs)
            self.blocks = blocks

    shared = keras.layers.Dense(2, name="shared")
    inner = [keras.layers.Dense(2, name=f"d{i}") for i in range(2)] + [shared, shared]
    for dense in inner[:3]:
        dense.build((None, 2))
    top = Top([Block(d, name=f"b{i}") for i, d in enumerate(inner)], name="top")
    with steady():
        paths = [path for path, _ in layer_tree(top)]
        assert paths == ["b0", "b0/d0", "b1", "b1/d1", "b2", "b2/shared", "b3"]
        assert _within_passed(top, {"b1": "b0", "b2": "b0"}) == {"b1/d1"}
        assert _within_passed(top, {}) == set()
        # the weights no call but those passed through reads: d1's alone, not the shared Dense's
        d1 = inner[1]
        assert passed_over(top, {"b1": "b0", "b2": "b0"}) == {id(d1.kernel), id(d1.bias)}
