"""The extended summary, attach(), and the report's exports."""

import json
import pathlib
import threading

import jsonschema
import keras
import numpy as np
import pandas as pd
import pytest

import keras_flops

SCHEMA = json.loads((pathlib.Path(__file__).parents[1] / "docs" / "report.schema.json").read_text())


def net():
    inner = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(4, name="fc"), keras.layers.ReLU(name="act")],
        name="backbone",
    )
    x = keras.Input((8,), name="x")
    y = keras.layers.Dense(2, name="head")(inner(x))
    return keras.Model(x, y, name="net")


# Batch 2. fc: MatMul 2 x 8 x (2 x 4) = 128, BiasAdd 8 -> 136 FLOPs, 64 MACs;
# act: ReLU on 2 x 4 = 8; backbone = 144; head: 2 x 4 x (2 x 2) = 32 + 4 -> 36, 16 MACs.
# Total 180 FLOPs, 80 MACs. The first three columns are Keras's own, as
# test_summary_matches_keras_column_for_column shows.
GOLDEN = """\
Model: "net"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━┓
┃ Layer (type)                          ┃ Output Shape                 ┃         Param # ┃    FLOPs ┃     MACs ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━┩
│ x (InputLayer)                        │ (None, 8)                    │               0 │        0 │        0 │
├───────────────────────────────────────┼──────────────────────────────┼─────────────────┼──────────┼──────────┤
│ backbone (Sequential)                 │ (None, 4)                    │              36 │      144 │       64 │
├───────────────────────────────────────┼──────────────────────────────┼─────────────────┼──────────┼──────────┤
│    └ fc (Dense)                       │ (None, 4)                    │              36 │      136 │       64 │
├───────────────────────────────────────┼──────────────────────────────┼─────────────────┼──────────┼──────────┤
│    └ act (ReLU)                       │ (None, 4)                    │               0 │        8 │        0 │
├───────────────────────────────────────┼──────────────────────────────┼─────────────────┼──────────┼──────────┤
│ head (Dense)                          │ (None, 2)                    │              10 │       36 │       16 │
└───────────────────────────────────────┴──────────────────────────────┴─────────────────┴──────────┴──────────┘
 Total params: 46 (184.00 B)
 Trainable params: 46 (184.00 B)
 Non-trainable params: 0 (0.00 B)
 Total FLOPs: 180 (80 MACs) for a batch of 2
"""


def captured(fn, *args, **kwargs):
    out = []
    fn(*args, print_fn=out.append, **kwargs)
    return "".join(out)


def test_summary_golden_output():
    text = captured(keras_flops.summary, net(), batch_size=2, line_length=90, expand_nested=True)
    assert text == GOLDEN


def test_summary_totals_equal_the_report():
    model = net()
    out = []
    report = keras_flops.summary(model, batch_size=2, print_fn=out.append)
    assert (report.flops, report.macs) == (180, 80)
    assert f"Total FLOPs: {report.flops} ({report.macs} MACs) for a batch of 2" in out[0]
    # the unexpanded rows (x, backbone, head) sum to the total
    assert "│      144 │       64 │" in out[0] and "│       36 │       16 │" in out[0]


def test_summary_readable_and_raw_units():
    # Dense 1000 -> 1000 at batch 1: 2 x 1000 x 1000 + 1000 = 2,001,000 FLOPs = 2.00 M
    model = keras.Sequential([keras.Input((1000,)), keras.layers.Dense(1000)])
    assert "2 M" in captured(keras_flops.summary, model)
    assert "2,001,000" in captured(keras_flops.summary, model, raw_counts=True)


def test_attach_makes_model_summary_show_flops():
    model = net()
    keras_flops.attach(model, batch_size=2)
    text = captured(model.summary, line_length=90, expand_nested=True)
    assert text == GOLDEN
    keras_flops.detach(model)
    assert "FLOPs" not in captured(model.summary)


def test_attach_is_per_instance():
    a, b = net(), net()
    keras_flops.attach(a)
    assert "FLOPs" in captured(a.summary)
    assert "FLOPs" not in captured(b.summary)
    assert "summary" not in vars(type(a))  # no class was patched


def test_attach_survives_save_and_load(tmp_path):
    model = net()
    keras_flops.attach(model)
    path = tmp_path / "net.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.to_json() == model.to_json()
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert "FLOPs" not in captured(loaded.summary)  # the attachment is not saved
    assert "FLOPs" in captured(model.summary)  # and the original keeps it


def test_attach_before_build_profiles_at_first_summary():
    model = keras.Sequential([keras.layers.Dense(3, name="d")])
    keras_flops.attach(model)
    model.build((None, 5))
    # Dense 5 -> 3 at batch 1: 2 x 5 x 3 + 3 = 33
    assert "Total FLOPs: 33 (15 MACs)" in captured(model.summary)


def test_to_dict_follows_the_schema():
    report = keras_flops.profile(net(), batch_size=2)
    data = report.to_dict()
    jsonschema.validate(data, SCHEMA)
    assert data["totals"]["flops"] == 180 and data["totals"]["macs"] == 80
    assert data["totals"]["flops_per_sample"] == 90
    assert [row["path"] for row in data["layers"]] == ["backbone/fc", "backbone/act", "backbone", "head"]
    assert sum(row["flops"] for row in data["layers"]) == 180
    assert json.loads(report.to_json()) == data


def test_to_csv_round_trips_through_pandas(tmp_path):
    report = keras_flops.profile(net(), batch_size=2)
    path = tmp_path / "layers.csv"
    report.to_csv(path)
    df = pd.read_csv(path, index_col="layer")
    assert df.loc["backbone/fc", "flops"] == 136
    assert df["flops"].sum() == 180
    ops = pd.read_csv(pd.io.common.StringIO(report.to_csv(by="op")), index_col="op_type")
    assert ops.loc["MatMul", "flops"] == 128 + 32


def test_to_markdown():
    text = keras_flops.profile(net(), batch_size=2).to_markdown(top=2)
    lines = text.splitlines()
    assert lines[0].startswith("| layer")
    assert len([line for line in lines if line.startswith("| backbone") or line.startswith("| head")]) == 2
    assert "| backbone/fc " in text and "| head " in text  # the two largest: 136 and 36
    assert "**Total FLOPs:** 180 (180), **MACs:** 80 (80), for a batch of 2" in text


def test_plot_writes_a_png(tmp_path):
    path = tmp_path / "top.png"
    fig = keras_flops.profile(keras.applications.MobileNetV2(weights=None), warn=False).plot(
        top=5, path=path
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (ax,) = fig.axes
    assert len(ax.patches) == 5
    assert all("%" in t.get_text() for t in ax.texts)


def keras_and_ours(model, **options):
    """Keras's own model.summary() and keras_flops.summary(), line by line."""
    theirs, ours = [], []
    model.summary(print_fn=theirs.append, **options)
    keras_flops.summary(model, print_fn=ours.append, **options)
    return "".join(theirs).splitlines(), "".join(ours).splitlines()


class Tower(keras.Model):
    def __init__(self):
        super().__init__(name="tower")
        self.first = keras.layers.Dense(4, name="first")
        self.second = keras.layers.Dense(2, name="second", trainable=False)

    def call(self, x):
        return self.second(self.first(x))


def branches():
    x = keras.Input((8,), name="x")
    left, right = keras.layers.Dense(4, name="left")(x), keras.layers.Dense(4, name="right")(x)
    return keras.Model(x, keras.layers.Concatenate(name="cat")([left, right]), name="branches")


def built_tower():
    model = Tower()
    model(np.zeros((2, 8), "float32"))
    return model


@pytest.mark.parametrize(
    "build, options",
    [
        (net, dict(line_length=90, expand_nested=True)),
        (net, dict(show_trainable=True)),
        (net, dict(layer_range=["backbone", "head"], line_length=100)),
        (branches, dict()),  # "Connected to" column
        (branches, dict(show_trainable=True, positions=[0.25, 0.5, 0.7, 1.0])),
        (built_tower, dict(show_trainable=True)),  # subclassed: shapes from build shapes
    ],
    ids=["nested", "trainable", "layer_range", "connections", "positions", "subclassed"],
)
def test_summary_matches_keras_column_for_column(build, options):
    theirs, ours = keras_and_ours(build(), **options)
    # every line of Keras's table is the start of ours (the FLOPs and MACs
    # columns follow on the right); titles and footers are the same lines
    assert len(ours) == len(theirs) + 1  # and our "Total FLOPs" footer line
    for keras_line, our_line in zip(theirs, ours):
        assert our_line.startswith(keras_line.rstrip("┓┃┩│┘┤").rstrip()), (keras_line, our_line)
    assert ours[-1].startswith(" Total FLOPs: ")


def test_summary_from_two_threads_at_once():
    attached, plain = net(), net()
    keras_flops.attach(attached, batch_size=2)
    start = threading.Barrier(2)
    out = {"attached": [], "plain": []}

    def show(name, model):
        start.wait()
        for _ in range(5):
            model.summary(print_fn=out[name].append)

    threads = [threading.Thread(target=show, args=(n, m)) for n, m in
               (("attached", attached), ("plain", plain))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out["attached"]) == len(out["plain"]) == 5
    assert all("FLOPs" in text and "Total FLOPs: 180 (80 MACs)" in text for text in out["attached"])
    assert all("FLOPs" not in text for text in out["plain"])
