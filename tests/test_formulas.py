"""keras_flops' own formulas, as pure functions of shapes, with hand-worked values."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keras_flops import formulas
from keras_flops.backends.tensorflow import formulas as tf_formulas
from keras_flops.backends.tensorflow.program import TABLE
from keras_flops.formulas import Cost, OpSpec
from keras_flops.formulas.compute import einsum_terms, input_pairs


def run(op_type, inputs, outputs, attrs=None, values=()):
    spec = OpSpec(op_type, "op", tuple(inputs), tuple(outputs), attrs or {}, tuple(values))
    return formulas.apply(tf_formulas.BUILTIN[op_type], spec)


# A (2, 3) tensor has 6 elements; FLOPs per element follow the textbook formula,
# with exp/log/tanh/erf counted 1 each, as TensorFlow counts Log.
@pytest.mark.parametrize(
    "op_type, per_element",
    [
        ("Relu", 1),  # max(x, 0)
        ("Relu6", 2),  # min(max(x, 0), 6)
        ("LeakyRelu", 2),  # max(x, alpha * x)
        ("Elu", 2),  # exp(x) - 1
        ("Selu", 4),  # scale * alpha * (exp(x) - 1)
        ("Sigmoid", 4),  # 1 / (1 + exp(-x)): negate, exp, add, divide
        ("Tanh", 1),
        ("Softplus", 3),  # log(exp(x) + 1)
        ("Erf", 1),
        ("Erfc", 1),
        ("Exp", 1),
        ("Sqrt", 1),
    ],
)
def test_activations(op_type, per_element):
    cost = run(op_type, [(2, 3)], [(2, 3)])
    assert (cost.flops, cost.macs) == (6 * per_element, 0)


def test_activation_with_unknown_dim_raises():
    with pytest.raises(ValueError, match="unknown dim"):
        run("Relu", [(None, 3)], [(None, 3)])


@pytest.mark.parametrize("op_type", ["Max", "Min", "Prod"])
def test_reductions(op_type):
    # (2, 3, 4) reduced over axis 1 to (2, 4): 24 elements fold into 8 results: 24 - 8 = 16
    assert run(op_type, [(2, 3, 4), (1,)], [(2, 4)]).flops == 16


def test_cumsum():
    # (2, 5) along axis 1: 2 scans of length 5, 4 adds each = 8; exclusive: 3 adds each = 6
    assert run("Cumsum", [(2, 5), ()], [(2, 5)], {"exclusive": False}, [None, 1]).flops == 8
    assert run("Cumsum", [(2, 5), ()], [(2, 5)], {"exclusive": True}, [None, -1]).flops == 6


def test_cumsum_needs_a_constant_axis():
    with pytest.raises(ValueError, match="axis"):
        run("Cumsum", [(2, 5), ()], [(2, 5)], {}, [None, None])


def test_fused_batch_norm_inference_matches_keras3_lowering():
    # N = 4 x 4 x 3 = 48 elements, C = 3 channels: 2 x 48 + 6 x 3 = 114, the same
    # as Keras 3's elementwise BatchNormalization (tests/test_layer_counts.py).
    nhwc = run("FusedBatchNormV3", [(1, 4, 4, 3), (3,), (3,), (3,), (3,)], [(1, 4, 4, 3)],
               {"is_training": False, "data_format": b"NHWC"})
    nchw = run("FusedBatchNormV3", [(1, 3, 4, 4), (3,), (3,), (3,), (3,)], [(1, 3, 4, 4)],
               {"is_training": False, "data_format": b"NCHW"})
    assert nhwc.flops == nchw.flops == 2 * 48 + 6 * 3


def test_fused_batch_norm_training():
    # mean N + variance 3N + normalize 2N + 6C = 6 x 48 + 6 x 3 = 306;
    # updating moving averages in the op adds 6C = 18.
    shapes = [(1, 4, 4, 3), (3,), (3,), (3,), (3,)]
    plain = run("FusedBatchNormV3", shapes, [(1, 4, 4, 3)], {"is_training": True})
    moving = run("FusedBatchNormV3", shapes, [(1, 4, 4, 3)],
                 {"is_training": True, "exponential_avg_factor": 0.5})
    assert (plain.flops, moving.flops) == (306, 324)


def test_conv2d_transpose_nchw():
    # Transposed conv from (1, 4, 4, 4) to (1, 2, 8, 8), kernel 3x3, 2 out, 4 in, stride 2:
    # each of the 64 input elements is spread over 3 x 3 x 2 = 18 outputs: 1152 MACs.
    # TensorFlow's formula: 2 x 128 outputs x 72 kernel elements / (2 channels x 4) = 2304.
    cost = run("Conv2DBackpropInput", [(4,), (3, 3, 2, 4), (1, 4, 4, 4)], [(1, 2, 8, 8)],
               {"strides": [1, 1, 2, 2], "data_format": b"NCHW"})
    assert cost[:2] == (2304, 1152)


def test_conv3d_transpose():
    # dy (1, 2, 2, 2, 3) -> (1, 4, 4, 4, 2), kernel 2x2x2, 2 out, 3 in, stride 2:
    # 24 input elements x (2 x 2 x 2 x 2) = 384 MACs = 768 FLOPs;
    # formula: 2 x 128 x 48 / (2 x 8) = 768.
    cost = run("Conv3DBackpropInputV2", [(5,), (2, 2, 2, 2, 3), (1, 2, 2, 2, 3)], [(1, 4, 4, 4, 2)],
               {"strides": [1, 2, 2, 2, 1], "data_format": b"NDHWC"})
    assert cost[:2] == (768, 384)


def test_pool3d_and_nchw_pool():
    # 2x2x2 window over (1, 2, 2, 2, 3) = 24 outputs: 8 x 24 = 192
    assert run("MaxPool3D", [(1, 4, 4, 4, 3)], [(1, 2, 2, 2, 3)], {"ksize": [1, 2, 2, 2, 1]}).flops == 192
    assert run("AvgPool3D", [(1, 4, 4, 4, 3)], [(1, 2, 2, 2, 3)], {"ksize": [1, 2, 2, 2, 1]}).flops == 192
    # NCHW 2x2 window, (1, 3, 2, 2) = 12 outputs: 4 x 12 = 48
    assert run("MaxPool", [(1, 3, 4, 4)], [(1, 3, 2, 2)], {"ksize": [1, 1, 2, 2]}).flops == 48


def test_resize():
    # (1, 4, 4, 3) -> (1, 8, 8, 3): 192 output elements
    assert run("ResizeBilinear", [(1, 4, 4, 3), (2,)], [(1, 8, 8, 3)]).flops == 7 * 192  # 4 mul + 3 add
    assert run("ResizeBicubic", [(1, 4, 4, 3), (2,)], [(1, 8, 8, 3)]).flops == 31 * 192  # 16 mul + 15 add
    assert run("ResizeNearestNeighbor", [(1, 4, 4, 3), (2,)], [(1, 8, 8, 3)]).flops == 0
    # area, (1, 8, 8, 3) -> (1, 4, 4, 3): 192 inputs added + 48 outputs divided
    assert run("ResizeArea", [(1, 8, 8, 3), (2,)], [(1, 4, 4, 3)]).flops == 192 + 48


def test_einsum_batched_matmul_equals_batch_matmul_formula():
    # bij,bjk->bik on (2, 3, 4) and (2, 4, 5): 2 x 3 x 4 x 5 = 120 products;
    # BatchMatMul: 2 x k (4) x n(out) (2 x 3 x 5 = 30) = 240.
    cost = run("Einsum", [(2, 3, 4), (2, 4, 5)], [(2, 3, 5)], {"equation": b"bij,bjk->bik"})
    assert cost[:2] == (240, 120)


def test_einsum_one_operand_sums():
    # ij->i on (3, 4): 12 terms into 3 sums: 9 adds; ij->ji: a transpose, 0.
    assert run("Einsum", [(3, 4)], [(3,)], {"equation": b"ij->i"})[:2] == (9, 0)
    assert run("Einsum", [(3, 4)], [(4, 3)], {"equation": b"ij->ji"})[:2] == (0, 0)


def test_einsum_with_an_empty_dim_has_no_products():
    # GPT-NeoX's rotary frequencies on an empty slice: positions (1, 5) times
    # 0 inverse frequencies, "bi,j->bij": 1 x 5 x 0 = 0 products (a size-1
    # dim broadcasts, a size-0 one does not grow to 1)
    assert einsum_terms("bi,j->bij", [(1, 5), (0,)]) == 0
    assert einsum_terms("bi,bj->bij", [(1, 5), (3, 2)]) == 3 * 5 * 2  # b: 1 broadcasts to 3


def test_einsum_ellipsis():
    # ...ij,jk->...ik on (2, 3, 4) and (4, 5): 2 x 3 x 4 x 5 = 120 products
    cost = run("Einsum", [(2, 3, 4), (4, 5)], [(2, 3, 5)], {"equation": b"...ij,jk->...ik"})
    assert cost[:2] == (240, 120)


@st.composite
def einsum_cases(draw):
    labels = draw(st.lists(st.sampled_from("abcdef"), min_size=1, max_size=5, unique=True))
    size = {label: draw(st.integers(0, 4)) for label in labels}  # 0: an empty dim
    n_operands = draw(st.integers(1, 2))
    ell_dims = draw(st.lists(st.integers(1, 3), max_size=2))
    use_ellipsis = draw(st.booleans())
    operands, shapes = [], []
    for _ in range(n_operands):
        mine = draw(st.lists(st.sampled_from(labels), unique=True, max_size=len(labels)))
        dims = [size[label] for label in mine]
        spec = "".join(mine)
        if use_ellipsis:
            # broadcast: this operand's trailing ellipsis dims, some set to 1
            k = draw(st.integers(0, len(ell_dims)))
            mine_ell = [d if draw(st.booleans()) else 1 for d in ell_dims[len(ell_dims) - k:]]
            spec, dims = "..." + spec, mine_ell + dims
        operands.append(spec)
        shapes.append(tuple(dims))
    used = sorted({c for spec in operands for c in spec if c != "."})
    out = "".join(draw(st.permutations(used))[: draw(st.integers(0, len(used)))])
    if use_ellipsis:
        out = "..." + out
    return ",".join(operands) + "->" + out, shapes


@settings(max_examples=200, deadline=None)
@given(einsum_cases())
def test_einsum_terms_equal_an_explicit_count(case):
    equation, shapes = case
    # Count the products explicitly: einsum over arrays of ones gives each output
    # element its number of terms; their total is the number of products.
    explicit = int(np.einsum(equation, *[np.ones(s) for s in shapes]).sum())
    assert einsum_terms(equation, shapes) == explicit
    out_shape = np.einsum(equation, *[np.ones(s) for s in shapes]).shape
    cost = run("Einsum", shapes, [out_shape], {"equation": equation})
    if len(shapes) == 2:
        assert cost[:2] == (2 * explicit, explicit)
    else:
        assert cost[:2] == (explicit - math.prod(out_shape), 0)


def test_user_formula_may_return_cost_with_text():
    spec = OpSpec("X", "x", ((2,),), ((2,),))
    assert formulas.apply(lambda op: Cost(4, 1, "my text"), spec) == (4, 1, "my text")
    assert formulas.apply(lambda op: 3, spec).flops == 3


# ---------------------------------------------------------------- training ops


@pytest.mark.parametrize(
    "op_type, per_element",
    [("ReluGrad", 1), ("Relu6Grad", 2), ("TanhGrad", 3), ("SigmoidGrad", 3), ("SoftsignGrad", 4)],
)
def test_activation_gradients(op_type, per_element):
    # (2, 3) gradient: 6 elements x the steps of each derivative
    assert run(op_type, [(2, 3), (2, 3)], [(2, 3)]).flops == 6 * per_element


def test_depthwise_backprops():
    # dy (1, 4, 4, 2) = 32 elements, 3x3 kernel: 2 x 32 x 9 = 576, as the forward pass
    by_input = run("DepthwiseConv2dNativeBackpropInput", [(4,), (3, 3, 2, 1), (1, 4, 4, 2)], [(1, 6, 6, 2)])
    by_filter = run("DepthwiseConv2dNativeBackpropFilter", [(1, 6, 6, 2), (4,), (1, 4, 4, 2)], [(3, 3, 2, 1)])
    assert by_input[:2] == by_filter[:2] == (576, 288)


def test_conv3d_backprop_filter():
    # dy (1, 3, 3, 3, 2) = 54 elements, kernel 3x3x3 x 1 in-channel: 2 x 54 x 27 = 2916
    spec = OpSpec("Conv3DBackpropFilterV2", "op", ((1, 5, 5, 5, 1), (5,), (1, 3, 3, 3, 2)),
                  ((3, 3, 3, 1, 2),), {}, ())
    # counting="full"'s exact formula (TensorFlow has none for it)
    cost = formulas.apply(tf_formulas.EXACT["Conv3DBackpropFilterV2"], spec)
    assert cost[:2] == (2916, 1458)


def test_pool3d_gradients():
    ksize = {"ksize": [1, 2, 2, 2, 1]}
    # max: window 8 x 24 original outputs + 24 = 216; avg: 2 x 8 x 24 = 384
    assert run("MaxPool3DGrad", [(1, 4, 4, 4, 3), (1, 2, 2, 2, 3), (1, 2, 2, 2, 3)], [(1, 4, 4, 4, 3)],
               ksize).flops == 8 * 24 + 24
    assert run("AvgPool3DGrad", [(5,), (1, 2, 2, 2, 3)], [(1, 4, 4, 4, 3)], ksize).flops == 2 * 8 * 24


def test_fused_batch_norm_gradient():
    shapes = [(1, 4, 4, 3), (1, 4, 4, 3), (3,), (3,), (3,), (3,)]
    # N = 48, C = 3: batch statistics 9 x 48 + 4 x 3 = 444; moving ones 5 x 48 + 12 = 252
    assert run("FusedBatchNormGradV3", shapes, [(1, 4, 4, 3)], {"is_training": True}).flops == 444
    assert run("FusedBatchNormGradV3", shapes, [(1, 4, 4, 3)], {"is_training": False}).flops == 252


def test_softmax_cross_entropy_losses():
    # logits (4, 10): n = 40, 4 rows
    assert run("SparseSoftmaxCrossEntropyWithLogits", [(4, 10), (4,)], [(4,), (4, 10)]).flops == 6 * 40 + 4
    assert run("SoftmaxCrossEntropyWithLogits", [(4, 10), (4, 10)], [(4,), (4, 10)]).flops == 8 * 40 - 4


def test_sums_into_targets():
    # 12 values added into their segments or into a variable
    assert run("UnsortedSegmentSum", [(12, 2), (12,), ()], [(5, 2)]).flops == 24
    assert run("AssignAddVariableOp", [(), (12,)], []).flops == 12


# Fourier transforms: 5 N log2 N real FLOPs per complex transform of N points.
def test_fft_of_8_points():
    # 3 signals of 8 points: 3 x 5 x 8 x log2(8) = 3 x 5 x 8 x 3 = 360
    assert run("FFT", [(3, 8)], [(3, 8)]).flops == 3 * 5 * 8 * 3 == 360


def test_fft2d_counts_both_dims_as_one_transform():
    # one 4 x 8 image: N = 32 points, 5 x 32 x log2(32) = 5 x 32 x 5 = 800; two of them
    assert run("FFT2D", [(2, 4, 8)], [(2, 4, 8)]).flops == 2 * 5 * 32 * 5 == 1600


def test_real_ffts_are_half():
    # RFFT of 16 real points -> 9 complex: N = fft_length 16, 5 x 16 x 4 / 2 = 160
    assert run("RFFT", [(16,), (1,)], [(9,)], values=(None, [16])).flops == 5 * 16 * 4 // 2 == 160
    # IRFFT back to 16 real points, for 2 rows: 2 x 160
    assert run("IRFFT", [(2, 9), (1,)], [(2, 16)], values=(None, [16])).flops == 2 * 160


def test_top_k():
    # rows of 10, k = 3: each row scanned against a heap 2 deep (ceil(log2 4)): 4 rows x 9 x 2
    assert run("TopKV2", [(4, 10), ()], [(4, 3), (4, 3)], values=(None, 3)).flops == 4 * 9 * 2 == 72
    # k = 1 is ArgMax's n - 1 per row
    assert run("TopKV2", [(4, 10), ()], [(4, 1), (4, 1)], values=(None, 1)).flops == 4 * 9


def test_multinomial_draw():
    # 2 rows of 10 classes, 1 sample each: 2 x 1 x 10
    assert run("StatelessMultinomial", [(2, 10), (), (2,)], [(2, 1)], values=(None, 1, None)).flops == 20


def test_scatter_adds():
    # 5 updates of 3 elements each, added into a (10, 3) tensor
    assert run("TensorScatterAdd", [(10, 3), (5, 1), (5, 3)], [(10, 3)]).flops == 15
    assert run("ScatterNd", [(5, 1), (5, 3), (2,)], [(10, 3)]).flops == 15


@pytest.mark.parametrize("op_type", [
    "MatrixBandPart", "MatrixDiagV3", "MatrixSetDiagV3", "Complex", "Real", "Imag", "Roll",
    "TensorScatterUpdate", "XlaDynamicUpdateSlice", "BitwiseAnd"])
def test_data_movement_costs_nothing(op_type):
    assert formulas.Chain(TABLE).resolve(op_type).source == "zero"


# ----------------------------------------------------------------------------
# JAX primitives (pure functions of shapes and parameters: no JAX needed)

from collections import namedtuple  # noqa: E402

from keras_flops.backends.jax import formulas as primitives  # noqa: E402

ConvDims = namedtuple("ConvDims", "lhs_spec rhs_spec out_spec")
NHWC = ConvDims((0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2))  # lhs NHWC, rhs HWIO, out NHWC


def jax_cost(name, inputs, outputs, **params):
    spec = OpSpec(name, "eqn", tuple(inputs), tuple(outputs), params, ())
    return formulas.apply(primitives.FORMULAS[name], spec)


def test_jax_dot_general():
    # (2, 3, 4) x (2, 4, 5), batch dim 0, contracting 4: 2 x 3 x 5 = 30 outputs x 4
    cost = jax_cost("dot_general", [(2, 3, 4), (2, 4, 5)], [(2, 3, 5)],
                    dimension_numbers=(((2,), (1,)), ((0,), (0,))))
    assert cost[:2] == (2 * 30 * 4, 30 * 4)


def test_jax_conv_grouped_and_plain():
    # 8x8x4 -> 8x8x6, 3x3 window, 2 groups: rhs (3, 3, 2, 6), 2 in-features per group;
    # 384 outputs x 9 x 2 = 6912 MACs
    cost = jax_cost("conv_general_dilated", [(1, 8, 8, 4), (3, 3, 2, 6)], [(1, 8, 8, 6)],
                    dimension_numbers=NHWC, lhs_dilation=(1, 1), padding=((1, 1), (1, 1)),
                    window_strides=(1, 1), rhs_dilation=(1, 1), feature_group_count=2)
    assert cost[:2] == (2 * 6912, 6912) and 6912 == 384 * 9 * 2


def test_jax_conv_with_lhs_dilation_counts_real_products():
    # the input gradient of a 1x1 stride 2 "valid" conv on 4: dy 2x2 dilated by 2
    # to 3x3, padded (0, 1) to give 4x4. Real pairs per dim: outputs 0 and 2 read
    # dy's 2 elements; 1 and 3 read zeros: 2, so 2 x 2 = 4 (not the 16 positions)
    cost = jax_cost("conv_general_dilated", [(1, 2, 2, 1), (1, 1, 1, 1)], [(1, 4, 4, 1)],
                    dimension_numbers=NHWC, lhs_dilation=(2, 2), padding=((0, 1), (0, 1)),
                    window_strides=(1, 1), rhs_dilation=(1, 1))
    assert cost[:2] == (2 * 4, 4)
    assert input_pairs(in_size=2, out_size=4, k=1, stride=1, dilation=1, pad_lo=0, lhs_dilation=2) == 2


@pytest.mark.parametrize("name, inputs, outputs, params, flops", [
    ("add", [(2, 3), (2, 3)], [(2, 3)], {}, 6),
    ("rsqrt", [(4,)], [(4,)], {}, 8),  # TensorFlow's Rsqrt: 2 per element
    ("logistic", [(5,)], [(5,)], {}, 20),  # 1 / (1 + exp(-x)): 4 per element
    ("integer_pow", [(6,)], [(6,)], {"y": 2}, 6),  # x * x
    ("integer_pow", [(6,)], [(6,)], {"y": 3}, 12),  # x * x, * x
    ("integer_pow", [(6,)], [(6,)], {"y": -2}, 12),  # x * x, reciprocal
    ("reduce_sum", [(4, 5)], [(4,)], {"axes": (1,)}, 20 - 4),
    ("cumsum", [(3, 7)], [(3, 7)], {"axis": 1}, 3 * 6),
    ("reduce_window_max", [(1, 4, 4, 1)], [(1, 2, 2, 1)], {"window_dimensions": (1, 2, 2, 1)}, 4 * 4),
    ("reduce_window_sum", [(1, 4, 4, 1)], [(1, 2, 2, 1)], {"window_dimensions": (1, 2, 2, 1)}, 3 * 4),
    ("select_and_scatter_add", [(1, 2, 2, 1), (1, 4, 4, 1)], [(1, 4, 4, 1)],
     {"window_dimensions": (1, 2, 2, 1)}, 4 * 4 + 4),
    ("top_k", [(2, 10)], [(2, 3), (2, 3)], {"k": 3}, 2 * 9 * 2),  # ceil(log2(4)) = 2
    ("sort", [(2, 8)], [(2, 8)], {"dimension": 1}, 2 * 8 * 3),
    ("fft", [(2, 16)], [(2, 16)], {"fft_lengths": (16,), "fft_type": "FftType.FFT"}, 2 * 5 * 16 * 4),
    ("fft", [(2, 16)], [(2, 9)], {"fft_lengths": (16,), "fft_type": "FftType.RFFT"}, int(2 * 2.5 * 16 * 4)),
])
def test_jax_primitive_formulas(name, inputs, outputs, params, flops):
    cost = jax_cost(name, inputs, outputs, **params)
    assert (cost.flops, cost.macs) == (flops, 0)


# --------------------------------------------------------------------------
# The shared formulas the three backends' tables call (formulas.compute)


def test_shared_batch_norm_and_its_gradient():
    from keras_flops.formulas import compute

    # N = 48 elements, C = 3 channels
    assert compute.batch_norm(48, 3, training=False, moving_averages=False).flops == 2 * 48 + 6 * 3
    assert compute.batch_norm(48, 3, training=True, moving_averages=False).flops == 6 * 48 + 6 * 3
    assert compute.batch_norm(48, 3, training=True, moving_averages=True).flops == 6 * 48 + 12 * 3
    assert compute.batch_norm_grad(48, 3, training=True)[:2] == (9 * 48 + 4 * 3, 0)
    assert compute.batch_norm_grad(48, 3, training=False).flops == 5 * 48 + 4 * 3


def test_shared_convolution_and_its_real_pairs():
    from keras_flops.formulas import compute

    # 2 x 6x6 x 4 = 288 outputs, each 3x3 taps x 2 in-features: 5,184 MACs
    assert compute.convolution(288, [3, 3], 2)[:2] == (2 * 5184, 5184)
    # a 1-D stride-2 convolution 5 -> 2 with a 3-tap kernel and no padding:
    # output 0 reads inputs 0, 1, 2 and output 1 reads 2, 3, 4: 6 pairs, all real
    assert compute.real_pairs([5], [2], [3], [2], [1], [0]) == 6
    # the same with 1 of padding before: output 0's first tap is on padding: 5 real pairs,
    # and in two dims the pairs multiply: 5 x 6 = 30
    assert compute.real_pairs([5], [2], [3], [2], [1], [1]) == 5
    assert compute.real_pairs([5, 5], [2, 2], [3, 3], [2, 2], [1, 1], [1, 0]) == 30
    # batch 2 x 4 channels x 3 per channel x 30 pairs = 720 MACs
    assert compute.on_real_pairs(2, 4, 3, 30)[:2] == (2 * 720, 720)


def test_shared_softmax_is_five_per_element():
    from keras_flops.formulas import compute

    softmax = compute.elementwise_formula("softmax", lambda spec: spec.inputs[0])
    assert softmax(OpSpec("softmax", "s", ((2, 10),), ((2, 10),))).flops == 5 * 20
