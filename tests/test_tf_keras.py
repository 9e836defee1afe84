"""Runs tests/tf_keras_suite in a process of its own with TF_USE_LEGACY_KERAS=1."""

import pytest
from conftest import run_suite


def test_tf_keras_suite():
    pytest.importorskip("tf_keras", reason="install tf-keras (pip install --no-deps tf-keras)")
    run_suite("tf_keras_suite", timeout=600, TF_USE_LEGACY_KERAS="1")
