"""The keras-flops command on saved models, in every format."""

import json
import os
import pathlib
import subprocess
import sys

import keras
import pytest

import keras_flops
from conftest import sequential
from keras_flops import _compat, cli

# Dense(5 -> 3), batch 2: 2 x 5 x 6 + 6 = 66 FLOPs, 30 MACs;
# Dense(3 -> 2), batch 2: 2 x 3 x 4 + 4 = 28 FLOPs, 12 MACs.  Total 94 / 42.
TOTAL = "Total FLOPs: 94 (94) = 42 MACs (42) for a batch of 2"


def small():
    return sequential((5,), keras.layers.Dense(3, name="d1"), keras.layers.Dense(2, name="d2"))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    model = small()
    model.save(root / "m.keras")
    model.save(root / "m.h5")
    model.export(str(root / "savedmodel"), verbose=False)
    return root


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name", ["m.keras", "m.h5"])
def test_keras_files(saved, capsys, name):
    code, out, err = run(capsys, saved / name, "--batch-size", 2)
    assert code == 0, err
    assert "d1" in out and "d2" in out
    assert TOTAL in out


def test_saved_model_directory(saved, capsys):
    code, out, err = run(capsys, saved / "savedmodel", "--batch-size", 2, "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert (data["totals"]["flops"], data["totals"]["macs"]) == (94, 42)
    # rows are name scopes in a SavedModel: Keras's scope names carry suffixes
    assert sorted(row["flops"] for row in data["layers"]) == [28, 66]


def test_json_format(saved, capsys):
    code, out, _ = run(capsys, saved / "m.keras", "--batch-size", 2, "--format", "json")
    data = json.loads(out)
    assert data["schema_version"] == 2  # 2 added bytes and intensity
    assert {row["path"]: row["flops"] for row in data["layers"]} == {"d1": 66, "d2": 28}


def test_csv_format_by_op(saved, capsys):
    code, out, _ = run(capsys, saved / "m.keras", "--batch-size", 2, "--format", "csv", "--by", "op")
    lines = out.splitlines()
    assert lines[0] == "op_type,count,flops,macs,bytes,min_bytes,intensity,share"
    # MatMul: 60 + 24 = 84 FLOPs, 42 MACs; bytes (float32, 4 each): x, kernel and y,
    # (2x5 + 5x3 + 2x3) x 4 = 124 and (2x3 + 3x2 + 2x2) x 4 = 64, 188 in all
    assert lines[1].startswith("MatMul,2,84,42,188,")
    # BiasAdd: 6 + 4 = 10 FLOPs; (6 + 3 + 6) x 4 = 60 and (4 + 2 + 4) x 4 = 40 bytes
    assert lines[2].startswith("BiasAdd,2,10,0,100,")


def test_markdown_format_top(saved, capsys):
    code, out, _ = run(capsys, saved / "m.keras", "--batch-size", 2, "--format", "markdown", "--top", "1")
    assert "| d1 " in out and "| d2 " not in out


def test_table_top_and_plot(saved, capsys, tmp_path):
    png = tmp_path / "bars.png"
    code, out, _ = run(capsys, saved / "m.keras", "--top", "1", "--plot", png)
    assert code == 0
    assert "d1" in out and "d2" not in out
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_tfprof_counting(saved, capsys):
    code, out, _ = run(capsys, saved / "m.keras", "--counting", "tfprof", "--format", "json")
    assert json.loads(out)["counting"] == "tfprof"


def lambda_model(marker: pathlib.Path):
    x = keras.Input((3,))
    # the marker path is a constant of the lambda's code, so it travels with the file
    touch = eval(f"lambda t: (__import__('pathlib').Path({str(marker)!r}).touch(), t)[1] * 2.0")
    y = keras.layers.Lambda(touch)(x)
    return keras.Model(x, y)


@pytest.mark.parametrize("name", ["lambda.keras", "lambda.h5"])
def test_model_with_python_code_is_refused_and_never_runs(tmp_path, capsys, name):
    marker = tmp_path / "lambda-ran"
    path = tmp_path / name
    lambda_model(marker).save(path)
    marker.unlink()  # building the model ran the lambda once; start clean
    code, out, err = run(capsys, path)
    assert code == 2
    assert err.count("\n") == 1 and "--unsafe" in err and "Lambda" in err
    assert not marker.exists()  # the lambda's code never ran
    code, out, err = run(capsys, path, "--unsafe")
    assert code == 0
    assert marker.exists()  # with --unsafe it is loaded and run: the check above can fail


@pytest.mark.parametrize(
    "argv, message",
    [
        (["no/such/model.keras"], "no such file or directory"),
        (["--example", "NoSuchNet"], "keras.applications"),
        ([], "give a MODEL path or --example"),
        (["m.keras", "--input-shape", "a,b"], "--input-shape"),
        (["m.keras", "--batch-size", "0"], "--batch-size"),
        (["notes.txt"], "not a model file"),
        (["not-a-savedmodel"], "not a SavedModel"),
    ],
)
def test_errors_are_one_line_and_exit_2(saved, capsys, tmp_path, argv, message, monkeypatch):
    monkeypatch.chdir(saved)
    (saved / "notes.txt").write_text("hello")
    (saved / "not-a-savedmodel").mkdir(exist_ok=True)
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert err.strip().count("\n") <= 1  # usage line at most, then the error


def test_unknown_dims_name_the_flag(tmp_path, capsys):
    path = tmp_path / "m.keras"
    sequential((None, 3), keras.layers.Dense(2, use_bias=False)).save(path)
    code, _, err = run(capsys, path)
    assert code == 2 and "dim 1 is unknown" in err and "--input-shape" in err
    code, out, _ = run(capsys, path, "--input-shape", "4,3")
    # Dense(3 -> 2) on 4 steps: 2 x 3 x 8 = 48
    assert code == 0 and "Total FLOPs: 48" in out


def test_corrupt_file(tmp_path, capsys):
    path = tmp_path / "broken.keras"
    path.write_bytes(b"not a zip")
    code, _, err = run(capsys, path)
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1


def test_debug_shows_the_traceback(capsys):
    with pytest.raises(Exception):  # noqa: B017  (--debug re-raises whatever failed, as it was)  # noqa: B017  (--debug re-raises whatever failed, as it was)
        cli.main(["no/such/model.keras", "--debug"])


def test_embedded_example(capsys):
    code, out, _ = run(capsys, "--example", "MobileNetV2", "--by", "op")
    assert code == 0 and "Conv2D" in out


def test_no_tensorflow_start_up_lines_unless_debug(saved):
    # In a fresh process, as a user runs it: TensorFlow logs its start-up
    # (oneDNN, CPU features) to stderr when it is first imported.
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    command = [sys.executable, "-m", "keras_flops.cli", str(saved / "m.keras"), "--batch-size", "2"]
    quiet = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert quiet.returncode == 0 and TOTAL in quiet.stdout
    assert quiet.stderr == ""
    loud = subprocess.run(command + ["--debug"], capture_output=True, text=True, env=env, timeout=300)
    assert loud.returncode == 0 and TOTAL in loud.stdout  # its stderr is TensorFlow's to fill


def test_saved_model_counting_is_named_as_in_profile(saved):
    report = keras_flops.profile_saved_model(str(saved / "savedmodel"), batch_size=2, counting="tfprof")
    assert (report.flops, report.counting) == (94, "tfprof")
    with pytest.raises(TypeError, match="counting_mode"):
        keras_flops.profile_saved_model(str(saved / "savedmodel"), counting_mode="tfprof")


def test_json_config_is_built_without_weights(saved, tmp_path, capsys):
    path = tmp_path / "m.json"
    path.write_text(small().to_json())
    code, out, err = run(capsys, path, "--batch-size", 2)
    assert code == 0, err
    assert TOTAL in out
    model = cli._from_config(str(path), unsafe=False)
    assert not any(_compat.is_allocated(v) for v in model.variables)


def test_sequence_length_and_named_input_shapes(tmp_path, capsys):
    # two token inputs of unknown length into Add then Dense(4 -> 2): per token
    # 4 adds + 2 x 4 x 2 + 2 = 22 FLOPs; 10 tokens = 220 at batch 1
    a, b = keras.Input((None, 4), name="a"), keras.Input((None, 4), name="b")
    model = keras.Model([a, b], keras.layers.Dense(2)(keras.layers.Add()([a, b])))
    path = tmp_path / "two.json"
    path.write_text(model.to_json())
    code, out, err = run(capsys, path, "--sequence-length", 10, "--format", "json")
    assert code == 0, err
    assert json.loads(out)["totals"]["flops"] == 10 * (4 + 2 * 4 * 2 + 2) == 220
    code, out, err = run(capsys, path, "--input-shape", "a=5,4", "--input-shape", "b=5,4", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["totals"]["flops"] == 5 * 22


def test_config_with_python_code_is_refused(tmp_path, capsys):
    marker = tmp_path / "ran"
    path = tmp_path / "lambda.json"
    path.write_text(lambda_model(marker).to_json())
    marker.unlink()  # building the model above ran the lambda once
    code, _, err = run(capsys, path)
    assert code == 2 and "--unsafe" in err and not marker.exists()


@pytest.mark.parametrize("text, message", [
    ("{not json", "not a JSON model config"),
    ('{"a": 1}', "not a Keras model config"),
])
def test_bad_json_configs(tmp_path, capsys, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    code, _, err = run(capsys, path)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_a_mesh_runs_in_a_jax_process_with_its_devices(tmp_path, capfd):
    """--mesh from a TensorFlow process: the count runs again in a process of
    its own on JAX with 2 host devices, data parallel over a batch axis."""
    pytest.importorskip("jax")
    model = sequential((6,), keras.layers.Dense(4, use_bias=False, name="d"))
    path = tmp_path / "mlp.keras"
    model.save(path)
    assert cli.main([str(path), "--mesh", "batch=2", "--batch-size", "8", "--format", "json"]) == 0
    data = json.loads(capfd.readouterr().out)
    assert data["mesh"] == {"batch": 2}
    # 8 samples x 6 x 4 = 192 MACs in all; each device takes 4 of the samples
    assert data["totals"]["macs"] == 8 * 6 * 4
    assert data["per_device"]["totals"]["macs"] == 4 * 6 * 4
    assert data["per_device"]["batch_size"] == 4


def test_a_mesh_needs_axis_sizes(capsys):
    assert cli.main(["--example", "ResNet50", "--mesh", "batch"]) == 2
    assert "--mesh 'batch': give AXIS=SIZE pairs" in capsys.readouterr().err
