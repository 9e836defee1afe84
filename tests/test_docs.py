"""docs/formulas.md names every op type the registry knows, so it cannot drift;
the package imports light."""

import pathlib
import subprocess
import sys

import pytest

import keras_flops
from keras_flops import formulas
from keras_flops.formulas import jaxpr

DOC = (pathlib.Path(__file__).parents[1] / "docs" / "formulas.md").read_text()


@pytest.mark.parametrize(
    "kind, op_types",
    [
        ("TensorFlow's formulas", formulas.TF_COUNTED_OPS),
        ("the zero-cost list", formulas.ZERO_COST_OPS),
        ("the MAC op types", formulas.MAC_OPS),
        ("keras_flops' formulas", formulas._BUILTIN),
        ("the exact formulas of counting='full'", formulas.registry._EXACT),
        ("the JAX primitives' formulas", jaxpr.JAX_FORMULAS),
        ("the JAX zero-cost primitives", jaxpr.JAX_ZERO),
        ("the JAX views", jaxpr.JAX_VIEWS),
    ],
)
def test_every_op_type_is_documented(kind, op_types):
    missing = sorted(t for t in op_types if f"`{t}`" not in DOC)
    assert missing == [], f"{kind}: not in docs/formulas.md"


def test_import_is_light():
    # import keras_flops loads no TensorFlow: the public names load on first use
    code = "import sys, keras_flops; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["False", "False"], out.stderr
    assert set(keras_flops.__all__) <= set(dir(keras_flops))
