"""A session where TensorFlow cannot be imported, for the JAX and PyTorch
suites: profile, summary, FlopsCallback with TensorBoard events, and the
command line on a saved model, run in a process of its own."""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import sys
    sys.modules["tensorflow"] = None  # an import of TensorFlow fails here
    import numpy as np, keras, keras_flops
    from keras_flops.cli import main
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, name="h"), keras.layers.Dense(2, name="out")])
    model.compile(optimizer="sgd", loss="mse")
    report = keras_flops.profile(model, training=True)
    keras_flops.summary(model)
    callback = keras_flops.FlopsCallback(peak_tflops=1.0, log_dir=sys.argv[1], verbose=0)
    history = model.fit(np.zeros((8, 6), "float32"), np.zeros((8, 2), "float32"), batch_size=4,
                        callbacks=[callback], verbose=0)
    model.save(sys.argv[1] + "/m.keras")
    assert main([sys.argv[1] + "/m.keras"]) == 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(sys.argv[1]); events.Reload()
    print("RESULT", report.macs, report.backward_macs, sorted(history.history), sorted(events.Tags()["scalars"]))
""")


def check(tmp_path, backend: str) -> None:
    """Run the script on ``backend``: it must pass, and count the model by hand."""
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, KERAS_BACKEND=backend))
    assert done.returncode == 0, done.stderr[-3000:]
    result = [line for line in done.stdout.splitlines() if line.startswith("RESULT")][0]
    # forward 6x4 + 4x2 = 32 MACs; backward h's kernel 24, out's kernel and input 8 + 8
    assert result.startswith("RESULT 32 40 ")
    assert "'gflops', 'gmacs'" in result and "'mfu'" in result and "'epoch_gflops'" in result
