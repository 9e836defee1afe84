"""The hand counts of tests/traffic_cases.py on JAX: compulsory bytes and
MACs by dtype of Keras's quantized Dense equal TensorFlow's (the same tests,
run in the JAX process)."""

from test_traffic import (  # noqa: F401  (collected here, on JAX)
    test_a_quantized_dtype_policy_without_weights,
    test_a_small_cnn_by_hand,
    test_int8_macs_are_labelled,
    test_min_bytes_by_hand,
    test_min_bytes_fall_with_the_bit_width,
    test_the_roofline_reads_compulsory_bytes_and_each_layers_dtype_peak,
    test_variables_are_as_counted,
)
