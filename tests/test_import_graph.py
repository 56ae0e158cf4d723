"""The import graph of ddx runs one way (issue #12): no module imports one on a higher floor or a sibling
package of its floor, and no modules import each other, directly or around a circle.

Every ddx/**/*.py and kernels/**/*.py is parsed with ast; nothing is imported. Every import statement is
an arrow, wherever it stands: at the top, inside a function (a lazy import), under ``if TYPE_CHECKING``.
``from package import name`` is an arrow to the module ``package.name`` where there is one, else to the
package. A submodule's implicit import of its parent package is not counted (Python runs the parent's
__init__ first whatever the graph is), so only what the code names is an arrow.

Floors, from the bottom (a module may import its own floor's group and any floor below):

0  kernels          the Triton kernels and their reference (kernels/)
1  generic          ddx.utils, ddx.execution, ddx.ops, ddx.profiling, the checkpoint file I/O
                    (ddx.checkpoints.io, .state_dict, .run_config_file), the ddx package itself
2  nn               ddx.nn: where the models meet the kernels
3  models | diffusion | data            siblings: none imports another (diffusion knows no networks,
                                        models know no betas); diffusion does not import ddx.nn either
4  checkpoint formats                   ddx.checkpoints' format converters (identify, the official
                                        layouts): they may read models/ for key names, never train/sample/cli
5  train | sample | eval                siblings: none imports another
6  presets                              typed partial run configurations: data, but typed by the run
                                        configurations that train/ defines, so above them
7  cli                                  ddx.cli, the command lines over all of it
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ddx", "kernels")

_GENERIC = ("ddx", "ddx.utils", "ddx.execution", "ddx.ops", "ddx.profiling", "ddx.checkpoints",
            "ddx.checkpoints.io", "ddx.checkpoints.state_dict", "ddx.checkpoints.run_config_file")
# (module-name prefix, floor, group); the longest matching prefix wins.
FLOORS = [
    ("kernels", 0, "kernels"),
    *((name, 1, "generic") for name in _GENERIC),
    ("ddx.nn", 2, "nn"),
    ("ddx.models", 3, "models"),
    ("ddx.diffusion", 3, "diffusion"),
    ("ddx.data", 3, "data"),
    ("ddx.checkpoints.identify", 4, "checkpoint formats"),
    ("ddx.checkpoints.ddgan_official", 4, "checkpoint formats"),
    ("ddx.checkpoints.iddpm_official", 4, "checkpoint formats"),
    ("ddx.train", 5, "train"),
    ("ddx.sample", 5, "sample"),
    ("ddx.eval", 5, "eval"),
    ("ddx.presets", 6, "presets"),
    ("ddx.cli", 7, "cli"),
]
# Arrows the floors allow but the design does not: (importing group, imported group, why).
FORBIDDEN = [("diffusion", "nn", "diffusion knows nothing of networks")]


def module_files() -> dict[str, Path]:
    """{dotted module name: file} of every module of the packages (a package by its __init__.py)."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str, path: Path, known: set[str]) -> list[tuple[str, int]]:
    """[(imported ddx/kernels module, line)] of every import statement in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(module, path.name == "__init__.py", node)
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                found.append((submodule if submodule in known else target, node.lineno))
    return [(name, line) for name, line in found if name.split(".")[0] in PACKAGES]


def floor_of(module: str) -> tuple[int, str]:
    matches = [(len(prefix), floor, group) for prefix, floor, group in FLOORS
               if module == prefix or module.startswith(prefix + ".")]
    if not matches:
        raise AssertionError(f"{module} has no floor: add it to FLOORS in {Path(__file__).name}")
    return max(matches)[1:]


def import_graph() -> dict[str, dict[str, int]]:
    """{module: {imported module: first line}}, without self-imports."""
    files = module_files()
    known = set(files)
    graph: dict[str, dict[str, int]] = {}
    for module, path in files.items():
        edges = graph.setdefault(module, {})
        for target, line in imports_of(module, path, known):
            # `import ddx.x.y` names a module that exists, or a name inside one: keep the longest known prefix.
            while target not in known and "." in target:
                target = target.rsplit(".", 1)[0]
            if target != module and target in known:
                edges.setdefault(target, line)
    return graph


def _where(graph, files, source, target) -> str:
    return f"{files[source].relative_to(ROOT)}:{graph[source][target]}  {source} -> {target}"


def wrong_way_edges(graph: dict[str, dict[str, int]]) -> list[str]:
    files = module_files()
    wrong = []
    for source, targets in graph.items():
        floor, group = floor_of(source)
        for target in targets:
            target_floor, target_group = floor_of(target)
            if target_floor > floor:
                why = f"up from {group} (floor {floor}) to {target_group} (floor {target_floor})"
            elif target_floor == floor and target_group != group:
                why = f"across siblings {group} and {target_group}"
            else:
                why = next((reason for a, b, reason in FORBIDDEN if (a, b) == (group, target_group)), None)
                if why is None:
                    continue
            wrong.append(f"{_where(graph, files, source, target)}  ({why})")
    return sorted(wrong)


def circles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(node: str) -> None:
        # Iterative depth-first search: the graph is deep enough for Python's recursion limit to matter.
        work = [(node, iter(graph.get(node, ())))]
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        while work:
            current, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph.get(child, ()))))
                elif child in on_stack:
                    low[current] = min(low[current], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[current])
            if low[current] == index[current]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == current:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_every_module_has_a_floor():
    for module in module_files():
        floor_of(module)


def test_no_module_imports_upward_or_across_siblings():
    wrong = wrong_way_edges(import_graph())
    assert not wrong, f"{len(wrong)} import(s) run the wrong way:\n" + "\n".join(wrong)


def test_no_two_modules_import_each_other():
    graph = import_graph()
    files = module_files()
    found = circles(graph)
    lines = []
    for component in found:
        members = set(component)
        lines.append("circle: " + ", ".join(component))
        lines += [f"    {_where(graph, files, a, b)}" for a in component for b in graph[a] if b in members]
    assert not found, f"{len(found)} circle(s) of imports:\n" + "\n".join(lines)


def test_the_checker_sees_lazy_and_relative_imports(tmp_path):
    source = ("from . import b\nimport ddx.train.loop as loop\n\ndef f():\n"
              "    from ddx.cli import entry\n    from ddx.nn.fused import set_fused\n    from .. import models\n")
    path = tmp_path / "a.py"
    path.write_text(source)
    known = {"ddx.models", "ddx.models.b", "ddx.train.loop", "ddx.cli", "ddx.cli.entry", "ddx.nn.fused"}
    found = {name for name, _ in imports_of("ddx.models.a", path, known)}
    assert found == {"ddx.models", "ddx.models.b", "ddx.train.loop", "ddx.cli.entry", "ddx.nn.fused"}
    assert circles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}) == [["a", "b", "c"]]
