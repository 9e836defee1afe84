"""Runs tests/jax_suite in a process of its own with KERAS_BACKEND=jax, on two
CPU devices (for keras.distribution)."""

import os
import pathlib
import subprocess
import sys

import pytest


def test_jax_suite():
    pytest.importorskip("jax", reason="install jax (pip install 'jax[cpu]'; in the test extras)")
    suite = pathlib.Path(__file__).parent / "jax_suite"
    env = dict(os.environ, KERAS_BACKEND="jax",
               XLA_FLAGS="--xla_force_host_platform_device_count=2")
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(suite)],
        capture_output=True, text=True, timeout=1200, env=env,
    )
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
    assert " passed" in out.stdout and "failed" not in out.stdout
