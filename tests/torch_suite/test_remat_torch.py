"""Rematerialization on PyTorch (Keras runs torch.utils.checkpoint): the
same recompute as on JAX, per layer, worked out by hand in the JAX suite's
test, and the callback's MFU and HFU."""

from jax_suite.test_remat_jax import (  # noqa: F401  (backend-neutral: collected here, on PyTorch)
    test_the_callback_logs_mfu_and_hfu_against_one_peak,
    test_the_recompute_is_named_per_layer,
)
