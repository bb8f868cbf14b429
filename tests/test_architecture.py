"""The layout's rules, checked on the code itself: no import cycles, no arrow from the core to an
adapter, and a schema package that loads msgspec only."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ktrdr_lib", "api", "host", "web")
# The front doors: they may import the core, never the other way round.
ADAPTERS = ("api", "host", "web", "ktrdr_lib.cli", "ktrdr_lib.views")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            found[_module_name(path)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import that runs (module level or inside functions), skipping TYPE_CHECKING."""
    stack = [tree]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                stack.extend(child.orelse)
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child
            stack.append(child)


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The longest known module that ``name`` is or lies in."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph() -> dict[str, set[str]]:
    """Module → the project modules it imports at run time."""
    known = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in known.items():
        targets: set[str] = set()
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in _runtime_imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                names = [f"{base}.{alias.name}" for alias in node.names] + [base]
            for name in names:
                target = _resolve(name, known)
                if target is not None and target != module:
                    targets.add(target)
        graph[module] = targets
    return graph


def _is_adapter(module: str) -> bool:
    return any(module == a or module.startswith(a + ".") for a in ADAPTERS)


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    colour: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if colour.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in colour and (found := visit(nxt)):
                return found
        path.pop()
        colour[node] = 2
        return None

    for start in sorted(graph):
        if start not in colour and (found := visit(start)):
            return found
    return None


def test_the_graph_sees_lazy_imports() -> None:
    graph = import_graph()
    # runners.base imports the pipeline inside a function: the graph must still see it.
    assert "ktrdr_lib.pipeline.run" in graph["ktrdr_lib.runners.base"]


def test_there_is_no_import_cycle() -> None:
    assert _cycle(import_graph()) is None


def test_a_cycle_is_found_when_there_is_one() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_the_core_imports_no_adapter() -> None:
    arrows = [
        f"{module} -> {target}"
        for module, targets in import_graph().items()
        if not _is_adapter(module)
        for target in targets
        if _is_adapter(target)
    ]
    assert arrows == []


def test_schemas_load_msgspec_only() -> None:
    code = (
        "import sys\n"
        "import ktrdr_lib.schemas\n"
        "heavy = ('torch', 'lightning', 'numpy', 'pandas', 'yaml', 'httpx', 'litestar')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
