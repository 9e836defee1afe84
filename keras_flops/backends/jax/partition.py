"""What each device computes and communicates under a ``keras.distribution``,
read from XLA's own SPMD partitioner.

The traced jaxpr is jitted with the distribution's layouts as the shardings
of its arguments (each variable's from ``get_variable_layout``, each input's
and label's from ``get_data_layout``), lowered and compiled on abstract
values, so that nothing is allocated. The compiled HLO module
(:mod:`.hlo`) is the program every device runs: its shapes are one device's
shards, and its collectives are the communication XLA inserted. Each
instruction is priced with the JAX backend's formulas (an HLO opcode is a
primitive's), a dot or a convolution by its own MACs, and owned by the layer
whose name scope its ``op_name`` carries. keras_flops writes no partitioner
of its own.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Dict, List, Optional, Tuple

import jax
import jax.extend.core
import keras

from keras_flops.backends.jax import hlo
from keras_flops.backends.jax import trace as tracing
from keras_flops.backends.jax import formulas as primitives
from keras_flops.backends.jax.program import REMATTED
from keras_flops import _compat as keras_compat
from keras_flops.core import chains as chain_programs, weightless
from keras_flops.core.layers import layer_tree
from keras_flops.core.memory import dtype_bytes, variable_bytes
from keras_flops.core.records import (
    BACKWARD, FORWARD, LOSS, LOSS_PHASE, OUTSIDE, Collective, OpCount, Partitioned, UncountedOp,
)  # fmt: skip
from keras_flops.formulas import compute
from keras_flops.formulas.registry import Cost, OpSpec, apply

# HLO opcode -> the JAX primitive whose formula prices it (docs/formulas.md)
PRIMITIVES = {
    "add": "add", "subtract": "sub", "multiply": "mul", "divide": "div", "remainder": "rem",
    "maximum": "max", "minimum": "min", "power": "pow", "atan2": "atan2", "compare": "eq",
    "negate": "neg", "abs": "abs", "sign": "sign", "floor": "floor", "ceil": "ceil",
    "round-nearest-afz": "round", "round-nearest-even": "round", "exponential": "exp",
    "exponential-minus-one": "expm1", "log": "log", "log-plus-one": "log1p", "logistic": "logistic",
    "tanh": "tanh", "sqrt": "sqrt", "rsqrt": "rsqrt", "cbrt": "cbrt", "sine": "sin", "cosine": "cos",
    "tan": "tan", "erf": "erf", "is-finite": "is_finite", "clamp": "clamp", "select": "select_n",
    "and": "and", "or": "or", "xor": "xor", "not": "not", "convert": "convert_element_type",
    "broadcast": "broadcast_in_dim", "reshape": "reshape", "transpose": "transpose", "copy": "copy",
    "slice": "slice", "dynamic-slice": "dynamic_slice", "dynamic-update-slice": "dynamic_update_slice",
    "concatenate": "concatenate", "pad": "pad", "reverse": "rev", "gather": "gather", "iota": "iota",
    "bitcast-convert": "bitcast_convert_type", "reduce-precision": "reduce_precision",
    "shift-left": "shift_left", "shift-right-logical": "shift_right_logical",
    "shift-right-arithmetic": "shift_right_arithmetic", "popcnt": "population_count",
    "count-leading-zeros": "clz", "imag": "imag", "real": "real", "complex": "complex",
}  # fmt: skip

# Instructions that hold, name or move no data of their own: no FLOPs and no bytes
STRUCTURAL = frozenset({
    "parameter", "constant", "bitcast", "get-tuple-element", "tuple", "partition-id", "replica-id",
    "after-all", "opt-barrier", "add-dependency", "domain",
})  # fmt: skip
# XLA's element types by the names Keras and numpy give them (a MAC's dtype)
XLA_DTYPES = {
    "f32": "float32", "bf16": "bfloat16", "f16": "float16", "f64": "float64", "s8": "int8", "u8": "uint8",
    "s32": "int32", "f8e4m3fn": "float8_e4m3fn", "f8e5m2": "float8_e5m2", "s4": "int4",
}  # fmt: skip
COLLECTIVES = ("all-reduce", "all-gather", "reduce-scatter", "all-to-all", "collective-permute")


# --------------------------------------------------------------------------
# The layouts, checked before any trace


def active() -> Optional[object]:
    """The ``keras.distribution`` set in this process, or None."""
    return keras.distribution.distribution()


def mesh_of(distribution) -> Dict[str, int]:
    """``{axis: size}`` of a distribution's device mesh."""
    mesh = distribution.device_mesh
    return dict(zip(mesh.axis_names, (int(n) for n in mesh.shape)))


def check_layouts(model, distribution) -> Tuple[str, ...]:
    """The notes a layout deserves before anything is traced: the variables
    no rule of a ModelParallel's layout map matched (replicated on every
    device), largest first; a mesh axis that does not divide a variable's
    dimension is a ValueError naming both."""
    mesh = mesh_of(distribution)
    layout_map = keras_compat.layout_map(distribution)
    unmatched = []
    for variable in weightless.all_variables(model):
        layout = distribution.get_variable_layout(variable)
        for dim, axes in zip(variable.shape, layout.axes):
            names = axes if isinstance(axes, (tuple, list)) else (axes,)
            size = math.prod(mesh[a] for a in names if a is not None)
            if size > 1 and dim % size:
                raise ValueError(
                    f"The layout of {variable.path!r} {tuple(variable.shape)} splits a dimension of "
                    f"{dim} over mesh axis {'x'.join(a for a in names if a)} of size {size}, which "
                    f"does not divide it. Give that dimension an axis whose size divides {dim} (or "
                    "None) in the layout map, or use a mesh whose axis does."
                )
        if layout_map is not None and layout_map[variable.path] is None:
            unmatched.append(variable)
    if not unmatched:
        return ()
    devices = math.prod(mesh.values())
    unmatched.sort(key=lambda v: -variable_bytes(v))
    listed = ", ".join(f"{v.path} ({variable_bytes(v):,} bytes)" for v in unmatched[:10])
    more = f", and {len(unmatched) - 10} more" if len(unmatched) > 10 else ""
    total = sum(variable_bytes(v) for v in unmatched)
    return (
        f"No rule of the layout map matches {len(unmatched)} variable(s), {total:,} bytes, "
        f"replicated on {devices} devices: {listed}{more}.",
    )


class Partitioner:
    """:class:`keras_flops.backends.protocol.Partitioner` on JAX: the mesh,
    the layout's notes (checked here, before any trace), and
    :func:`partition`."""

    def __init__(self, model, distribution):
        self.model, self.distribution = model, distribution
        self.mesh = mesh_of(distribution)
        self.replicas = self.mesh.get(getattr(distribution, "batch_dim_name", None), 1)
        self.notes = check_layouts(model, distribution)

    def partition(self, trace) -> Partitioned:
        return partition(self.model, trace, self.distribution)

    def partition_by_layer(self, specs, chains) -> Partitioned:
        return partition_by_layer(self.model, specs, chains, self.distribution)


# --------------------------------------------------------------------------
# XLA's partitioned program


def partition(model, trace, distribution) -> Partitioned:
    """The per-device program of ``trace`` under ``distribution``: compiled
    by XLA on abstract values with the distribution's shardings, and read."""
    variables = weightless.all_variables(model)
    closed = trace.jaxpr
    invars = closed.jaxpr.invars
    shardings = [distribution.get_variable_layout(v).backend_layout for v in variables]
    for var in invars[len(variables) :]:
        shape = tuple(var.aval.shape)
        if shape:
            shardings.append(distribution.get_data_layout(shape).backend_layout)
        else:
            shardings.append(
                jax.sharding.NamedSharding(
                    distribution.device_mesh.backend_mesh, jax.sharding.PartitionSpec()
                )
            )
    avals = [jax.ShapeDtypeStruct(v.aval.shape, v.aval.dtype, sharding=s) for v, s in zip(invars, shardings)]
    compiled = jax.jit(jax.extend.core.jaxpr_as_fun(closed)).lower(*avals).compile()
    mesh = mesh_of(distribution)
    devices = math.prod(mesh.values())
    module = hlo.parse(compiled.as_text())
    ops, uncounted, collectives, notes = _Reader(module, trace, devices).read()
    stats = compiled.memory_analysis()
    memory = {
        "argument_bytes": int(getattr(stats, "argument_size_in_bytes", 0) or 0),
        "output_bytes": int(getattr(stats, "output_size_in_bytes", 0) or 0),
        "temp_bytes": int(getattr(stats, "temp_size_in_bytes", 0) or 0),
        "alias_bytes": int(getattr(stats, "alias_size_in_bytes", 0) or 0),
    }
    held = {id(w) for w in model.weights}  # its weights, not its metrics' state
    weights = tuple((v.path, _shard_bytes(v, s)) for v, s in zip(variables, shardings) if id(v) in held)
    return Partitioned(mesh, tuple(ops), tuple(uncounted), tuple(collectives), memory,
                       weights, tuple(notes))  # fmt: skip


def partition_by_layer(model, specs, chains, distribution) -> Partitioned:
    """The per-device program of ``model``'s inference call, without XLA
    partitioning every call of a long chain of identical calls (``chains``,
    from reuse by layer: calls sharing one trace, each reading the output of
    the one before; a transformer's decoder blocks).

    XLA's program is affine in the number of a chain's middle calls: each
    adds the same instructions, mostly under its own layer's name, some
    under the first call's (what XLA hoists or merges across calls). So a
    chain of n calls is partitioned twice, with its first three and last
    calls (P4) and with its first two and last (P3), the calls left out
    returning their input; the program of all n is P4 plus n - 4 times the
    difference: the third call's ops and collectives under each left-out
    call's own path, and the rest of the difference (the hoisted
    instructions, the memory) n - 4 times over. tests/jax_mesh_suite checks
    this against partitioning every call. Where a difference is negative,
    every call is partitioned, and a note says why."""
    long = chain_programs.long_chains(chains)
    left_out = chain_programs.left_out(long)
    p4 = partition(model, tracing.trace(model, specs, passthrough=left_out), distribution)
    if not long:
        return p4
    layers = dict(layer_tree(model))
    ops, collectives, uncounted = list(p4.ops), list(p4.collectives), list(p4.uncounted)
    memory = dict(p4.memory)
    for chain in long:
        p3 = partition(
            model, tracing.trace(model, specs, passthrough={**left_out, chain[2]: chain[1]}), distribution
        )
        more = len(chain) - 4  # the middle calls in neither program
        third = chain_programs.renaming(layers[chain[2]], chain[2], layers[chain[2]], chain[2])
        rest_ops = chain_programs.difference(
            p4.ops, p3.ops, third, chain_programs.op_key, chain_programs.OP_FIELDS
        )
        rest_collectives = chain_programs.difference(
            p4.collectives, p3.collectives, third, _collective_key, ()
        )
        if rest_ops is None or rest_collectives is None:
            whole = partition(model, tracing.trace(model, specs), distribution)
            why = (f"partitioned every call: a program with fewer calls of the chain {chain[0]!r} ... "
                   f"{chain[-1]!r} had more of some instructions than one with more calls")  # fmt: skip
            return dataclasses.replace(whole, notes=whole.notes + (why,))
        for path in chain[3:-1]:
            renamed = chain_programs.renaming(layers[chain[2]], chain[2], layers[path], path)
            ops += [dataclasses.replace(op, layer=renamed[op.layer]) for op in p4.ops if op.layer in renamed]
            collectives += [dataclasses.replace(c, layer=renamed[c.layer]) for c in p4.collectives
                            if c.layer in renamed]  # fmt: skip
            uncounted += [
                dataclasses.replace(u, layer=renamed[u.layer]) for u in p4.uncounted if u.layer in renamed
            ]
        ops += [chain_programs.times(op, more, chain) for op in rest_ops]
        collectives += [dataclasses.replace(c, repeat=c.repeat * more) for c in rest_collectives]
        memory = {name: n + more * (p4.memory[name] - p3.memory[name]) for name, n in memory.items()}
    note = (
        f"XLA partitioned {len(left_out)} fewer calls than the model makes: the middle calls of "
        + ", ".join(f"{c[0]!r} ... {c[-1]!r}" for c in long)
        + " are each the program XLA made of one more of them (reuse by layer; profile(reuse=False) "
        "partitions every call)."
    )
    return dataclasses.replace(
        p4, ops=tuple(ops), collectives=tuple(collectives), uncounted=tuple(uncounted), memory=memory,
        notes=p4.notes + (note,),
    )  # fmt: skip


def _collective_key(c):
    return (c.layer, c.kind, c.phase, c.group_size, c.operand_bytes, c.result_bytes)


def _shard_bytes(variable, sharding) -> int:
    """Bytes of one device's shard of a variable: its shard's shape (XLA
    pads an uneven shard to the largest) at its dtype's width."""
    shape = sharding.shard_shape(tuple(variable.shape))
    return math.ceil(math.prod(shape) * dtype_bytes(variable.dtype))


class _Reader:
    """Prices every instruction the entry computation runs, entering fusions,
    calls and while loops (a loop ``known_trip_count`` times)."""

    def __init__(self, module: hlo.Module, trace, devices: int):
        self.module, self.trace, self.devices = module, trace, devices
        self.ops: List[OpCount] = []
        self.uncounted: List[UncountedOp] = []
        self.collectives: List[Collective] = []
        self.notes: List[str] = []

    def read(self):
        self._walk(self.module.computations[self.module.entry], repeat=1, fused=False)
        return self.ops, self.uncounted, self.collectives, self.notes

    def owner(self, op_name: str) -> Tuple[str, str]:
        layer = self.trace.owner(op_name) or OUTSIDE
        if "transpose(" in op_name:
            return layer, BACKWARD
        return layer, (LOSS_PHASE if layer == LOSS else FORWARD)

    def _walk(self, computation: hlo.Computation, repeat: int, fused: bool) -> None:
        for instruction in computation.instructions:
            self._visit(computation, instruction, repeat, fused)

    def _visit(self, computation, instruction: hlo.Instruction, repeat: int, fused: bool) -> None:
        opcode = instruction.opcode
        if opcode in STRUCTURAL:
            return
        layer, phase = self.owner(instruction.op_name)
        operand_bytes = sum(self._bytes(computation, name) for name in instruction.operands)
        moved = 0 if fused else operand_bytes + instruction.bytes
        kind = opcode[: -len("-start")] if opcode.endswith("-start") else opcode
        if opcode.endswith("-done"):
            return  # its -start carries the collective
        if kind in COLLECTIVES:
            self.collectives.append(Collective(instruction.name, kind, layer, phase,
                                               hlo.group_size(instruction, self.devices), operand_bytes,
                                               _result_bytes(instruction, kind), repeat))  # fmt: skip
            self._record(instruction, layer, phase, Cost(0, 0, "communication"), moved, repeat, "xla")
            return
        if opcode == "fusion" or opcode == "call":
            self._record(instruction, layer, phase, Cost(0, 0, "a fusion's inputs and outputs"), moved, repeat,
                         "zero")  # fmt: skip
            for name in instruction.called("calls") + instruction.called("to_apply"):
                self._walk(self.module.computations[name], repeat, fused or opcode == "fusion")
            return
        if opcode == "while":
            trips = re.search(r'"known_trip_count"\s*:\s*\{\s*"n"\s*:\s*"(\d+)"', instruction.attributes)
            if trips is None:
                self.uncounted.append(UncountedOp(instruction.name, opcode, layer,
                                                  "a while loop with no known trip count"))  # fmt: skip
                return
            n = int(trips.group(1))
            for name in instruction.called("body"):
                self._walk(self.module.computations[name], repeat * n, fused)
            for name in instruction.called("condition"):
                self._walk(self.module.computations[name], repeat * (n + 1), fused)
            return
        cost = self._cost(computation, instruction)
        if isinstance(cost, str):
            self.uncounted.append(UncountedOp(instruction.name, opcode, layer, cost))
            return
        source = "zero" if cost.flops == 0 else "xla"
        first = computation.by_name.get(instruction.operands[0]) if instruction.operands else None
        dtype = XLA_DTYPES.get(first.shape[0].dtype, "") if first is not None and first.shape else ""
        self._record(instruction, layer, phase, cost, moved, repeat, source, dtype)

    def _record(self, instruction, layer, phase, cost: Cost, moved: int, repeat: int, source: str,
                mac_dtype: str = "") -> None:  # fmt: skip
        """One OpCount: its bytes are those of the fused program (a fusion's
        inputs and outputs), which is also its compulsory traffic."""
        if not cost.flops and not moved:
            return
        self.ops.append(OpCount(instruction.name, instruction.opcode, layer, cost.flops * repeat, cost.macs * repeat,
                                source, cost.text, repeat, phase, moved * repeat, moved * repeat,
                                mac_dtype if cost.macs else "",
                                phase == BACKWARD and REMATTED in instruction.op_name))  # fmt: skip

    def _bytes(self, computation, name: str) -> int:
        operand = computation.by_name.get(name)
        return operand.bytes if operand is not None else 0

    def _shape(self, computation, name: str):
        operand = computation.by_name.get(name)
        return operand.shape[0].dims if operand is not None and operand.shape else None

    def _cost(self, computation, instruction: hlo.Instruction):
        """The instruction's Cost, or why it has none."""
        opcode = instruction.opcode
        shapes = [self._shape(computation, n) for n in instruction.operands]
        out = instruction.shape[0].dims if instruction.shape else ()
        if opcode == "dot":
            lhs = shapes[0]
            contracting = re.findall(r"\d+", instruction.attribute("lhs_contracting_dims") or "")
            k = math.prod(lhs[int(d)] for d in contracting) if lhs is not None else None
            if k is None:
                return "the dot's operand shape is not in the program"
            return compute.contraction(k, math.prod(out), "contracted")
        if opcode == "convolution":
            return _convolution(instruction, shapes, out)
        if opcode == "custom-call":
            return _custom_call(instruction, shapes, out)
        if opcode in ("reduce", "reduce-window"):
            n_in = sum(math.prod(s) for s in shapes[: len(shapes) // 2] if s is not None)
            if opcode == "reduce":
                return compute.reduction(n_in, instruction.elements)
            window = re.search(r"size=([\dx]+)", instruction.attribute("window") or "")
            size = math.prod(int(d) for d in window.group(1).split("x")) if window else 1
            return compute.window(size, instruction.elements, window.group(1) if window else "1")
        if opcode in ("scatter", "select-and-scatter"):
            return compute.scattered(math.prod(shapes[-1]) if shapes and shapes[-1] else 0)
        primitive = PRIMITIVES.get(opcode)
        if primitive is None:
            return f"no formula for HLO opcode {opcode}"
        if primitive in primitives.ZERO or primitive in primitives.VIEWS:
            return Cost(0, 0, "moves data")
        formula = primitives.FORMULAS.get(primitive)
        if formula is None:
            return f"no formula for HLO opcode {opcode} (JAX's {primitive})"
        spec = OpSpec(primitive, instruction.name, tuple(shapes), (out,), {})
        return apply(formula, spec, primitives.MAC_OPS)


# XLA's GPU backend writes a dot as a call of a library's matmul (its result a
# tuple of the product and a workspace), and a convolution as cuDNN's
GEMMS = ("__cublas$gemm", "__cublas$lt$matmul", "__cublas$lt$matmul$f8")
CONVOLUTIONS = ("__cudnn$convForward", "__cudnn$convBiasActivationForward")


def _custom_call(instruction: hlo.Instruction, shapes, out):
    """A library call XLA made of a dot or a convolution: priced as one;
    any other custom call has no formula (uncounted, and said)."""
    target = (instruction.attribute("custom_call_target") or "").strip('"')
    if target in GEMMS:
        found = re.search(r'"lhs_contracting_dimensions"\s*:\s*\[([^\]]*)\]', instruction.attributes)
        lhs = shapes[0] if shapes else None
        if found is None or lhs is None:
            return f"the matmul call {target} does not say its contracting dims"
        contracting = [int(d) for d in re.findall(r"\d+", found.group(1))]
        return compute.contraction(math.prod(lhs[d] for d in contracting), math.prod(out), "contracted")
    if target in CONVOLUTIONS:
        return _convolution(instruction, shapes, out)
    return f"no formula for the custom call {target or '(unnamed)'}"


def _convolution(instruction: hlo.Instruction, shapes, out) -> Cost:
    """n(out) x window x the kernel's input features (per group): its MACs."""
    labels = re.match(r"(\w+)_(\w+)->(\w+)", instruction.attribute("dim_labels") or "")
    window = re.search(r"size=([\dx]+)", instruction.attribute("window") or "")
    taps = [int(d) for d in window.group(1).split("x")] if window else [1]
    kernel = shapes[1]
    per = kernel[labels.group(2).index("i")] if labels and kernel is not None else 1
    return compute.convolution(math.prod(out), taps, per)


def _result_bytes(instruction: hlo.Instruction, kind: str) -> int:
    """The collective's result on one device (an async start's tuple holds
    its operand too: the last array is the result)."""
    if instruction.opcode.endswith("-start") and len(instruction.shape) > 1:
        return instruction.shape[-1].bytes
    return instruction.bytes
