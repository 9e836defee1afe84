"""Lengths past a model's maximum on JAX: tests/test_max_length.py's tests, run here."""

from test_max_length import (  # noqa: F401
    test_every_learned_position_embedding_refuses_one_position_more,
    test_generation_and_sweeps_past_the_maximum_are_refused,
    test_gpt2_counts_up_to_its_maximum_length,
    test_gpt2_refuses_a_longer_input,
)
