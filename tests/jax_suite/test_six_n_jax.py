"""The "6N" rule on JAX: tests/test_six_n.py's tests, worked out there, run here."""

from test_six_n import (  # noqa: F401
    test_gpt2_training_is_three_forward_passes,
    test_llama_training_is_three_forward_passes_but_rope,
)
