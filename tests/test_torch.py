"""Runs tests/torch_suite in a process of its own with KERAS_BACKEND=torch."""

import pytest
from conftest import run_suite


def test_torch_suite():
    pytest.importorskip("torch", reason="install torch (pip install torch; in the test extras)")
    run_suite("torch_suite", timeout=2400, KERAS_BACKEND="torch")
