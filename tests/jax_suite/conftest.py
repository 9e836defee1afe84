"""The JAX backend's suite: runs in a process of its own with KERAS_BACKEND=jax
and two CPU devices (tests/test_jax.py starts it)."""

import importlib.util
import os
import pathlib
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
    from cases import tensorflow_counts

    has_hub = importlib.util.find_spec("keras_hub") is not None
    cases = [c for c in TF_CASES + _differential_cases() if has_hub or not _needs_keras_hub(c)]
    return tensorflow_counts(cases, tmp_path_factory.mktemp("tf") / "counts.json")
