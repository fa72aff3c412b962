"""core/ reads bottom-up in layers (ARCHITECTURE.md "Code map"): no import points up a layer, no
import cycle among its modules, nothing of the doors (CLI, HTTP, MCP) or of the terminal libraries
they use, and no import hidden in a string.

The graph is read from the source with ``ast``, every import counted: module level and inside
functions alike (an import inside a function is still a dependency; it only runs later).
"""

from __future__ import annotations

import ast
from pathlib import Path

import gemini_flow_cli

PACKAGE = Path(gemini_flow_cli.__file__).parent
CORE = "gemini_flow_cli.core"
# The doors and what only they may use: core must work without any of them.
DOORS = ("gemini_flow_cli.cli", "gemini_flow_cli.server", "gemini_flow_cli.mcp", "gemini_flow_cli.output",
         "typer", "click", "rich")


# ARCHITECTURE.md "Code map": each module's layer, bottom up. A module imports only from its own
# layer or below. (A module not listed yet is held only to the cycle and door tests.)
LAYERS = {
    1: "storage storage.dialect storage.postgres db migrations writelock trust waiting changes clock ids jsontext "
       "durations digests listing events entries leftovers conditions agent_types arguments",
    2: "config audit",
    3: "memory search fts crypto keys config_writes agents swarms sessions tasks consensus workflows neural "
       "metrics hooks apikeys",
    4: "transfer backup autobackup api",
    5: "invocation pool",
}
LAYER = {f"{CORE}.{name}": layer for layer, names in LAYERS.items() for name in names.split()} | {CORE: 1}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str) -> set[str]:
    """Every module ``path`` imports, anywhere in it, as absolute dotted names.

    ``from P import n`` counts as importing ``P.n`` (a submodule, when it is one; else the name
    is filtered out against the known modules by the caller) and ``P``.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x, from .memory import y
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _core_graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(core module -> the core modules it imports, core module -> everything it imports)."""
    everything = {}
    for path in sorted((PACKAGE / "core").rglob("*.py")):
        name = _module_name(path)
        everything[name] = _imports(path, name)
    graph = {name: {m for m in imported if m in everything and m != name} for name, imported in everything.items()}
    return graph, everything


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _describe(graph: dict[str, set[str]], component: list[str]) -> str:
    short = [m.removeprefix(CORE + ".") for m in component]
    edges = sorted(f"{a.removeprefix(CORE + '.')} -> {b.removeprefix(CORE + '.')}"
                   for a in component for b in graph[a] if b in component)
    return f"{', '.join(short)} (edges: {'; '.join(edges)})"


def test_the_graph_sees_core_and_its_imports():
    graph, _ = _core_graph()
    assert f"{CORE}.memory" in graph and f"{CORE}.db" in graph[f"{CORE}.memory"]
    assert f"{CORE}.config" in graph[f"{CORE}.audit"]  # a function-level import counts


def test_core_modules_import_each_other_without_a_cycle():
    graph, _ = _core_graph()
    cycles = _cycles(graph)
    assert not cycles, "import cycles in core/: " + " | ".join(_describe(graph, c) for c in cycles)


def test_core_modules_import_only_from_their_layer_or_below():
    graph, _ = _core_graph()
    assert set(LAYER) <= set(graph), sorted(set(LAYER) - set(graph))  # the map names real modules
    upward = sorted(
        f"{a.removeprefix(CORE + '.')} (layer {LAYER[a]}) imports {b.removeprefix(CORE + '.')} (layer {LAYER[b]})"
        for a in graph if a in LAYER
        for b in graph[a] if b in LAYER and LAYER[b] > LAYER[a]
    )
    assert not upward, upward


def test_core_imports_no_door():
    _, everything = _core_graph()
    offending = sorted(
        f"{name.removeprefix(CORE + '.')} imports {imported}"
        for name, modules in everything.items()
        for imported in modules
        if any(imported == door or imported.startswith(door + ".") for door in DOORS)
    )
    assert not offending, offending


# An import written as a string (importlib.import_module("gemini_flow_cli.core.x")) is an edge all
# the same, which the tests above cannot see: each must be listed here with why it is not a
# plain import. The one today: db.py opens a postgresql:// URL with the backend, whose Database
# subclasses db's, so a plain import would show the cycle db <-> storage.postgres that this one hides.
STRING_IMPORTS = {
    ("gemini_flow_cli.core.db", "gemini_flow_cli.core.storage.postgres"):
        "Database.open(URL) looks the PostgreSQL backend up by name (it builds on db.Database)",
}


def _string_imports() -> set[tuple[str, str]]:
    found = set()
    for path in sorted((PACKAGE / "core").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
            if (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)
                    and ((isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                         or (isinstance(node.func, ast.Name) and node.func.id in ("import_module", "__import__")))):
                found.add((_module_name(path), node.args[0].value))
    return found


def test_core_hides_no_import_behind_a_string():
    unlisted = sorted(f"{a} imports {b} by name" for a, b in _string_imports() - set(STRING_IMPORTS))
    assert not unlisted, unlisted + ["write a plain import (and keep the layers), or list it in STRING_IMPORTS"]


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _describe(graph, ["a", "b", "c"]) == "a, b, c (edges: a -> b; b -> c; c -> a)"
