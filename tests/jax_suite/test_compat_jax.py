"""Every private JAX name the JAX backend reads, one test each, so that a
release that renames one fails here, by name."""

import jax
import jax.extend.core
import jax.numpy as jnp

from keras_flops import _compat
from keras_flops.backends.jax import _compat as jax_compat


def test_an_equations_name_stack_is_its_named_scopes():
    # JaxprEqn.source_info.name_stack
    def f(x):
        with jax.named_scope("outer"):
            with jax.named_scope("inner"):
                return jnp.sin(x)

    jaxpr = jax.make_jaxpr(f)(1.0).jaxpr
    assert [jax_compat.name_stack(e) for e in jaxpr.eqns] == ["outer/inner"]
    grad = jax.make_jaxpr(jax.grad(f))(1.0).jaxpr
    stacks = [jax_compat.name_stack(e) for e in grad.eqns]
    assert any(s.startswith("transpose(") for s in stacks), stacks


def test_a_missing_source_fails_loudly():
    class NotAnEquation:
        pass

    try:
        jax_compat.name_stack(NotAnEquation())
    except _compat.CompatError as err:
        assert "NotAnEquation.source_info" in str(err)
    else:
        raise AssertionError("no CompatError")


def test_literals_and_dropped_results_are_known():
    # jax._src.core.Literal and DropVar, read by their class names (jax.extend.core exports both)
    jaxpr = jax.make_jaxpr(lambda x: x * 2.0)(1.0).jaxpr
    two = jaxpr.eqns[0].invars[1]
    assert jax_compat.is_literal(two) and not jax_compat.is_literal(jaxpr.invars[0])
    assert type(two) is jax.extend.core.Literal

    # JAX drops a result no one reads as a DropVar (after partial evaluation, say)
    dropped = jax.extend.core.DropVar(jaxpr.eqns[0].outvars[0].aval)
    assert jax_compat.is_dropped(dropped)
    assert not jax_compat.is_dropped(jaxpr.eqns[0].outvars[0])
