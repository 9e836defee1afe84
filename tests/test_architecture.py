"""The package's shape (docs/architecture.md): its import graph, read with
``ast`` from every import statement, those inside functions included, has no
cycle; frameworks are imported only inside their backend's folder (and by
keras_flops/_compat.py, the one home of private framework names, inside
functions only the backend calls); the core and the formulas import no
backend."""

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


COMPAT = "keras_flops._compat"


def framework_functions():
    """{function of _compat: the backend whose framework it imports, itself or
    through another function of _compat}."""
    defs = {n.name: n for n in ast.parse(MODULES[COMPAT].read_text()).body if isinstance(n, ast.FunctionDef)}
    found = {}
    for name, node in defs.items():
        for inner in ast.walk(node):
            names = ([a.name for a in inner.names] if isinstance(inner, ast.Import)
                     else [inner.module or ""] if isinstance(inner, ast.ImportFrom) else [])
            for imported in names:
                if imported.split(".")[0] in FRAMEWORKS:
                    found[name] = FRAMEWORKS[imported.split(".")[0]]
    changed = True
    while changed:  # callers of such functions import the framework too
        changed = False
        for name, node in defs.items():
            called = {c.func.id for c in ast.walk(node) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)}
            for callee in called & set(found):
                if name not in found:
                    found[name], changed = found[callee], True
    return found


def test_frameworks_are_imported_only_by_their_backend():
    offenders = []
    for name, path in MODULES.items():
        for line, target in imports(path):
            backend = FRAMEWORKS.get(target.split(".")[0])
            if backend and not name.startswith(f"keras_flops.backends.{backend}.") and name != COMPAT:
                offenders.append(f"{name}:{line} imports {target}")
    assert offenders == []


def test_compat_imports_frameworks_only_inside_functions_their_backend_calls():
    tree = ast.parse(MODULES[COMPAT].read_text())
    top_level = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert not any(FRAMEWORKS.get((getattr(n, "module", None) or n.names[0].name).split(".")[0])
                   for n in top_level)
    functions = framework_functions()
    assert {"tf_flops", "tf_flops_op_types", "quiet_tf_formulas", "freeze", "profiler_ops"} <= set(functions)
    assert {"torch_dispatch_mode", "current_autograd_node"} <= set(functions)
    offenders = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in functions and name != COMPAT:
                if not name.startswith(f"keras_flops.backends.{functions[node.attr]}."):
                    offenders.append(f"{name}:{node.lineno} calls _compat.{node.attr}")
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
