import os
import pathlib
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import pytest  # noqa: E402

if os.environ["KERAS_BACKEND"] == "tensorflow":  # the JAX and PyTorch suites import no TensorFlow
    import tensorflow as tf  # noqa: E402



# The TensorFlow counts the JAX and PyTorch suites compare with, written by
# the first of them to need them and read by the next (tests/jax_suite/cases.py).
_SHARED = {}


def run_suite(directory: str, timeout: int, **env) -> None:
    """Run tests/<directory> with pytest in a process of its own, with ``env``
    added to the environment; fail with its output when any test fails."""
    suite = pathlib.Path(__file__).parent / directory
    if "dir" not in _SHARED:
        _SHARED["dir"] = tempfile.mkdtemp(prefix="keras_flops_tf_counts")
    env.setdefault("KERAS_FLOPS_TF_COUNTS", os.path.join(_SHARED["dir"], "counts.json"))
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(suite)],
        capture_output=True, text=True, timeout=timeout, env=dict(os.environ, **env),
    )
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
    assert " passed" in out.stdout and "failed" not in out.stdout


def sequential(input_shape, *layers):
    return keras.Sequential([keras.Input(input_shape), *layers])


def layer_flops(report):
    """{layer path: flops} of a report."""
    return report.to_dataframe()["flops"].to_dict()


def tfprof(graph):
    """tf.compat.v1.profiler's float_operation() on a graph: (total, {op type: flops})."""
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    total = tf.compat.v1.profiler.profile(graph, options=opts).total_float_ops
    by_type = tf.compat.v1.profiler.profile(graph, cmd="op", options=opts)
    found = {}
    stack = list(by_type.children)  # the "op" view nests each op type in the one before
    while stack:
        node = stack.pop()
        if node.float_ops:
            found[node.name] = node.float_ops
        stack.extend(node.children)
    return total, found


@pytest.fixture(scope="session")
def resnet50():
    return keras.applications.ResNet50(weights=None)


@pytest.fixture(scope="session")
def mobilenet_v2():
    return keras.applications.MobileNetV2(weights=None)

# tests/tf_keras_suite runs in its own process with TF_USE_LEGACY_KERAS=1
# (tests/test_tf_keras.py starts it): tf.keras must be tf_keras from the start.
collect_ignore = ["tf_keras_suite"]
# tests/jax_suite runs in its own process with KERAS_BACKEND=jax (tests/test_jax.py).
if os.environ["KERAS_BACKEND"] != "jax":
    collect_ignore.append("jax_suite")
# tests/torch_suite runs in its own process with KERAS_BACKEND=torch (tests/test_torch.py).
if os.environ["KERAS_BACKEND"] != "torch":
    collect_ignore.append("torch_suite")
