"""Reuse by layer on PyTorch: the hand-worked tests of tests/test_reuse.py
(the zoo's differential runs on TensorFlow and JAX)."""

from test_reuse import (  # noqa: F401
    test_a_broadcast_weight_passed_on_is_read_at_the_weights_size,
    test_a_layer_whose_config_fails_is_keyed_by_what_it_holds,
    test_a_layer_without_a_config_is_traced_per_call_and_named,
    test_a_pass_through_and_its_input_are_one_value_for_their_reader,
    test_a_sequential_counts_by_layer,
    test_a_shared_layer_falls_back_and_says_why,
    test_a_small_constant_a_keras_op_makes_is_read_as_one_program_reads_it,
    test_a_subclassed_model_falls_back_and_says_why,
    test_a_sweep_and_the_summary_count_by_layer,
    test_an_output_a_later_layer_never_reads_counts_nothing,
    test_nested_functional_models_and_keras_ops_between_layers,
    test_one_tensor_listed_as_several_outputs_keeps_the_last,
    test_repeated_dense_blocks_are_traced_once_and_counted_each,
    test_training_and_reuse_false_trace_the_whole_model,
)
