"""docs/formulas.md names every op type the registry knows, so it cannot drift;
the package imports light."""

import pathlib
import subprocess
import sys

import pytest

import keras_flops
from keras_flops.backends.jax import formulas as primitives
from keras_flops.backends.torch import formulas as torch_ops
from keras_flops.backends.tensorflow import formulas as tf_formulas
from keras_flops.backends.tensorflow import statistics

DOC = (pathlib.Path(__file__).parents[1] / "docs" / "formulas.md").read_text()


@pytest.mark.parametrize(
    "kind, op_types",
    [
        ("TensorFlow's formulas", statistics.COUNTED_OPS),
        ("the zero-cost list", tf_formulas.ZERO_COST_OPS),
        ("the MAC op types of every backend", tf_formulas.MAC_OPS | primitives.MAC_OPS | torch_ops.MAC_OPS),
        ("keras_flops' formulas", tf_formulas.BUILTIN),
        ("the exact formulas of counting='full'", tf_formulas.EXACT),
        ("the JAX primitives' formulas", primitives.FORMULAS),
        ("the JAX zero-cost primitives", primitives.ZERO),
        ("the JAX views", primitives.VIEWS),
        ("the PyTorch ops' formulas", torch_ops.FORMULAS),
        ("the PyTorch zero-cost ops", torch_ops.ZERO),
        ("the PyTorch views", torch_ops.VIEWS),
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


def test_the_api_reference_documents_every_public_name():
    """docs/api.md (the site's API reference, built by mkdocstrings) has an
    entry for every name of keras_flops.__all__, at the module that defines it."""
    api = (pathlib.Path(__file__).parents[1] / "docs" / "api.md").read_text()
    documented = {line.split()[1].rsplit(".", 1)[1] for line in api.splitlines() if line.startswith("::: ")}
    assert documented == set(keras_flops.__all__)
