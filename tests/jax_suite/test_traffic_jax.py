"""The hand counts of tests/traffic_cases.py on JAX: compulsory bytes and
MACs by dtype of Keras's quantized Dense equal TensorFlow's."""

import pytest

import traffic_cases as cases


def test_variables_are_as_counted():
    cases.check_variables_are_as_counted()


@pytest.mark.parametrize("mode", ["float32", "int8", "int4"])
def test_min_bytes_by_hand(mode):
    cases.check_min_bytes_by_hand(mode)


def test_min_bytes_fall_with_the_bit_width():
    cases.check_min_bytes_fall_with_the_bit_width()


def test_int8_macs_are_labelled():
    cases.check_int8_macs_are_labelled()
