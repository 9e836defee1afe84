"""Peak FLOP/s and memory bandwidth of known accelerators: MFU and rooflines.

Tables and arithmetic only: the backend says which GPUs it sees and whether
it runs float32 matmuls as TF32.

Dense (no structured sparsity) peaks from NVIDIA's datasheets (and Google's
Cloud TPU docs for TPU v4, v5e and v5p), in TFLOP/s (TOPS for int8) per GPU
or chip, by the dtype the math runs in; the datasheets'
int8 and float8 figures "with sparsity" are halved. "float32" is plain FP32; when TensorFlow
runs float32 matmuls and convolutions as TF32 (its default on Ampere and
later), "tensorfloat32" applies.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Dict, NamedTuple, Optional, Tuple, Union

# name pattern (searched in the device name), then peaks by dtype
# fmt: off
PEAK_TFLOPS: Tuple[Tuple[str, Dict[str, float]], ...] = (
    (r"H100.*PCIe", {"float32": 51.2, "tensorfloat32": 378.0, "float16": 756.0, "bfloat16": 756.0,
                     "float8": 1513.0, "int8": 1513.0}),
    (r"H100|H200|GH200", {"float32": 66.9, "tensorfloat32": 494.7, "float16": 989.4, "bfloat16": 989.4,
                          "float8": 1978.9, "int8": 1978.9}),
    (r"A100", {"float32": 19.5, "tensorfloat32": 156.0, "float16": 312.0, "bfloat16": 312.0, "int8": 624.0}),
    (r"V100.*PCIe", {"float32": 14.0, "float16": 112.0}),
    (r"V100", {"float32": 15.7, "float16": 125.0}),
    (r"\bL4\b", {"float32": 30.3, "tensorfloat32": 60.0, "float16": 121.0, "bfloat16": 121.0,
                 "float8": 242.5, "int8": 242.5}),
    (r"\bT4\b", {"float32": 8.1, "float16": 65.0, "int8": 130.0}),
    # Google's Cloud TPU docs, per chip (no float32 matmul peak is published)
    (r"TPU v5p", {"bfloat16": 459.0, "float8": 459.0}),
    (r"TPU v5 ?lite|TPU v5e", {"bfloat16": 197.0, "int8": 393.0}),
    (r"TPU v4", {"bfloat16": 275.0, "int8": 275.0}),
)
# fmt: on

# The float8 types all run at the float8 peak.
_FLOAT8 = ("float8_e4m3fn", "float8_e5m2", "float8_e4m3", "float8_e4m3fnuz", "float8_e5m2fnuz")


# name pattern, then HBM bandwidth in GB/s per GPU (datasheets)
BANDWIDTH_GBPS: Tuple[Tuple[str, float], ...] = (
    (r"H100.*PCIe", 2000.0),
    (r"H200", 4800.0),
    (r"H100|GH200", 3350.0),
    (r"A100", 2039.0),  # the 80 GB SXM card
    (r"V100", 900.0),
    (r"\bL4\b", 300.0),
    (r"\bT4\b", 320.0),
    (r"TPU v5p", 2765.0),  # Cloud TPU v5p docs: 2,765 GBps
    (r"TPU v5 ?lite|TPU v5e", 819.0),  # Cloud TPU v5e docs: 819 GBps
    (r"TPU v4", 1200.0),  # Cloud TPU v4 docs: 1,200 GBps
)


# name pattern, then memory capacity in GB per GPU (datasheets; memory is sized
# in binary units, so a "80 GB" card holds 80 x 2**30 bytes). A name that does
# not say which size (A100, V100) is the larger card, as the bandwidth table's.
# fmt: off
MEMORY_GB: Tuple[Tuple[str, float], ...] = (
    (r"H200", 141.0),  # NVIDIA H200 datasheet: 141 GB HBM3e
    (r"GH200", 96.0),  # NVIDIA GH200 datasheet: 96 GB HBM3
    (r"H100.*\bNVL\b", 94.0),  # NVIDIA H100 datasheet: H100 NVL 94 GB
    (r"H100", 80.0),  # NVIDIA H100 datasheet: SXM and PCIe 80 GB
    (r"A100.*40\s*GB", 40.0),  # NVIDIA A100 datasheet: 40 GB HBM2
    (r"A100", 80.0),  # NVIDIA A100 datasheet: 80 GB HBM2e
    (r"V100.*16\s*GB", 16.0),  # NVIDIA V100 datasheet: 16 GB HBM2
    (r"V100", 32.0),  # NVIDIA V100 datasheet: 32 GB HBM2
    (r"\bL4\b", 24.0),  # NVIDIA L4 datasheet: 24 GB GDDR6
    (r"\bT4\b", 16.0),  # NVIDIA T4 datasheet: 16 GB GDDR6
    (r"TPU v5p", 95.0),  # Cloud TPU v5p docs: 95 GiB HBM2e
    (r"TPU v5 ?lite|TPU v5e", 16.0),  # Cloud TPU v5e docs: 16 GB HBM2
    (r"TPU v4", 32.0),  # Cloud TPU v4 docs: 32 GiB HBM2
)
# fmt: on
GIB = 2**30

# name pattern, then the bandwidth of a GPU's link to its peers, each way, in
# GB/s: what one device sends while it receives as much (nccl-tests' bus
# bandwidth is measured against it).
# fmt: off
INTERCONNECT_GBPS: Tuple[Tuple[str, float], ...] = (
    (r"H100.*PCIe", 64.0),  # NVIDIA H100 datasheet: PCIe Gen5 128 GB/s, 64 GB/s each way
    (r"H200", 450.0),  # NVIDIA H200 datasheet: NVLink 900 GB/s, 450 GB/s each way
    (r"H100|GH200", 450.0),  # NVIDIA H100 datasheet: NVLink 4 900 GB/s, 450 GB/s each way
    (r"A100", 300.0),  # NVIDIA A100 datasheet: NVLink 3 600 GB/s, 300 GB/s each way
    (r"V100", 150.0),  # NVIDIA V100 datasheet: NVLink 2 300 GB/s, 150 GB/s each way
    (r"\bL4\b", 32.0),  # NVIDIA L4 datasheet: PCIe Gen4 x16 64 GB/s, 32 GB/s each way; no NVLink
    (r"\bT4\b", 16.0),  # NVIDIA T4 datasheet: PCIe Gen3 x16 32 GB/s, 16 GB/s each way; no NVLink
    (r"TPU v5p", 600.0),  # Cloud TPU v5p docs: bidirectional ICI 1,200 GBps per chip, 600 each way
    (r"TPU v5 ?lite|TPU v5e", 200.0),  # Cloud TPU v5e docs: bidirectional ICI 400 GBps per chip, 200 each way
)
# fmt: on


def memory_bytes(device_name: str) -> Optional[int]:
    """The memory of a GPU (by its name: "H100", "A100 40GB", "NVIDIA L4"),
    in bytes, if known."""
    return next((int(gb * GIB) for pattern, gb in MEMORY_GB if re.search(pattern, device_name)), None)


@dataclasses.dataclass(frozen=True)
class Device:
    """A device for a roofline: its peak TFLOP/s at the compute dtype and its
    memory bandwidth in GB/s. ``keras_flops.Device(peak_tflops=..., bandwidth_gbps=...)``
    describes any device, a CPU included."""

    peak_tflops: float
    bandwidth_gbps: float
    name: str = "device"
    memory_gb: Optional[float] = None  # its memory, in GB of 2**30 bytes: what ``fits`` checks against
    interconnect_gbs: Optional[float] = None  # its link to its peers, each way, GB/s: collectives' time

    def __post_init__(self):
        if not (self.peak_tflops > 0 and self.bandwidth_gbps > 0):
            raise ValueError(
                f"a Device needs a positive peak_tflops and bandwidth_gbps, got "
                f"{self.peak_tflops} and {self.bandwidth_gbps}."
            )

    @property
    def ridge(self) -> float:
        """FLOPs per byte at which compute and memory take the same time."""
        return self.peak_tflops * 1e12 / (self.bandwidth_gbps * 1e9)

    def time_s(self, flops: float, n_bytes: float) -> float:
        """The roofline time: ``max(flops / peak, bytes / bandwidth)``."""
        return max(flops / (self.peak_tflops * 1e12), n_bytes / (self.bandwidth_gbps * 1e9))

    def bound(self, flops: float, n_bytes: float) -> str:
        """ "compute" when the FLOPs take longer than the bytes, else "memory"."""
        return (
            "compute"
            if flops / (self.peak_tflops * 1e12) >= n_bytes / (self.bandwidth_gbps * 1e9)
            else "memory"
        )


def device(spec: Union[str, Device], dtype: str = "float32", tensor_float_32: bool = False) -> Device:
    """A :class:`Device` as given, or a known GPU by name ("H100", "H100 PCIe",
    "H200", "A100", "V100", "L4", "T4") at the compute ``dtype`` (float32 as
    TF32 with ``tensor_float_32``, where the GPU has it)."""
    if isinstance(spec, Device):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"device must be a GPU name or a keras_flops.Device, got {type(spec).__name__}.")
    peak = peak_tflops(spec, dtype, tensor_float_32)
    bandwidth = next((bw for pattern, bw in BANDWIDTH_GBPS if re.search(pattern, spec)), None)
    if peak is None or bandwidth is None:
        known = "H100, H100 PCIe, H200, A100, V100, L4, T4, TPU v4, TPU v5e, TPU v5p"
        raise ValueError(
            f"no peak for {spec!r} at {dtype}: known devices are {known} (at float32, "
            "float16, bfloat16, float8 or int8 where they have it); describe another with "
            "keras_flops.Device(peak_tflops=..., bandwidth_gbps=...)."
        )
    memory = memory_bytes(spec)
    link = next((bw for pattern, bw in INTERCONNECT_GBPS if re.search(pattern, spec)), None)
    return Device(peak, bandwidth, spec, None if memory is None else memory / GIB, link)


def peak_tflops(device_name: str, dtype: str, tensor_float_32: bool = False) -> Optional[float]:
    """The peak TFLOP/s of a device (by its name) for a compute dtype, if
    known; float32 at the TF32 peak with ``tensor_float_32``, where the GPU has one."""
    dtype = "float8" if dtype in _FLOAT8 else dtype
    for pattern, peaks in PEAK_TFLOPS:
        if re.search(pattern, device_name):
            if dtype == "float32" and tensor_float_32 and "tensorfloat32" in peaks:
                return peaks["tensorfloat32"]
            return peaks.get(dtype)
    return None


def device_for(
    spec: Union[str, Device], default: Device, dtype: str, tensor_float_32: bool = False
) -> Device:
    """The device a layer whose MACs run in ``dtype`` meets: a GPU named by
    ``spec`` at that dtype's peak where it has one, else ``default`` (the
    model's compute dtype; a ``Device`` given as such has one peak)."""
    if not dtype or isinstance(spec, Device):
        return default
    peak = peak_tflops(spec, dtype, tensor_float_32)
    return default if peak is None else Device(peak, default.bandwidth_gbps, f"{default.name} ({dtype})")


class Peak(NamedTuple):
    """A device's peak TFLOP/s, and the device's name (empty when given, not detected)."""

    tflops: float
    device: str


def detect_peak(gpu_names, dtype: str, tensor_float_32: bool = False) -> Optional[Peak]:
    """The peak TFLOP/s per device of the first GPU of ``gpu_names`` whose
    peak is known for ``dtype``, with that GPU's name; None when none is."""
    for name in gpu_names:
        peak = peak_tflops(name, dtype, tensor_float_32)
        if peak is not None:
            return Peak(peak, name)
    return None


def effective_peak(
    device_name: str, ops, compute_dtype: str, tensor_float_32: bool = False
) -> Optional[float]:
    """The peak TFLOP/s ``ops`` run at on a device, each op's FLOPs at the peak
    of the dtype its MACs run in (an op without MACs, or of a dtype the GPU
    has no peak for, at ``compute_dtype``'s): total FLOPs / sum(FLOPs_d /
    peak_d). For int8 matmuls beside float elementwise work, between the
    two peaks. None when the device's peak at ``compute_dtype`` is unknown."""
    fallback = peak_tflops(device_name, compute_dtype, tensor_float_32)
    if fallback is None:
        return None
    by_dtype: Dict[str, int] = {}
    for op in ops:
        by_dtype[op.mac_dtype or compute_dtype] = by_dtype.get(op.mac_dtype or compute_dtype, 0) + op.flops
    peaks = {dtype: peak_tflops(device_name, dtype, tensor_float_32) or fallback for dtype in by_dtype}
    if len(set(peaks.values())) <= 1:
        return next(iter(peaks.values()), fallback)  # one peak: exactly it
    seconds = sum(flops / peaks[dtype] for dtype, flops in by_dtype.items())
    return sum(by_dtype.values()) / seconds if seconds else fallback
