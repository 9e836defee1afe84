"""Models past protobuf's 2 GiB limit and deep stacks profile exactly.

(Speed and memory at scale are measured by benchmarks/scale.py, not here.)
"""

import sys

import keras

import keras_flops


def test_weights_past_2_gib_count_exactly():
    # 16384 x 32768 float32 weights = 2 GiB, which no frozen GraphDef can hold.
    model = keras.Sequential([keras.Input((16384,)), keras.layers.Dense(32768, kernel_initializer="zeros")])
    assert sum(w.numpy().nbytes for w in model.weights) > 2**31
    report = keras_flops.profile(model)
    # MatMul 2 x 16384 x 32768, BiasAdd 32768
    assert report.flops == 2 * 16384 * 32768 + 32768
    assert report.macs == 16384 * 32768


def test_a_deep_stack_counts_every_layer():
    n = 300
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20 * n))  # Keras builds deep graphs recursively
    model = keras.Sequential([keras.Input((8,))] + [keras.layers.Dense(8) for _ in range(n)])
    report = keras_flops.profile(model)
    # each Dense 8 -> 8: 2 x 8 x 8 + 8 = 136
    assert report.flops == n * 136
    assert len(report.to_dataframe()) == n
