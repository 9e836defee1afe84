"""Every access to a private JAX name, in one place: what the JAX backend
reads of a jaxpr beyond ``jax.extend.core``'s public classes.

Each function reads one private thing, says what and from which versions,
and has a test in tests/jax_suite/test_compat_jax.py that fails loudly when
a release renames or removes it. Only the JAX backend imports this module.

Checked on JAX 0.4.30-0.8.
"""

from __future__ import annotations

from keras_flops._compat import required_attr


def name_stack(eqn) -> str:
    """The name stack of a jaxpr equation: the ``jax.named_scope``s it was
    traced in, outermost first, joined by "/"; "transpose(...)" around the
    scopes of an equation of a backward pass.

    JAX: ``JaxprEqn.source_info.name_stack`` (a
    ``jax._src.source_info_util.NameStack``), whose ``str`` is that path.
    """
    source_info = required_attr(eqn, "source_info", "a jaxpr equation's source")
    return str(required_attr(source_info, "name_stack", "a jaxpr equation's name stack"))


def is_literal(var) -> bool:
    """Whether an equation's operand is a literal (a constant written into
    the jaxpr, with no buffer): ``jax._src.core.Literal``, exported as
    ``jax.extend.core.Literal``; read by its class name, so that no JAX
    import is needed to walk a jaxpr."""
    return type(var).__name__ == "Literal"


def is_dropped(var) -> bool:
    """Whether an equation's result is dropped (no one reads it; a ``_`` in
    the printed jaxpr): ``jax._src.core.DropVar``, exported as
    ``jax.extend.core.DropVar``; read by its class name, as a literal is."""
    return type(var).__name__ == "DropVar"
