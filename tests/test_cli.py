"""The keras-flops command on saved models and embedded examples."""

import keras

from conftest import sequential
from keras_flops import cli


def test_saved_keras_model(tmp_path, capsys):
    path = tmp_path / "m.keras"
    sequential((5,), keras.layers.Dense(3, name="d1")).save(path)
    assert cli.main([str(path), "--batch-size", "2"]) == 0
    out = capsys.readouterr().out
    # Dense(5 -> 3), batch 2: 2 x 5 x 6 + 6 = 66 FLOPs, 30 MACs
    assert "d1" in out
    assert "Total FLOPs: 66 (66) = 30 MACs (30) for a batch of 2" in out


def test_by_op(tmp_path, capsys):
    path = tmp_path / "m.keras"
    sequential((5,), keras.layers.Dense(3)).save(path)
    assert cli.main([str(path), "--by", "op"]) == 0
    out = capsys.readouterr().out
    assert "MatMul" in out and "BiasAdd" in out


def test_input_shape_flag(tmp_path, capsys):
    path = tmp_path / "m.keras"
    sequential((None, 3), keras.layers.Dense(2, use_bias=False)).save(path)
    assert cli.main([str(path)]) == 2
    assert "dim 1 is unknown" in capsys.readouterr().err
    assert cli.main([str(path), "--input-shape", "4,3"]) == 0
    # Dense(3 -> 2) on 4 steps: 2 x 3 x 8 = 48
    assert "Total FLOPs: 48" in capsys.readouterr().out


def test_missing_file_is_one_line_and_exit_2(capsys):
    assert cli.main(["no/such/model.keras"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such file" in err


def test_embedded_example(capsys):
    assert cli.main(["--example", "MobileNetV2", "--by", "op"]) == 0
    assert "Conv2D" in capsys.readouterr().out


def test_unknown_example(capsys):
    assert cli.main(["--example", "NoSuchNet"]) == 2
    assert "keras.applications" in capsys.readouterr().err
