"""The counting core, the same on every backend: records, the layer recorder,
inputs and labels, the walk (calls, loops, branches, liveness, formula
resolution, bytes, uncounted), the report, mixtures of experts and hardware
tables. No framework is imported here: a backend
(:mod:`keras_flops.backends`) brings the traced program."""
