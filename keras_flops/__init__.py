"""keras_flops: FLOPs and MACs of Keras models, per layer.

    import keras_flops
    report = keras_flops.profile(model, batch_size=1)
    report.flops, report.macs          # exact ints for one batch
    report.to_dataframe()              # one row per layer
    report.uncounted                   # ops with a cost but no formula
    keras_flops.summary(model)         # model.summary() with FLOPs and MACs columns

The public names load on first use, so ``import keras_flops`` is instant and
imports no framework (the command line sets TensorFlow's log level first).
Frameworks are imported only by their backend (keras_flops/backends/): with
``KERAS_BACKEND=jax`` models are traced into jaxprs and TensorFlow is never
imported. docs/architecture.md shows the layout.
"""

import importlib

__version__ = "0.1.0"

# fmt: off
_EXPORTS = {
    "Cost": "keras_flops.formulas",
    "OpSpec": "keras_flops.formulas",
    "register_flops": "keras_flops.formulas",
    "unregister_flops": "keras_flops.formulas",
    "FlopsCallback": "keras_flops.callback",
    "FlopsReport": "keras_flops.core.report",
    "InputShapeError": "keras_flops.core.inputs",
    "LayerRow": "keras_flops.core.records",
    "OpCount": "keras_flops.core.records",
    "UncountedOp": "keras_flops.core.records",
    "ProfileError": "keras_flops.errors",
    "UncountedOpsWarning": "keras_flops.errors",
    "WithoutWeightsError": "keras_flops.errors",
    "profile": "keras_flops.profiling",
    "profile_saved_model": "keras_flops.profiling",
    "without_weights": "keras_flops.profiling",
    "Device": "keras_flops.core.hardware",
    "measure": "keras_flops.profiling",
    "GenerationReport": "keras_flops.generation",
    "MemoryReport": "keras_flops.core.memory",
    "memory": "keras_flops.footprint",
    "largest_batch": "keras_flops.footprint",
    "largest_context": "keras_flops.footprint",
    "smallest_model_axis": "keras_flops.footprint",
    "profile_generation": "keras_flops.generation",
    "Sweep": "keras_flops.sweeps",
    "sweep": "keras_flops.sweeps",
    "attach": "keras_flops.model_summary",
    "detach": "keras_flops.model_summary",
    "summary": "keras_flops.model_summary",
}
# fmt: on

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'keras_flops' has no attribute {name!r}")
    try:
        value = getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as err:
        if (err.name or "").split(".")[0] != "tensorflow":
            raise
        raise ImportError(
            f"keras_flops.{name} needs TensorFlow. Install it with the package: "
            "pip install 'keras-flops[cpu]' (tensorflow-cpu) or 'keras-flops[tensorflow]' "
            "(tensorflow, with GPU support); or run Keras on JAX (KERAS_BACKEND=jax, "
            "pip install 'keras-flops[jax]') or on PyTorch (KERAS_BACKEND=torch, "
            "pip install 'keras-flops[torch]'), where profile, summary, attach, FlopsCallback "
            "and the command line need no TensorFlow."
        ) from err
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
