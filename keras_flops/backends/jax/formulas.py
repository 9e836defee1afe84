"""JAX primitives mapped onto the formulas (:mod:`keras_flops.formulas.compute`),
on TensorFlow's conventions (docs/formulas.md).

Each formula is a pure function of an :class:`OpSpec` whose ``type`` is the
primitive's name, ``inputs``/``outputs`` the shapes of its operands and
results, and ``attrs`` the equation's parameters. No JAX import is needed to
run them. The walk enters the primitives that call a jaxpr (``pjit``,
``custom_jvp_call``, ``scan``, ``while``, ``cond`` ...); they have no formula here.
"""

from __future__ import annotations

import math
from typing import Callable, Dict

from keras_flops.formulas import compute
from keras_flops.formulas.compute import num_elements as _n
from keras_flops.formulas.registry import Cost, OpSpec, registrar

FORMULAS: Dict[str, Callable[[OpSpec], Cost]] = {}
_register = registrar(FORMULAS, "JAX")

# Primitives whose FLOPs are all multiply-accumulates: a user formula's int
# result for one of them has FLOPs / 2 MACs, as TensorFlow's MatMul and Conv2D.
MAC_OPS = frozenset({"dot_general", "conv_general_dilated"})


def _output(spec: OpSpec):
    return spec.outputs[0]


# primitive: what it computes (formulas.compute.ELEMENTWISE), on each output element
# fmt: off
ELEMENTWISE = {
    "logistic": "sigmoid", "tanh": "tanh", "exp": "exp", "log1p": "log1p", "expm1": "expm1",
    "erf": "erf", "erfc": "erfc", "sqrt": "sqrt", "rsqrt": "rsqrt", "abs": "abs", "sign": "sign",
    "floor": "floor", "ceil": "ceil", "round": "round", "sin": "sin", "cos": "cos", "tan": "tan",
    "asin": "asin", "acos": "acos", "atan": "atan", "sinh": "sinh", "cosh": "cosh",
    "is_finite": "is_finite", "clamp": "clamp",
}
# fmt: on
for _name, _what in ELEMENTWISE.items():
    _register(_name)(compute.elementwise_formula(_what, _output))

# Other elementwise arithmetic and comparisons: one step per output element,
# as TensorFlow's Add, Mul, RealDiv, Maximum, Equal ...
# fmt: off
_register(
    "add", "add_any", "sub", "mul", "div", "max", "min", "pow", "rem", "atan2", "nextafter",
    "eq", "ne", "gt", "ge", "lt", "le", "neg", "square", "exp2", "log", "asinh", "acosh",
    "atanh", "cbrt", "erf_inv", "lgamma", "digamma", "conj", "igamma", "igammac",
    "random_gamma_grad", "bessel_i0e", "bessel_i1e", "polygamma", "zeta", "regularized_incomplete_beta",
)(compute.elementwise_formula("step", _output))
# fmt: on


@_register("integer_pow")
def integer_pow(spec: OpSpec) -> Cost:
    """x ** y for a constant integer y: the multiplies of repeated squaring
    (1 for y = 2, as TensorFlow's Square; 2 for y = 3), and a reciprocal for
    a negative y."""
    y = int(spec.attrs.get("y", 2))
    n = _n(spec.outputs[0])
    e = abs(y)
    steps = e.bit_length() - 1 + bin(e).count("1") - 1 if e > 1 else 0
    steps += 1 if y < 0 else 0
    return Cost(steps * n, 0, f"{steps} x {n:,} output elements (x ** {y})")


# Reductions: n(in) - n(out), as TensorFlow's Sum, Max, Prod, ArgMax.
# fmt: off
@_register("reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "argmax", "argmin",
           "reduce_and", "reduce_or", "reduce_xor", "reduce_precision_sum")
def reduction(spec: OpSpec) -> Cost:
# fmt: on
    """n(in) - n(out): the adds (compares) of reducing n(in) elements to n(out)."""
    return compute.reduction(_n(spec.inputs[0]), _n(spec.outputs[0]))


@_register("cumsum", "cumprod", "cummax", "cummin", "cumlogsumexp")
def cumulative(spec: OpSpec) -> Cost:
    """(L - 1) per scan of length L, as keras_flops' Cumsum."""
    shape = spec.inputs[0]
    return compute.scan(_n(shape), shape[int(spec.attrs.get("axis", 0))] if shape else 1)


@_register("dot_general")
def dot_general(spec: OpSpec) -> Cost:
    """2 x n(out) x K, and n(out) x K MACs: K the product of the contracted
    dims, as TensorFlow's MatMul and BatchMatMul (2 x k x n(out))."""
    (lhs_contract, _), _ = spec.attrs["dimension_numbers"]
    lhs = spec.inputs[0]
    return compute.contraction(math.prod(lhs[d] for d in lhs_contract), _n(spec.outputs[0]), "contracted")


@_register("conv_general_dilated")
def conv_general_dilated(spec: OpSpec) -> Cost:
    """n(out) x window x input features per group MACs, as TensorFlow's Conv2D
    (products with padding zeros count, as there). A convolution with
    ``lhs_dilation`` (JAX's input gradient of a strided convolution, and a
    transposed convolution) counts only the products with a real input
    element, not with the zeros the dilation inserts or the padding around
    them: as many as the forward convolution's products with real inputs."""
    dn = spec.attrs["dimension_numbers"]
    lhs_spec, rhs_spec, out_spec = dn.lhs_spec, dn.rhs_spec, dn.out_spec
    lhs, rhs, out = spec.inputs[0], spec.inputs[1], spec.outputs[0]
    in_features = rhs[rhs_spec[1]]
    window = [rhs[d] for d in rhs_spec[2:]]
    lhs_dilation = tuple(spec.attrs.get("lhs_dilation") or (1,) * len(window))
    if all(d == 1 for d in lhs_dilation):
        return compute.convolution(_n(out), window, in_features)
    pairs = compute.real_pairs(
        in_sizes=[lhs[d] for d in lhs_spec[2:]], out_sizes=[out[d] for d in out_spec[2:]], window=window,
        strides=spec.attrs["window_strides"], dilations=spec.attrs.get("rhs_dilation") or (1,) * len(window),
        pads_lo=[lo for lo, _ in spec.attrs["padding"]], lhs_dilations=lhs_dilation)
    return compute.on_real_pairs(out[out_spec[0]], out[out_spec[1]], in_features, pairs)


# Pooling: TensorFlow's MaxPool counts window x n(out); average pooling is a
# window sum ((window - 1) x n(out)) and a division (n(out)): window x n(out)
# together, TensorFlow's AvgPool.
@_register("reduce_window_max", "reduce_window_min")
def reduce_window_max(spec: OpSpec) -> Cost:
    """window x n(out), as TensorFlow's MaxPool."""
    dims = spec.attrs["window_dimensions"]
    return compute.window(math.prod(dims), _n(spec.outputs[0]), "x".join(map(str, dims)))


@_register("reduce_window_sum")
def reduce_window_sum(spec: OpSpec) -> Cost:
    """(window - 1) x n(out): the adds of each window's sum."""
    window = math.prod(spec.attrs["window_dimensions"])
    n = _n(spec.outputs[0])
    return Cost((window - 1) * n, 0, f"({window} window - 1) x {n:,} outputs")


@_register("select_and_scatter_add")
def select_and_scatter_add(spec: OpSpec) -> Cost:
    """window x n(src) + n(src): TensorFlow's MaxPoolGrad, the max found again
    in each window and the gradient added at it."""
    return compute.max_window_grad(math.prod(spec.attrs["window_dimensions"]), _n(spec.inputs[0]))


# fmt: off
@_register("scatter-add", "scatter_add", "scatter-mul", "scatter_mul", "scatter-min", "scatter-max",
           "scatter_min", "scatter_max")
def scatter_combine(spec: OpSpec) -> Cost:
# fmt: on
    """n(updates): one add (multiply, compare) per update element."""
    return compute.scattered(_n(spec.inputs[2]) if len(spec.inputs) > 2 else _n(spec.outputs[0]))


@_register("top_k")
def top_k(spec: OpSpec) -> Cost:
    """rows x (n - 1) x ceil(log2(k + 1)), as keras_flops' TopKV2."""
    shape = spec.inputs[0]
    return compute.top_k(_n(shape[:-1]), shape[-1], int(spec.attrs.get("k", 1)))


@_register("sort")
def sort(spec: OpSpec) -> Cost:
    """rows x n x ceil(log2 n) comparisons per sorted row of n (a convention,
    as for top_k: comparisons count as FLOPs)."""
    shape = spec.inputs[0]
    dim = int(spec.attrs.get("dimension", len(shape) - 1))
    n = shape[dim]
    rows = _n(shape) // max(n, 1)
    depth = math.ceil(math.log2(n)) if n > 1 else 0
    return Cost(rows * n * depth, 0, f"{rows:,} rows x {n} x {depth}")


@_register("fft")
def fft(spec: OpSpec) -> Cost:
    """5 N log2 N per complex transform (2.5 N log2 N for a real one), N the
    product of the transformed dims, as keras_flops' FFT and RFFT."""
    lengths = tuple(spec.attrs["fft_lengths"])
    size = math.prod(lengths)
    kind = str(spec.attrs.get("fft_type", "")).upper()
    real = "RFFT" in kind
    shape = spec.inputs[0] if "IRFFT" not in kind else spec.outputs[0]
    transforms = _n(shape) // max(_n(shape[len(shape) - len(lengths):]), 1)
    return compute.fft(transforms, size, real)


# Primitives that read, move, reshape, select or convert data, or make random
# bits (integer work, as TensorFlow's random ops): 0 FLOPs by design.
# fmt: off
ZERO = frozenset({
    "reshape", "squeeze", "expand_dims", "broadcast_in_dim", "transpose", "concatenate", "stack", "pad",
    "slice", "dynamic_slice", "dynamic_update_slice", "gather", "scatter", "select_n", "iota",
    "copy", "copy_p", "rev", "convert_element_type", "bitcast_convert_type", "stop_gradient",
    "sharding_constraint", "device_put", "squeeze_p", "split", "reduce_precision",
    "and", "or", "not", "xor", "shift_left", "shift_right_logical", "shift_right_arithmetic",
    "population_count", "clz", "threefry2x32", "random_bits", "random_seed", "random_wrap",
    "random_unwrap", "random_fold_in", "random_split", "random_clone", "iota_2x32_shape",
    "optimization_barrier", "name", "empty", "tie_in", "create_token",
    "mesh_cast", "reshard", "pvary", "axis_index", "all_gather", "ppermute", "pbroadcast", "copy_start", "copy_done", "mutable_array", "ref",
    "get", "swap", "addupdate", "freeze", "square_root_of_unity",
    # copies of the operand repeated, pieces of it, complex numbers paired from
    # real and imaginary parts and their parts taken apart (TensorFlow's Tile,
    # Unpack, Complex, Real and Imag)
    "tile", "unstack", "complex", "real", "imag",
})
# fmt: on

# Views: no data moves (docs/formulas.md, "Bytes").
# fmt: off
VIEWS = frozenset({
    "reshape", "squeeze", "expand_dims", "stop_gradient", "bitcast_convert_type",
    "sharding_constraint", "optimization_barrier", "name", "pvary",
})
# fmt: on
