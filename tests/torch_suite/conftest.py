"""The PyTorch backend's suite: runs in a process of its own with
KERAS_BACKEND=torch (tests/test_torch.py starts it)."""

import importlib.util
import os
import pathlib
import sys

import pytest

if os.environ.get("KERAS_BACKEND") != "torch":
    pytest.skip("run with KERAS_BACKEND=torch (tests/test_torch.py does)", allow_module_level=True)

HERE = pathlib.Path(__file__).parent
CASES_DIR = HERE.parent / "jax_suite"  # the differential cases, shared with the JAX suite
sys.path[:0] = [str(CASES_DIR), str(HERE.parent)]


@pytest.fixture(scope="session")
def tf_counts(tmp_path_factory):
    """The TensorFlow backend's counts of every differential case, from one process."""
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("TensorFlow is not installed: nothing to compare with")
    from cases import tensorflow_counts
    from test_differential_torch import CASES

    return tensorflow_counts(CASES, tmp_path_factory.mktemp("tf") / "counts.json")
