"""The JAX backend's suite: runs in a process of its own with KERAS_BACKEND=jax
and two CPU devices (tests/test_jax.py starts it)."""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest

if os.environ.get("KERAS_BACKEND") != "jax":
    pytest.skip("run with KERAS_BACKEND=jax (tests/test_jax.py does)", allow_module_level=True)

HERE = pathlib.Path(__file__).parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # the cases, and tests/ (hub_zoo, test_six_n)

# Every case the suite compares with the TensorFlow backend's counts.
TF_CASES = (
    "ResNet50", "MobileNetV2", "EfficientNetB0", "transformer_block", "LSTM", "GRU",
    "Bidirectional", "gpt2", "conv_forms", "conv3d", "ResNet50:train", "MobileNetV2:train",
    "conv_forms:train", "conv3d:train",
)


def _differential_cases():
    from cases import EXECUTE_DIFFERENTLY, HUB_CASES, KERAS_TRAINING, TASK_CASES

    return HUB_CASES + TASK_CASES + KERAS_TRAINING + EXECUTE_DIFFERENTLY


def _needs_keras_hub(case):
    return case == "gpt2" or case.startswith(("hub:", "task:"))


@pytest.fixture(scope="session")
def tf_counts(tmp_path_factory):
    """The TensorFlow backend's counts of every case, from one process."""
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("TensorFlow is not installed: nothing to compare with")
    out = tmp_path_factory.mktemp("tf") / "counts.json"
    has_hub = importlib.util.find_spec("keras_hub") is not None
    cases = [c for c in TF_CASES + _differential_cases() if has_hub or not _needs_keras_hub(c)]
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, str(HERE / "cases.py"), str(out), *cases],
                          env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(out.read_text())
