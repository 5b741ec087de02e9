"""The package's shape, read from its source: imports flow one way (no cycle; nothing below the
command line imports it), a small root, files and functions of a readable size."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "depth_lightning"
# The command line's own package and the entry points above it (thin shims that call it).
COMMAND_LINE = {"cli", "train", "evaluate", "predict", "export", "demo", "report", "compare",
                "compare_edges"}
# What the plug-in families and shared basics may not know about.
LOWER = ("core", "nets", "losses", "data", "evaluation.metrics", "geometry", "errors")
UPPER = ("cli", "training", "inference", "reporting", "models")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imported(tree: ast.AST, known: set[str]) -> set[str]:
    """The package's modules `tree` imports, anywhere in it (functions included), but for
    imports under `if TYPE_CHECKING:`."""
    out: set[str] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if _type_checking_only(node):
            continue
        stack.extend(ast.iter_child_nodes(node))
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                full = f"{node.module}.{a.name}"
                out.add(full if full in known else node.module)
    return {m for m in out if m in known}


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imported(ast.parse(path.read_text()), known) - {name}
            for name, path in mods.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph` (depth-first search), else None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def within(module: str, area: str) -> bool:
    name = f"depth_lightning.{area}"
    return module == name or module.startswith(name + ".")


def test_the_cycle_finder_finds_a_cycle_and_passes_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_sees_imports_inside_functions_but_not_type_checking_ones():
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import a.x\n"
                     "def f():\n    from a import y\n    import a.z\n")
    assert imported(tree, {"a", "a.x", "a.y", "a.z"}) == {"a.y", "a.z"}


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def test_nothing_below_the_command_line_imports_it():
    wrong = [(m, d) for m, deps in import_graph().items()
             if not any(within(m, c) for c in COMMAND_LINE)
             for d in deps if within(d, "cli")]
    assert wrong == []


def test_plug_in_families_and_basics_know_nothing_of_the_layers_above():
    wrong = [(m, d) for m, deps in import_graph().items() if any(within(m, lo) for lo in LOWER)
             for d in deps if any(within(d, up) for up in UPPER)]
    assert wrong == []


def test_a_small_root_of_thin_entry_points():
    root = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert len(root) <= 14, root
    shims = [p for p in PACKAGE.glob("*.py") if p.stem in COMMAND_LINE]
    assert len(shims) == 8 and all(len(p.read_text().splitlines()) <= 30 for p in shims)


def test_files_and_functions_fit_on_a_few_screens():
    long_files, long_functions = [], []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        if len(text.splitlines()) > 400:
            long_files.append(path.name)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and \
                    node.end_lineno - node.lineno + 1 > 60:
                long_functions.append(f"{module_name(path)}.{node.name}")
    assert long_files == [] and long_functions == []
