"""Runs tests/tf_keras_suite in a process of its own with TF_USE_LEGACY_KERAS=1."""

import os
import pathlib
import subprocess
import sys

import pytest


def test_tf_keras_suite():
    pytest.importorskip("tf_keras", reason="install tf-keras (pip install --no-deps tf-keras)")
    suite = pathlib.Path(__file__).parent / "tf_keras_suite"
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(suite)],
        capture_output=True, text=True, timeout=600,
        env=dict(os.environ, TF_USE_LEGACY_KERAS="1"),
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert " passed" in out.stdout and "failed" not in out.stdout
