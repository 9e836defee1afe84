"""keras_flops: FLOPs and MACs of Keras models, per layer.

    import keras_flops
    report = keras_flops.profile(model, batch_size=1)
    report.flops, report.macs          # exact ints for one batch
    report.to_dataframe()              # one row per layer
    report.uncounted                   # ops with a cost but no formula
    keras_flops.summary(model)         # model.summary() with FLOPs and MACs columns
"""

__version__ = "0.1.0"

try:
    import tensorflow as _tf  # noqa: F401
except ImportError as _err:  # pragma: no cover - depends on the environment
    raise ImportError(
        "keras_flops needs TensorFlow. Install it with the package: "
        "pip install 'keras-flops[cpu]' (tensorflow-cpu) or 'keras-flops[tensorflow]' "
        "(tensorflow, with GPU support)."
    ) from _err

from keras_flops.callback import FlopsCallback
from keras_flops.counting import OpCount, UncountedOp
from keras_flops.formulas import Cost, OpSpec, register_flops, unregister_flops
from keras_flops.profiling import ProfileError, UncountedOpsWarning, profile
from keras_flops.report import FlopsReport, LayerRow
from keras_flops.saved_model import profile_saved_model
from keras_flops.summary import attach, detach, summary
from keras_flops.tracing import InputShapeError

__all__ = [
    "Cost",
    "FlopsCallback",
    "FlopsReport",
    "InputShapeError",
    "LayerRow",
    "OpCount",
    "OpSpec",
    "ProfileError",
    "UncountedOp",
    "UncountedOpsWarning",
    "attach",
    "detach",
    "profile",
    "profile_saved_model",
    "register_flops",
    "summary",
    "unregister_flops",
]
