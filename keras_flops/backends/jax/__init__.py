"""The JAX backend (:mod:`.backend`); the only place keras_flops imports ``jax``."""
