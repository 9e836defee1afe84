"""Every Python example of the README and the site's pages runs, on the
backend its page names, and every number it quotes is checked.

A page's examples run in order, in one namespace, in a process of their own
(``python tests/test_guides.py PAGE``). A page names its environment in an
HTML comment, invisible once rendered: ``<!-- examples: KERAS_BACKEND=jax -->``
(TensorFlow otherwise). In a ```python block, a line whose comment begins
with a number or a Python literal says what the line's expression is, and is
checked: ``report.macs   # 3,857,973,248: forward multiply-accumulates``.
A block that begins with ``>>>`` is a doctest, its printed output checked.
In a ```console block, each ``$ command`` runs in a shell, and the lines
after it are its output, ``...`` matching anything (doctest's ELLIPSIS).
"""

import ast
import doctest
import os
import pathlib
import re
import subprocess
import sys
import tempfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = ["README.md", "docs/index.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").rglob("*.md"))]
PAGES = list(dict.fromkeys(PAGES))
BLOCK = re.compile(r"^```(python|console)\n(.*?)^```", re.S | re.M)
ENV = re.compile(r"<!-- examples: (.*?) -->")
QUOTED = re.compile(r"#\s*(.+)$")


def blocks(page: str):
    """(language, code) of each ```python and ```console block of a page."""
    return BLOCK.findall((ROOT / page).read_text())


def environment(page: str) -> dict:
    found = ENV.search((ROOT / page).read_text())
    pairs = dict(item.split("=", 1) for item in found.group(1).split()) if found else {}
    return {"KERAS_BACKEND": "tensorflow", **pairs}


def quoted_value(line: str):
    """What a line's comment says its expression is: a number (``3,857,973,248``
    then anything after a space or a colon) or a whole Python literal; else None."""
    comment = QUOTED.search(line)
    if not comment:
        return None
    text = comment.group(1).strip()
    number = re.match(r"(-?\d[\d,]*)(?=$|[\s:;])", text)
    if number:
        return int(number.group(1).replace(",", ""))
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None


def run_console(code: str, where: str) -> None:
    checker = doctest.OutputChecker()
    for session in re.split(r"^\$ ", code, flags=re.M)[1:]:
        command, _, want = session.partition("\n")
        done = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{where}: {command!r} exited {done.returncode}:\n{done.stderr[-3000:]}"
        flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
        assert checker.check_output(want, done.stdout, flags), f"{where}: {command!r} printed\n{done.stdout}"


def run_block(code: str, namespace: dict, where: str) -> None:
    if code.lstrip().startswith(">>>"):
        test = doctest.DocTestParser().get_doctest(code, namespace, where, where, 0)
        runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
        runner.run(test, clear_globs=False)
        assert runner.failures == 0, f"{where}: the doctest's output differs (above)"
        return
    lines = code.splitlines()
    for statement in ast.parse(code).body:
        source = "\n".join(lines[statement.lineno - 1: statement.end_lineno])
        expected = quoted_value(lines[statement.end_lineno - 1])
        if isinstance(statement, ast.Expr) and expected is not None:
            got = eval(compile(ast.Expression(statement.value), where, "eval"), namespace)
            assert got == expected, f"{where}, line {statement.lineno}: {source.strip()!r} is {got!r}, the page says {expected!r}"
        else:
            exec(compile(ast.Module([statement], []), where, "exec"), namespace)


def run_page(page: str) -> None:
    os.chdir(tempfile.mkdtemp(prefix="keras_flops_guide_"))  # what the examples write stays out of the tree
    namespace = {"__name__": "__guide__"}
    for i, (language, code) in enumerate(blocks(page), 1):
        if language == "console":
            run_console(code, f"{page}, example {i}")
        else:
            run_block(code, namespace, f"{page}, example {i}")
        print(f"{page}, example {i}: ran")


def test_every_page_with_examples_names_its_backend_or_runs_on_tensorflow():
    for page in PAGES:
        assert environment(page)["KERAS_BACKEND"] in ("tensorflow", "jax", "torch"), page


def test_the_quoted_values_are_read():
    assert quoted_value("report.macs   # 3,857,973,248: forward MACs") == 3857973248
    assert quoted_value("report.mesh  # {'batch': 1, 'model': 8}") == {"batch": 1, "model": 8}
    assert quoted_value("report.flops  # forward FLOPs") is None
    assert quoted_value("x = 1") is None
    assert quoted_value("gen.steps  # 512 tokens") == 512


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p)])
def test_the_examples_of(page):
    # the environment's own python3 and keras-flops first on the PATH of ```console examples
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    env = dict(os.environ, PATH=path, **environment(page))
    out = subprocess.run(
        [sys.executable, __file__, page], capture_output=True, text=True, timeout=900, env=env
    )
    assert out.returncode == 0, f"{page}:\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"


if __name__ == "__main__":
    run_page(sys.argv[1])
