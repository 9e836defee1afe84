"""Sharded models under keras.distribution on 8 host devices: what each device
computes and communicates, read from XLA's own partitioned program, checked
against that program read here independently, and against counts worked
out by hand."""

import collections
import math
import re

import jax
import keras
import numpy as np
import pandas as pd
import pytest

import keras_flops
from keras_flops import _compat

keras_hub = pytest.importorskip("keras_hub")

SMALL_LLAMA = dict(
    vocabulary_size=256, num_layers=2, num_query_heads=4, num_key_value_heads=2, hidden_dim=64,
    intermediate_dim=128,
)  # fmt: skip
SEQUENCE = {"token_ids": (16,), "padding_mask": (16,)}


def test_eight_devices():
    assert len(jax.devices()) == 8, "run with XLA_FLAGS=--xla_force_host_platform_device_count=8"


def llama_on(mesh_shape, config=SMALL_LLAMA, layout=None):
    mesh = keras.distribution.DeviceMesh(mesh_shape, ["batch", "model"], jax.devices()[: math.prod(mesh_shape)])
    layout = layout(mesh) if layout else keras_hub.models.LlamaBackbone.get_layout_map(mesh)
    distribution = keras.distribution.ModelParallel(layout_map=layout, batch_dim_name="batch")
    keras.distribution.set_distribution(distribution)
    with keras_flops.without_weights():
        model = keras_hub.models.LlamaBackbone(**config)
    return model, distribution


# --------------------------------------------------------------------------
# XLA's compiled program, read here without keras_flops

ITEM = {"f32": 4, "bf16": 2, "f16": 2, "s32": 4, "u32": 4, "pred": 1, "s8": 1, "u8": 1, "f64": 8, "s64": 8}
KINDS = ("all-reduce", "all-gather", "reduce-scatter", "all-to-all", "collective-permute")


def read_hlo(text):
    """(dot MACs, {kind: count}, {kind: result bytes}) of compiled HLO text:
    a dot's MACs are its result's elements x the product of its lhs's
    contracting dims, whose sizes come from the instruction that defines the
    lhs (HLO names are unique in a module); a collective's result may be a
    tuple (XLA combines several into one)."""
    line_re = re.compile(r"^\s*(?:ROOT )?%(\S+) = (\(.*?\)|\w+\[[\d,]*\]\S*) ([\w-]+)\((.*)$")
    arrays, lines = {}, []
    for line in text.splitlines():
        found = line_re.match(line)
        if found:
            name, shape, opcode, rest = found.groups()
            arrays[name] = [(t, [int(d) for d in dims.split(",") if d]) for t, dims in re.findall(r"(\w+)\[([\d,]*)\]", shape)]
            lines.append((name, opcode, rest))
    macs, count, result = 0, collections.Counter(), collections.Counter()
    for name, opcode, rest in lines:
        if opcode == "dot":
            lhs = re.findall(r"%([\w.\-]+)", rest.split(")")[0])[0]
            contracting = [int(d) for d in re.search(r"lhs_contracting_dims=\{([\d,]*)\}", rest).group(1).split(",")]
            macs += math.prod(arrays[name][0][1]) * math.prod(arrays[lhs][0][1][d] for d in contracting)
        kind = opcode.removesuffix("-start")
        if kind in KINDS:
            count[kind] += 1
            result[kind] += sum(math.prod(dims) * ITEM[t] for t, dims in arrays[name])
    return macs, count, result


def compiled_forward(model, distribution, batch, length):
    """Keras's own forward pass of ``model`` (``stateless_call``), jitted with
    the distribution's layouts on abstract values and compiled by XLA."""

    def sharded(variable):
        layout = distribution.get_variable_layout(variable).backend_layout
        return jax.ShapeDtypeStruct(tuple(variable.shape), variable.dtype, sharding=layout)

    data = distribution.get_data_layout((batch, length)).backend_layout
    ids = jax.ShapeDtypeStruct((batch, length), "int32", sharding=data)

    def forward(trainable, non_trainable, token_ids, padding_mask):
        x = {"token_ids": token_ids, "padding_mask": padding_mask}
        return model.stateless_call(trainable, non_trainable, x)[0]

    trainable = [sharded(v) for v in model.trainable_variables]
    non_trainable = [sharded(v) for v in model.non_trainable_variables]
    return jax.jit(forward).lower(trainable, non_trainable, ids, ids).compile()


def test_per_device_macs_and_collectives_are_xlas():
    model, distribution = llama_on((2, 4))
    report = keras_flops.profile(model, batch_size=2, input_shape=SEQUENCE)
    assert report.mesh == {"batch": 2, "model": 4}
    device = report.per_device
    macs, count, result = read_hlo(compiled_forward(model, distribution, 2, 16).as_text())
    assert device.macs == macs
    table = device.collectives
    assert table.groupby("kind")["count"].sum().to_dict() == dict(count)
    assert table.groupby("kind")["result_bytes"].sum().to_dict() == dict(result)
    # the global program is what it is without a mesh: 2 sequences of 16 tokens;
    # per layer q (4 heads), k and v (2 heads), o, three feed-forward matmuls,
    # the attention's two batched matmuls (2 x 4 heads x 16 x 16 x 16 each), and
    # the rotary embedding's outer product of 16 positions and 8 frequencies,
    # for the queries and for the keys
    tokens, hidden, head = 32, 64, 16
    per_layer = tokens * hidden * (4 * head + 2 * 2 * head + 4 * head) + 3 * tokens * hidden * 128
    attention = 2 * (2 * 4 * 16 * 16 * head)
    rotary = 2 * 16 * (head // 2)
    assert report.macs == 2 * (per_layer + attention + rotary) == 2_490_880
    # each device holds a share of the work, and more than an even split
    # (XLA replicates some of it)
    assert report.macs / 8 < device.macs < report.macs
    assert device.batch_size == 1  # 2 sequences over a batch axis of 2


def test_a_long_chain_of_blocks_is_partitioned_with_two_middle_calls_exactly():
    """Seven decoder blocks: XLA partitions programs of five and four of them
    (the first three and the last; the first two and the last), and the two
    middle blocks left out are each the difference. Per layer, per collective
    and in memory, that equals XLA's partition of all seven (reuse=False),
    and XLA's program of Keras's own forward pass read here."""
    model, distribution = llama_on((2, 4), config=dict(SMALL_LLAMA, num_layers=7))
    report = keras_flops.profile(model, batch_size=2, input_shape=SEQUENCE)
    whole = keras_flops.profile(model, batch_size=2, input_shape=SEQUENCE, reuse=False)
    device, every = report.per_device, whole.per_device
    columns = ["flops", "macs", "bytes", "min_bytes"]
    pd.testing.assert_frame_equal(device.to_dataframe()[columns], every.to_dataframe()[columns])
    key = ["layer", "kind", "group_size", "operand_bytes", "result_bytes"]
    mine = device.collectives.groupby(key)["count"].sum()
    pd.testing.assert_series_equal(mine, every.collectives.groupby(key)["count"].sum())
    assert device.device_memory == every.device_memory
    macs, count, result = read_hlo(compiled_forward(model, distribution, 2, 16).as_text())
    assert device.macs == macs
    assert device.collectives.groupby("kind")["count"].sum().to_dict() == dict(count)
    # blocks 3, 4 and 5 are not in the partitioned programs; each has its own rows
    table = device.collectives

    def of_block(i):
        return table[table["layer"].str.startswith(f"transformer_layer_{i}/")].groupby("kind")["count"].sum().to_dict()

    assert of_block(4) == of_block(1) and sum(of_block(4).values()) > 0
    assert any("XLA partitioned 3 fewer calls" in n and "'transformer_layer_0' ... 'transformer_layer_6'" in n
               for n in device.notes)  # fmt: skip
    assert not any("fewer calls" in n for n in every.notes)


def test_a_causal_lms_blocks_partition_by_layer_where_its_tied_embedding_is_traced_whole():
    """A CausalLM calls its token embedding twice (in and out), so its global
    count traces the whole model; its per-device program still partitions
    the seven blocks with two and one middle blocks, as every call would."""
    model, _ = llama_on((2, 4), config=dict(SMALL_LLAMA, num_layers=7))
    lm = keras_hub.models.LlamaCausalLM(backbone=model, preprocessor=None)
    report = keras_flops.profile(lm, batch_size=2, input_shape=SEQUENCE)
    whole = keras_flops.profile(lm, batch_size=2, input_shape=SEQUENCE, reuse=False)
    assert any(n.startswith("Traced as one program") and "called more than once" in n for n in report.notes)
    columns = ["flops", "macs", "bytes", "min_bytes"]
    pd.testing.assert_frame_equal(report.per_device.to_dataframe()[columns], whole.per_device.to_dataframe()[columns])
    assert report.per_device.device_memory == whole.per_device.device_memory
    assert any("XLA partitioned 3 fewer calls" in n for n in report.per_device.notes)
    # a training step's program is partitioned whole: XLA combines its gradients' all-reduces by their number
    step = keras_flops.profile(lm, batch_size=2, input_shape=SEQUENCE, training=True)
    assert not any("fewer calls" in n for n in step.per_device.notes)


def keras_hubs_own_layout(backbone):
    def distribution(mesh):
        return keras.distribution.ModelParallel(layout_map=backbone.get_layout_map(mesh), batch_dim_name="batch")
    return distribution


@pytest.mark.parametrize("name, make, distribute", [
    ("Gemma", lambda: keras_hub.models.GemmaBackbone(
        vocabulary_size=256, num_layers=6, num_query_heads=4, num_key_value_heads=4, hidden_dim=64,
        intermediate_dim=128, head_dim=16), keras_hubs_own_layout(keras_hub.models.GemmaBackbone)),
    ("Qwen", lambda: keras_hub.models.QwenBackbone(
        vocabulary_size=256, num_layers=6, num_query_heads=4, num_key_value_heads=4, hidden_dim=64,
        intermediate_dim=128), keras_hubs_own_layout(keras_hub.models.QwenBackbone)),
    ("GPT-2, data parallel", lambda: keras_hub.models.GPT2Backbone(
        vocabulary_size=256, num_layers=6, num_heads=4, hidden_dim=64, intermediate_dim=128,
        max_sequence_length=16), lambda mesh: keras.distribution.DataParallel(devices=jax.devices())),
])  # fmt: skip
def test_chains_of_other_backbones_partition_as_every_call(name, make, distribute):
    keras.distribution.set_distribution(
        distribute(keras.distribution.DeviceMesh((2, 4), ["batch", "model"], jax.devices()))
    )
    with keras_flops.without_weights():
        model = make()
    report = keras_flops.profile(model, batch_size=8, input_shape=SEQUENCE)
    whole = keras_flops.profile(model, batch_size=8, input_shape=SEQUENCE, reuse=False)
    columns = ["flops", "macs", "bytes", "min_bytes"]
    pd.testing.assert_frame_equal(report.per_device.to_dataframe()[columns], whole.per_device.to_dataframe()[columns])
    key = ["layer", "kind", "group_size", "operand_bytes", "result_bytes"]
    assert (report.per_device.collectives.groupby(key)["count"].sum().to_dict()
            == whole.per_device.collectives.groupby(key)["count"].sum().to_dict())  # fmt: skip
    assert report.per_device.device_memory == whole.per_device.device_memory
    assert any("XLA partitioned 2 fewer calls" in n for n in report.per_device.notes)


def shard_bytes(variable, distribution, mesh):
    """A device's shard of a variable, by hand: each dim divided by the mesh
    axes its layout names."""
    layout = distribution.get_variable_layout(variable)
    shape = [
        dim // math.prod(mesh[a] for a in ((axes,) if isinstance(axes, str) else axes or ()))
        for dim, axes in zip(variable.shape, layout.axes)
    ]
    return math.prod(shape) * np.dtype(variable.dtype).itemsize


def test_per_device_weights_are_the_shards():
    model, distribution = llama_on((2, 4))
    report = keras_flops.profile(model, batch_size=2, input_shape=SEQUENCE)
    mesh = {"batch": 2, "model": 4}
    expected = sum(shard_bytes(v, distribution, mesh) for v in model.weights)
    assert report.per_device.weight_bytes == expected
    # the embedding (256 x 64 floats) is split 8 ways, the unmatched reverse
    # embedding (64 x 256) is whole on every device
    shards = dict(report.per_device.weight_shards)
    assert shards["token_embedding/embeddings"] == 256 * 64 * 4 // 8
    assert shards["token_embedding/reverse_embeddings"] == 64 * 256 * 4


def test_data_parallel_training_splits_the_work_and_reduces_each_gradient_once():
    from jax_suite.test_remat_jax import mlp  # Dense 64 -> 256 -> 256 -> 10, compiled with SGD

    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=jax.devices()))
    model = mlp(remat=False)
    report = keras_flops.profile(model, batch_size=16, training=True)
    # forward: 16 samples x (64x256 + 256x256 + 256x10) = 16 x 84,480 = 1,351,680 MACs;
    # backward: every kernel's gradient (the same 1,351,680) and the input
    # gradients of the second and third layers (16 x (256x256 + 256x10) = 1,089,536)
    assert report.macs == 16 * 84_480 == 1_351_680
    assert report.backward_macs == 1_351_680 + 16 * (256 * 256 + 256 * 10) == 2_441_216
    device = report.per_device
    assert device.macs == report.macs // 8
    assert device.backward_macs == report.backward_macs // 8
    # each gradient is all-reduced once: the trainable weights' bytes, plus the loss's scalars
    weights = 4 * ((64 * 256 + 256) + (256 * 256 + 256) + (256 * 10 + 10))
    reduced = device.collectives.query("kind == 'all-reduce'")["result_bytes"].sum()
    assert weights <= reduced <= weights + 64
    assert device.weight_bytes == weights  # DataParallel replicates every weight


def test_a_variable_no_rule_matches_is_named_with_its_bytes():
    def embedding_only(mesh):
        layout = keras.distribution.LayoutMap(mesh)
        layout["token_embedding/embeddings"] = ("model", None)
        return layout

    model, _ = llama_on((2, 4), layout=embedding_only)
    report = keras_flops.profile(model, batch_size=2, input_shape=SEQUENCE)
    note = next(n for n in report.notes if n.startswith("No rule of the layout map"))
    # 21 variables: the two embeddings, 9 per layer (2 norms' scales, q, k, v, o
    # and 3 feed-forward kernels) and the last norm's scale; the embedding
    # matched, 20 are replicated on every device
    assert len(model.variables) == 2 + 2 * 9 + 1
    assert note.startswith("No rule of the layout map matches 20 variable(s)")
    assert "replicated on 8 devices" in note
    # a feed-forward kernel is 64 x 128 floats
    assert f"transformer_layer_0/feedforward_gate_dense/kernel ({64 * 128 * 4:,} bytes)" in note


def test_an_axis_that_does_not_divide_a_dimension_is_a_clear_error():
    # one key/value head split over a batch axis of 2 (keras_hub's layout
    # shards the key kernel's heads over "batch")
    model, _ = llama_on((2, 4), config=dict(SMALL_LLAMA, num_key_value_heads=1))
    with pytest.raises(ValueError) as err:
        keras_flops.profile(model, batch_size=2, input_shape=SEQUENCE)
    message = str(err.value)
    assert "'transformer_layer_0/self_attention/key/kernel' (64, 1, 16)" in message
    assert "a dimension of 1 over mesh axis batch of size 2" in message


def test_a_weightless_70b_on_eight_devices_holds_a_shard_each():
    config = dict(
        vocabulary_size=32000, num_layers=80, num_query_heads=64, num_key_value_heads=8, hidden_dim=8192,
        intermediate_dim=28672, dtype="bfloat16",
    )  # fmt: skip
    # how long it takes is benchmarks/sharded_plan.py's: about 10 s on 2 cores
    model, distribution = llama_on((1, 8), config=config)
    report = keras_flops.profile(model, batch_size=1, input_shape={"token_ids": (128,), "padding_mask": (128,)})
    mesh = {"batch": 1, "model": 8}
    expected = sum(shard_bytes(v, distribution, mesh) for v in model.weights)
    assert report.per_device.weight_bytes == expected
    assert 17.6e9 < expected < 17.8e9  # 137.95 GB of weights, about an eighth each
    assert not any(_compat.is_allocated(v) for v in model.variables)


def test_fit_under_model_parallel_logs_the_devices_figures():
    mesh = keras.distribution.DeviceMesh((2, 4), ["batch", "model"], jax.devices())
    layout = keras.distribution.LayoutMap(mesh)
    layout[".*/h/kernel"] = (None, "model")
    layout[".*/out/kernel"] = ("model", None)
    keras.distribution.set_distribution(keras.distribution.ModelParallel(layout_map=layout, batch_dim_name="batch"))
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, name="h"), keras.layers.Dense(4, name="out")])
    model.compile(optimizer="sgd", loss="mse")
    callback = keras_flops.FlopsCallback(peak_tflops=1.0, verbose=False)
    x, y = np.zeros((16, 8), "float32"), np.zeros((16, 4), "float32")
    history = model.fit(x, y, batch_size=8, epochs=2, callbacks=[callback], verbose=0)
    logs = history.history
    device = callback.train_report.per_device
    assert callback.train_report.mesh == {"batch": 2, "model": 4}
    # each device trains 4 of the 8 samples on a quarter of each kernel:
    # forward 4 x (8x16 + 16x4) / 4 = 192 MACs, as XLA runs it
    assert device.macs == 4 * (8 * 16 + 16 * 4) // 4
    assert logs["device_gflops"][-1] == pytest.approx(device.train_flops / 1e9)
    assert logs["collective_gb"][-1] == pytest.approx(device.collective_bytes / 1e9)
    assert device.collective_bytes > 0
    assert "mfu" in logs and 0 < logs["mfu"][-1]


def test_the_ring_formulas_and_the_interconnect():
    import dataclasses

    from keras_flops.core.records import Collective

    # nccl-tests' PERFORMANCE.md, for n devices and S bytes
    reduce = Collective("r", "all-reduce", "l", "forward", 4, 1000, 1000)
    assert reduce.bus_bytes == 2 * (4 - 1) / 4 * 1000 == 1500
    gather = Collective("g", "all-gather", "l", "forward", 8, 125, 1000)
    assert gather.bus_bytes == (8 - 1) / 8 * 1000 == 875
    scatter = Collective("s", "reduce-scatter", "l", "forward", 8, 1000, 125)
    assert scatter.bus_bytes == 875
    permute = Collective("p", "collective-permute", "l", "forward", 8, 512, 512, repeat=3)
    assert permute.bus_bytes == 3 * 512
    alone = Collective("a", "all-reduce", "l", "forward", 1, 1000, 1000)
    assert alone.bus_bytes == 0  # a group of one sends nothing
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    device = dataclasses.replace(keras_flops.profile(model), collective_ops=(reduce, gather))
    assert device.collective_bytes == 1500 + 875
    # an H100's NVLink 4 carries 450 GB/s each way
    assert device.collective_time("H100") == pytest.approx((1500 + 875) / 450e9)


def test_collective_groups_in_xlas_three_forms():
    from keras_flops.backends.jax import hlo

    text = """HloModule m

ENTRY %main (p: f32[8]) -> f32[8] {
  %p = f32[8]{0} parameter(0)
  %a = f32[8]{0} all-reduce(%p), channel_id=1, replica_groups={{0,1},{2,3},{4,5},{6,7}}, to_apply=%add
  %b = f32[8]{0} all-reduce(%a), channel_id=2, replica_groups=[2,4]<=[8], to_apply=%add
  %c = f32[8]{0} all-reduce(%b), channel_id=3, replica_groups=mesh['axis_0'=4,'axis_1'=2], device_ids=([2,4]T(1,0)) {'axis_0'}, to_apply=%add
  %d = f32[8]{0} collective-permute(%c), channel_id=4, source_target_pairs={{0,1},{1,2},{2,0}}
  ROOT %e = f32[8]{0} all-reduce(%d), channel_id=5, replica_groups={}, to_apply=%add
}
"""
    entry = hlo.parse(text).computations["main"]
    sizes = {i.name: hlo.group_size(i, devices=8) for i in entry.instructions if i.opcode != "parameter"}
    # explicit groups of 2; the iota form [groups, size]: 2 groups of 4; the mesh
    # form's named axis, axis_0 of size 4; a permute's 3 devices; no groups: all 8
    assert sizes == {"a": 2, "b": 4, "c": 4, "d": 3, "e": 8}


def test_memory_of_one_device_counts_the_shards():
    model, distribution = llama_on((2, 4))
    mesh = {"batch": 2, "model": 4}
    need = keras_flops.memory(model, batch_size=2, input_shape=SEQUENCE, training=True, optimizer="adam")
    shards = {v.path: shard_bytes(v, distribution, mesh) for v in model.weights}
    trainable = sum(shards[v.path] for v in model.trainable_variables)
    assert need.weight_bytes == sum(shards.values())
    assert need.gradients == trainable  # one gradient per trainable shard
    # Adam: two slots per trainable shard, its int32 iteration counter and float32 learning rate
    assert need.optimizer_state == 2 * trainable + 4 + 4
    # a device holds one of the 2 sequences: token ids and a padding mask, 16 int32 each
    assert need.batch_size == 1 and need.inputs == 2 * 16 * 4
    assert need.transient > 0 and any("One device of a mesh of batch 2 x model 4" in n for n in need.notes)


def test_the_smallest_model_axis_that_fits():
    keras.distribution.set_distribution(None)
    with keras_flops.without_weights():
        model = keras_hub.models.LlamaBackbone(**SMALL_LLAMA)
    needs = {}
    for n in (1, 2, 4):
        mesh = keras.distribution.DeviceMesh((1, n), ["batch", "model"], jax.devices()[:n])
        layout = keras_hub.models.LlamaBackbone.get_layout_map(mesh)
        keras.distribution.set_distribution(keras.distribution.ModelParallel(layout_map=layout, batch_dim_name="batch"))
        needs[n] = keras_flops.memory(model, 2, SEQUENCE, training=False).peak
    keras.distribution.set_distribution(None)
    assert needs[1] > needs[2] > needs[4]  # the shards shrink with the axis
    between = (needs[2] + needs[4]) // 2  # 2 devices are too few, 4 enough
    assert keras_flops.smallest_model_axis(model, between, 2, SEQUENCE, training=False) == 4
    assert keras_flops.smallest_model_axis(model, needs[1], 2, SEQUENCE, training=False) == 1
    assert keras.distribution.distribution() is None  # left as it was
    # a byte fits none of the sizes asked
    assert keras_flops.smallest_model_axis(model, 1, 2, SEQUENCE, training=False, sizes=(1, 2, 4)) == 0
    # 8 does not divide the 4 heads the layout map splits over the model axis: the error says so
    with pytest.raises(ValueError, match="splits a dimension of 4 over mesh axis model of size 8"):
        keras_flops.smallest_model_axis(model, 1, 2, SEQUENCE, training=False)
    # past the devices this process has
    with pytest.raises(ValueError, match="fits no model axis up to 8, the devices this process has"):
        keras_flops.smallest_model_axis(model, 1, 2, SEQUENCE, training=False, sizes=(1, 16))


def test_a_devices_step_is_bound_by_compute_memory_or_its_link():
    model, _ = llama_on((2, 4))
    device = keras_flops.profile(model, batch_size=2, input_shape=SEQUENCE).per_device
    h100 = keras_flops.Device(peak_tflops=1000.0, bandwidth_gbps=3350.0, name="H100-like", interconnect_gbs=450.0)
    times = device.step_bound(h100)
    assert times["compute_s"] == pytest.approx(device.flops / 1e15)
    assert times["memory_s"] == pytest.approx(device.min_bytes / 3350e9)
    assert times["communication_s"] == pytest.approx(device.collective_bytes / 450e9)
    assert times["time_s"] == max(times["compute_s"], times["memory_s"], times["communication_s"])
    # a tiny model on a fast device: its bytes, not its FLOPs, take the time
    assert times["bound"] in ("memory", "communication") and times["bound"] != "compute"
    slow_link = keras_flops.Device(peak_tflops=1000.0, bandwidth_gbps=3350.0, interconnect_gbs=0.001)
    assert device.step_bound(slow_link)["bound"] == "communication"


def test_the_json_report_carries_the_mesh_and_a_devices_program():
    import json
    import pathlib

    import jsonschema

    model, _ = llama_on((2, 4))
    report = keras_flops.profile(model, batch_size=2, input_shape=SEQUENCE)
    data = json.loads(report.to_json())
    schema = json.loads((pathlib.Path(__file__).parents[2] / "docs" / "report.schema.json").read_text())
    jsonschema.validate(data, schema)
    assert data["mesh"] == {"batch": 2, "model": 4}
    device = data["per_device"]
    assert device["totals"]["macs"] == report.per_device.macs
    assert device["weight_bytes"] == report.per_device.weight_bytes
    assert sum(c["count"] for c in device["collectives"] if c["kind"] == "all-reduce") == int(
        report.per_device.collectives.query("kind == 'all-reduce'")["count"].sum()
    )


def test_the_command_line_counts_each_device_on_a_mesh(tmp_path, capsys):
    import json

    from keras_flops.cli import main as cli_main

    with keras_flops.without_weights():
        model = keras_hub.models.LlamaBackbone(**SMALL_LLAMA)
    path = tmp_path / "llama.json"
    path.write_text(model.to_json())
    args = [str(path), "--mesh", "batch=2,model=4", "--batch-size", "2", "--sequence-length", "16"]
    assert cli_main(args + ["--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["mesh"] == {"batch": 2, "model": 4}
    model_again, _ = llama_on((2, 4))
    expected = keras_flops.profile(model_again, batch_size=2, input_shape=SEQUENCE).per_device
    assert data["per_device"]["totals"]["macs"] == expected.macs
    assert cli_main(args + ["--device", "H100"]) == 0
    out = capsys.readouterr().out
    assert "Per device (a mesh of batch 2 x model 4)" in out and "all-reduce: 14" in out
    assert "A device's step on H100" in out



def test_a_gpus_library_matmul_is_priced_as_a_dot():
    """XLA's GPU backend writes a dot as a call of cuBLAS (a tuple of the
    product and a workspace): read from HLO text of that form."""
    from keras_flops.backends.jax import hlo
    from keras_flops.backends.jax.partition import _Reader

    text = """HloModule m

ENTRY %main (p0: f32[32,64], p1: f32[64,16]) -> f32[32,16] {
  %p0 = f32[32,64]{1,0} parameter(0)
  %p1 = f32[64,16]{1,0} parameter(1)
  %gemm = (f32[32,16]{1,0}, s8[4194304]{0}) custom-call(%p0, %p1), custom_call_target="__cublas$gemm", backend_config={"gemm_backend_config":{"alpha_real":1,"dot_dimension_numbers":{"lhs_contracting_dimensions":["1"],"rhs_contracting_dimensions":["0"],"lhs_batch_dimensions":[],"rhs_batch_dimensions":[]}}}
  %other = f32[32,16]{1,0} custom-call(%p0), custom_call_target="SomethingElse"
  ROOT %r = f32[32,16]{1,0} get-tuple-element(%gemm), index=0
}
"""

    class NoLayers:
        def owner(self, stack):
            return None

    ops, uncounted, _, _ = _Reader(hlo.parse(text), NoLayers(), 1).read()
    # 32 x 16 outputs, each summing 64 products
    assert sum(op.macs for op in ops) == 32 * 16 * 64
    assert [u.reason for u in uncounted] == ["no formula for the custom call SomethingElse"]


def test_a_llama_blocks_collectives_against_megatron():
    """The README's comparison with Megatron-LM (Shoeybi et al. 2019: two
    all-reduces of b*s*h per block in the forward pass), on a (1, 4) mesh
    with keras_hub's layout map: batch 1, 16 tokens, hidden 128."""
    config = dict(SMALL_LLAMA, num_layers=1, num_query_heads=8, num_key_value_heads=8, hidden_dim=128,
                  intermediate_dim=256)  # fmt: skip
    model, _ = llama_on((1, 4), config=config)
    report = keras_flops.profile(model, batch_size=1, input_shape=SEQUENCE)
    table = report.per_device.collectives
    block = table[table["layer"].str.startswith("transformer_layer_0")]
    found = {(layer.removeprefix("transformer_layer_0/"), kind): n for layer, kind, n in
             zip(block["layer"], block["kind"], block["result_bytes"])}  # fmt: skip
    bsh = 1 * 16 * 128 * 4  # b x s x h float32s
    assert found == {
        # Megatron's two: after the attention's output projection and the MLP's
        ("self_attention/attention_output", "all-reduce"): bsh,
        ("feedforward_output_dense", "all-reduce"): bsh,
        # keras_hub splits q, k and v over their input (hidden) dim: one all-reduce of three partial sums
        ("self_attention/key", "all-reduce"): 3 * bsh,
        # the split residual stream: gathered before the MLP, its norms' sums reduced (b x s floats)
        ("feedforward_intermediate_dense", "all-gather"): bsh,
        ("self_attention_layernorm", "all-reduce"): 16 * 4,
        ("feedforward_layernorm", "all-reduce"): 16 * 4,
    }
