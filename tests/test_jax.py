"""Runs tests/jax_suite in a process of its own with KERAS_BACKEND=jax, on two
CPU devices (for keras.distribution)."""

import pytest
from conftest import run_suite


def test_jax_suite():
    pytest.importorskip("jax", reason="install jax (pip install 'jax[cpu]'; in the test extras)")
    run_suite("jax_suite", timeout=2400, KERAS_BACKEND="jax",
              XLA_FLAGS="--xla_force_host_platform_device_count=2")


def test_jax_mesh_suite():
    """Sharded models under keras.distribution, on a mesh of 8 host devices."""
    pytest.importorskip("jax", reason="install jax (pip install 'jax[cpu]'; in the test extras)")
    run_suite("jax_mesh_suite", timeout=1200, KERAS_BACKEND="jax",
              XLA_FLAGS="--xla_force_host_platform_device_count=8")
