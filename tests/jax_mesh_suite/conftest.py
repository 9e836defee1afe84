"""The sharded-model suite: runs in a process of its own with KERAS_BACKEND=jax
and eight CPU devices (tests/test_jax.py starts it), so that a mesh of 8
devices exists without a GPU."""

import os
import pathlib
import sys

import pytest

if os.environ.get("KERAS_BACKEND") != "jax":
    pytest.skip("run with KERAS_BACKEND=jax (tests/test_jax.py does)", allow_module_level=True)

sys.path[:0] = [str(pathlib.Path(__file__).parent.parent)]  # tests/, for surfaces
# keras_hub imports TensorFlow where it is installed; nothing here needs it
sys.modules.setdefault("tensorflow", None)


@pytest.fixture(autouse=True)
def no_distribution_left():
    """Each test sets its own distribution; none outlives it."""
    import keras

    yield
    keras.distribution.set_distribution(None)
