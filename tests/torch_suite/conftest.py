"""The PyTorch backend's suite: runs in a process of its own with
KERAS_BACKEND=torch (tests/test_torch.py starts it)."""

import importlib.util
import json
import os
import pathlib
import subprocess
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
    from test_differential_torch import CASES

    out = tmp_path_factory.mktemp("tf") / "counts.json"
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, str(CASES_DIR / "cases.py"), str(out), *CASES],
                          env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(out.read_text())
