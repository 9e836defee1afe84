"""Reuse by layer on JAX: the backend-neutral tests of tests/test_reuse.py,
the keras_hub zoo's differential included, collected here."""

from test_reuse import *  # noqa: F401,F403


def test_counting_by_layer_does_not_import_tensorflow():
    """Every layer's get_config() serializes its dtype policy, and Keras asks
    there whether TensorFlow is importable, importing it where installed."""
    import subprocess
    import sys

    script = ("import sys, keras, keras_flops\n"
              "x = inputs = keras.Input((4,))\n"
              "model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Dense(4)(x)))\n"
              "report = keras_flops.profile(model)\n"
              "print(report.macs, 'tensorflow' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [str(4 * 4 + 4 * 3), "False"]  # 28 MACs, and no TensorFlow
