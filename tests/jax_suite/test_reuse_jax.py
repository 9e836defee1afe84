"""Reuse by layer on JAX: the backend-neutral tests of tests/test_reuse.py,
the keras_hub zoo's differential included, collected here."""

from test_reuse import *  # noqa: F401,F403
