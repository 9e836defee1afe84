"""Training steps and generation with fewer calls of a chain on PyTorch: the
backend-neutral tests of tests/test_chains.py, collected here."""

from test_chains import *  # noqa: F401,F403
