"""The package's shape (docs/architecture.md): its import graph, read with
``ast`` from every import statement, those inside functions included, has no
cycle, not even between folders; frameworks are imported only inside their
backend's folder, each backend's private names in its own compat module; the
core and the formulas import no backend; rendering imports nothing of the
core; no module reads another object's private fields."""

import ast
import pathlib

import keras_flops

PACKAGE = pathlib.Path(keras_flops.__file__).parent
# framework -> the backend folder that alone may import it
FRAMEWORKS = {"tensorflow": "tensorflow", "tf_keras": "tensorflow", "jax": "jax", "jaxlib": "jax", "torch": "torch"}


def module_name(path: pathlib.Path) -> str:
    parts = ("keras_flops",) + path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports(path: pathlib.Path):
    """``(line, imported name)`` for every import in a file; ``from a import b``
    gives ``a.b`` when that is a module of the package, else ``a``."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield node.lineno, full if full in MODULES else base


def graph():
    edges = {}
    for name, path in MODULES.items():
        edges[name] = sorted({target for _, target in imports(path) if target in MODULES and target != name})
    return edges


def test_the_import_graph_reaches_every_module():
    # the reader sees relative imports and "from package import module" (not a vacuous graph)
    edges = graph()
    assert "keras_flops.core.walk" in edges["keras_flops.backends.tensorflow.program"]
    assert "keras_flops.core.walk" in edges["keras_flops.backends.jax.program"]
    assert "keras_flops.backends" in edges["keras_flops.profiling"]
    assert len(MODULES) > 40


def test_no_import_cycle():
    edges = graph()
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for target in edges[node]:
            if state.get(target) == "open":
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target, stack + [target])
        state[node] = "done"

    for node in edges:
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_frameworks_are_imported_only_by_their_backend():
    offenders = []
    for name, path in MODULES.items():
        for line, target in imports(path):
            backend = FRAMEWORKS.get(target.split(".")[0])
            if backend and not name.startswith(f"keras_flops.backends.{backend}."):
                offenders.append(f"{name}:{line} imports {target}")
    assert offenders == []


def test_keras_private_names_reach_a_framework_only_through_its_backend():
    """keras_flops/_compat.py reads Keras's private names and imports no
    framework, not even Keras's modules for one backend
    (``keras.src.backend.torch``); a backend's compat module is imported
    only by that backend."""
    keras_compat = MODULES["keras_flops._compat"].read_text()
    assert "keras.src.backend.torch" not in keras_compat and "keras.src.backend.jax" not in keras_compat
    assert "keras.src.backend.tensorflow" not in keras_compat
    offenders = []
    for name, path in MODULES.items():
        for line, target in imports(path):
            if target.startswith("keras_flops.backends.") and target.endswith("._compat"):
                backend = target.split(".")[2]
                if not name.startswith(f"keras_flops.backends.{backend}."):
                    offenders.append(f"{name}:{line} imports {target}")
    assert offenders == []
    for backend in ("tensorflow", "jax", "torch"):
        assert f"keras_flops.backends.{backend}._compat" in MODULES


def folder(module: str) -> str:
    """A module's folder below the package: "core", "render", "backends.jax";
    the package's own modules are their own folder."""
    parts = module.split(".")
    if module in MODULES and MODULES[module].name == "__init__.py":
        return ".".join(parts[1:]) or "keras_flops"
    if len(parts) > 2:
        return ".".join(parts[1:-1])
    return parts[-1]


def test_no_import_cycle_between_folders():
    edges = {}
    for name, targets in graph().items():
        for target in targets:
            a, b = folder(name), folder(target)
            if a != b:
                edges.setdefault(a, set()).add(b)
    cycles = [(a, b) for a, targets in edges.items() for b in targets if a in edges.get(b, ())]
    assert cycles == []
    assert "render" in edges["core"]  # the core's report renders through render, one way


def test_render_imports_nothing_of_the_core():
    offenders = [f"{name} imports {target}" for name, targets in graph().items()
                 if name.startswith("keras_flops.render") for target in targets
                 if target.startswith("keras_flops.core")]
    assert offenders == []


# NamedTuple's public methods, which start with "_" so as not to clash with fields
NAMED_TUPLE = {"_replace", "_asdict", "_fields", "_make"}


def test_no_module_reads_another_objects_private_fields():
    """``recorder._pending`` read from outside its class, say: a private
    attribute of anything but ``self`` or ``cls``, outside the compat modules
    (whose task it is to read private names)."""
    offenders = []
    for name, path in MODULES.items():
        if name.endswith("._compat"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and node.attr not in NAMED_TUPLE
                    and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
                offenders.append(f"{name}:{node.lineno} reads {ast.unparse(node)}")
    assert offenders == []


def test_the_core_and_the_formulas_import_no_backend_and_no_entry_point():
    entry_points = ("keras_flops.profiling", "keras_flops.generation", "keras_flops.sweeps",
                    "keras_flops.model_summary", "keras_flops.cli", "keras_flops.callback", "keras_flops.backends")
    offenders = [
        f"{name} imports {target}"
        for name, targets in graph().items() if name.startswith(("keras_flops.core", "keras_flops.formulas"))
        for target in targets if target.startswith(entry_points)
    ]
    assert offenders == []


def test_backends_do_not_import_each_other():
    offenders = [
        f"{name} imports {target}"
        for name, targets in graph().items() if name.startswith("keras_flops.backends.")
        for target in targets if target.startswith("keras_flops.backends.")
        and target.split(".")[2] != name.split(".")[2] and target != "keras_flops.backends.protocol"
    ]
    assert offenders == []
