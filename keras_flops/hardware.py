"""Peak FLOP/s of known accelerators, for model FLOPs utilization (MFU).

Dense (no structured sparsity) peaks from NVIDIA's datasheets, in TFLOP/s per
GPU, by the dtype the math runs in. "float32" is plain FP32; when TensorFlow
runs float32 matmuls and convolutions as TF32 (its default on Ampere and
later), "tensorfloat32" applies.
"""

from __future__ import annotations

import re
from typing import Dict, NamedTuple, Optional, Tuple

# name pattern (searched in the device name), then peaks by dtype
PEAK_TFLOPS: Tuple[Tuple[str, Dict[str, float]], ...] = (
    (r"H100.*PCIe", {"float32": 51.2, "tensorfloat32": 378.0, "float16": 756.0, "bfloat16": 756.0}),
    (r"H100|H200|GH200", {"float32": 66.9, "tensorfloat32": 494.7, "float16": 989.4, "bfloat16": 989.4}),
    (r"A100", {"float32": 19.5, "tensorfloat32": 156.0, "float16": 312.0, "bfloat16": 312.0}),
    (r"V100.*PCIe", {"float32": 14.0, "float16": 112.0}),
    (r"V100", {"float32": 15.7, "float16": 125.0}),
    (r"\bL4\b", {"float32": 30.3, "tensorfloat32": 60.0, "float16": 121.0, "bfloat16": 121.0}),
    (r"\bT4\b", {"float32": 8.1, "float16": 65.0}),
)


def peak_tflops(device_name: str, dtype: str) -> Optional[float]:
    """The peak TFLOP/s of a device (by its name) for a compute dtype, if known."""
    for pattern, peaks in PEAK_TFLOPS:
        if re.search(pattern, device_name):
            if dtype == "float32" and "tensorfloat32" in peaks and _tf32_enabled():
                return peaks["tensorfloat32"]
            return peaks.get(dtype)
    return None


def local_gpu_names() -> Tuple[str, ...]:
    """Names of the GPUs TensorFlow sees here."""
    import tensorflow as tf

    names = []
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            names.append(tf.config.experimental.get_device_details(gpu).get("device_name", ""))
        except (ValueError, RuntimeError):  # pragma: no cover
            names.append("")
    return tuple(names)


class Peak(NamedTuple):
    """A device's peak TFLOP/s, and where it came from (the device's name)."""

    tflops: float
    source: str


def detect_peak(dtype: str) -> Optional[Peak]:
    """The peak TFLOP/s per device of the first local GPU whose peak is known
    for ``dtype``, with that GPU's name; None when none is."""
    for name in local_gpu_names():
        peak = peak_tflops(name, dtype)
        if peak is not None:
            return Peak(peak, name)
    return None


def _tf32_enabled() -> bool:
    try:
        import tensorflow as tf

        return bool(tf.config.experimental.tensor_float_32_execution_enabled())
    except (ImportError, AttributeError):  # pragma: no cover
        return False
