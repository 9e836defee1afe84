"""XLA's compiled program, read from its HLO text (``Compiled.as_text()``).

After SPMD partitioning, the HLO module of a jitted function is what each
device runs: its shapes are a device's shards, and the collectives XLA
inserted (all-reduce, all-gather, reduce-scatter, all-to-all,
collective-permute) are explicit instructions. This module parses that text
into computations and instructions; :mod:`.partition` prices them.

The text format is XLA's HloModule::ToString: each computation a header
``%name (params) -> shape {`` (``ENTRY`` for the entry), one instruction a
line ``%name = shape opcode(operands), attribute=value, ...``, ``}`` to
close. Only the opcode, the shape, the operand names and a few attributes
are read.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Dict, List, Optional, Tuple

# bytes per element of XLA's primitive types (sub-byte types packed)
DTYPE_BYTES = {
    "pred": 1, "s2": 0.25, "u2": 0.25, "s4": 0.5, "u4": 0.5, "s8": 1, "u8": 1, "s16": 2, "u16": 2,
    "s32": 4, "u32": 4, "s64": 8, "u64": 8, "f16": 2, "bf16": 2, "f32": 4, "f64": 8, "c64": 8, "c128": 16,
    "f8e4m3fn": 1, "f8e5m2": 1, "f8e4m3fnuz": 1, "f8e5m2fnuz": 1, "f8e4m3b11fnuz": 1, "f8e4m3": 1,
    "f8e3m4": 1, "f4e2m1fn": 0.5, "f8e8m0fnu": 1, "token": 0,
}  # fmt: skip

_ARRAY = re.compile(r"([a-z]\w*)\[([\d,]*)\]")
_HEADER = re.compile(r"^(ENTRY\s+)?%([\w.\-]+)\s*\(.*\)\s*->\s*.*\{\s*$")
_INSTRUCTION = re.compile(
    r"^\s*(?:ROOT\s+)?%([\w.\-]+)\s*=\s*(\(.*?\)|[a-z]\w*\[[\d,]*\](?:\{[^}]*\})?)\s+([\w\-]+)\((.*)$"
)


@dataclasses.dataclass(frozen=True)
class Array:
    """One array of a shape: its element type and dims."""

    dtype: str
    dims: Tuple[int, ...]

    @property
    def size(self) -> int:
        return math.prod(self.dims)

    @property
    def bytes(self) -> int:
        return math.ceil(self.size * DTYPE_BYTES.get(self.dtype, 0))


@dataclasses.dataclass(frozen=True)
class Instruction:
    """One HLO instruction: its name, result arrays (several for a tuple),
    opcode, operand names, attributes text and metadata ``op_name``."""

    name: str
    shape: Tuple[Array, ...]
    opcode: str
    operands: Tuple[str, ...]
    attributes: str
    op_name: str

    @property
    def elements(self) -> int:
        return sum(a.size for a in self.shape)

    @property
    def bytes(self) -> int:
        return sum(a.bytes for a in self.shape)

    def attribute(self, name: str) -> Optional[str]:
        """The text of ``name=...`` up to the next top-level comma, or None."""
        start = re.search(rf"(?:^|[\s,]){re.escape(name)}=", self.attributes)
        if start is None:
            return None
        text, depth, out = self.attributes[start.end() :], 0, []
        for ch in text:
            if ch in "{[(":
                depth += 1
            elif ch in "}])":
                if depth == 0:
                    break
                depth -= 1
            elif ch == "," and depth == 0:
                break
            out.append(ch)
        return "".join(out).strip()

    def called(self, name: str) -> List[str]:
        """The computations an attribute names (``calls=%f``, ``body=%b``,
        ``branch_computations={%a, %b}``)."""
        value = self.attribute(name)
        return re.findall(r"%([\w.\-]+)", value) if value else []


@dataclasses.dataclass
class Computation:
    name: str
    instructions: List[Instruction]
    by_name: Dict[str, Instruction]


@dataclasses.dataclass
class Module:
    """An HLO module: its computations by name, and the entry's name."""

    computations: Dict[str, Computation]
    entry: str


def parse_shape(text: str) -> Tuple[Array, ...]:
    """``f32[2,16]{1,0}`` or a tuple ``(f32[2], s32[])`` as arrays."""
    return tuple(
        Array(dtype, tuple(int(d) for d in dims.split(",") if d)) for dtype, dims in _ARRAY.findall(text)
    )


def parse(text: str) -> Module:
    """The computations of an HLO module's text."""
    computations: Dict[str, Computation] = {}
    entry, current = None, None
    for line in text.splitlines():
        header = _HEADER.match(line)
        if header:
            current = Computation(header.group(2), [], {})
            computations[current.name] = current
            if header.group(1):
                entry = current.name
            continue
        if current is None:
            continue
        if line.strip() == "}":
            current = None
            continue
        found = _INSTRUCTION.match(line)
        if found is None:
            continue
        name, shape, opcode, rest = found.groups()
        operands, attributes = _split_operands(rest)
        op_name = re.search(r'op_name="([^"]*)"', attributes)
        instruction = Instruction(
            name,
            parse_shape(shape),
            opcode,
            tuple(re.findall(r"%([\w.\-]+)", operands)),
            attributes,
            op_name.group(1) if op_name else "",
        )
        current.instructions.append(instruction)
        current.by_name[name] = instruction
    if entry is None:
        raise ValueError("the HLO text has no ENTRY computation")
    return Module(computations, entry)


def _split_operands(rest: str) -> Tuple[str, str]:
    """``"a, b), attr=..."`` into the operands' text and the attributes' text."""
    depth = 0
    for i, ch in enumerate(rest):
        if ch in "({[":
            depth += 1
        elif ch in ")}]":
            if depth == 0:
                return rest[:i], rest[i + 1 :].lstrip(", ")
            depth -= 1
    return rest, ""


def group_size(instruction: Instruction, devices: int) -> int:
    """How many devices take part in each group of a collective, from its
    ``replica_groups`` in any of XLA's three forms (explicit lists, the iota
    form ``[groups,size]<=[n]``, the mesh form ``mesh[...] {'axis'}``; none
    or ``{}``: all ``devices``), or for a collective-permute, the devices its
    pairs name."""
    pairs = instruction.attribute("source_target_pairs")
    if pairs is not None:
        return len({int(d) for d in re.findall(r"\d+", pairs)})
    groups = instruction.attribute("replica_groups")
    if not groups or groups == "{}":
        return devices
    mesh = re.search(r"replica_groups=mesh\[([^\]]*)\][^{]*\{([^}]*)\}", instruction.attributes)
    if mesh:
        sizes = {axis: int(n) for axis, n in re.findall(r"'([^']+)'=(\d+)", mesh.group(1))}
        return math.prod(sizes[axis] for axis in re.findall(r"'([^']+)'", mesh.group(2)))
    iota = re.match(r"\[(\d+),(\d+)\]<=", groups)
    if iota:
        return int(iota.group(2))
    first = re.search(r"\{([\d,\s]*)\}", groups[1:] if groups.startswith("{{") else groups)
    return len([d for d in first.group(1).split(",") if d.strip()]) if first else devices
