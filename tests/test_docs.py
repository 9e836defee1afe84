"""docs/formulas.md names every op type the registry knows, so it cannot drift."""

import pathlib

from keras_flops import formulas

DOC = (pathlib.Path(__file__).parents[1] / "docs" / "formulas.md").read_text()


def test_every_tensorflow_counted_op_type_is_documented():
    missing = sorted(t for t in formulas.TF_COUNTED_OPS if f"`{t}`" not in DOC)
    assert missing == []


def test_every_zero_cost_op_type_is_documented():
    missing = sorted(t for t in formulas.ZERO_COST_OPS if f"`{t}`" not in DOC)
    assert missing == []


def test_every_mac_op_type_is_documented():
    missing = sorted(t for t in formulas.MAC_OPS if f"`{t}`" not in DOC)
    assert missing == []


def test_every_builtin_formula_is_documented():
    missing = sorted(t for t in formulas._BUILTIN if f"`{t}`" not in DOC)
    assert missing == []
