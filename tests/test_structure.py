"""The shape of the code base (#7), kept by the suite: no import cycle, no import hidden in a
function, routes independent of each other, the clock in one place, no bare status text.

These read the source with ``ast``: they need no database and fail with the offending lines.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from app.enums import BookingStatus

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("app", "workers")


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _tree(name: str) -> ast.Module:
    return ast.parse(MODULES[name].read_text(encoding="utf-8"), str(MODULES[name]))


def _imported(node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The project modules an import statement loads (``from app.services import audit``
    loads app.services.audit)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        names = [f"{base}.{a.name}" for a in node.names] + [base]
    for name in names:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name:
            yield name


def _top_level_imports(name: str) -> set[str]:
    deps: set[str] = set()
    for node in _tree(name).body:
        if isinstance(node, ast.If):  # `if TYPE_CHECKING:` imports run no code
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            deps.update(d for d in _imported(node) if d != name)
    return deps


def test_the_module_list_is_not_empty() -> None:
    assert "app.main" in MODULES and "workers.tasks" in MODULES and len(MODULES) > 40


def test_no_import_cycle() -> None:
    graph = {name: _top_level_imports(name) for name in MODULES}
    # A package's __init__ importing its own submodules is not a cycle worth reporting.
    for name, deps in graph.items():
        graph[name] = {d for d in deps if not d.startswith(name + ".")}
    state: dict[str, int] = {}  # 1 visiting, 2 done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append(path[path.index(dep) :] + [dep])
            elif dep not in state:
                visit(dep, path + [dep])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles:\n" + "\n".join(" → ".join(c) for c in cycles)


def test_no_import_inside_a_function() -> None:
    """A function-local import is how a cycle hides; none, except the child-process entry
    points that must import after fork."""
    allowed = {"app.services.certpdf_worker"}
    found = []
    for name in MODULES:
        if name in allowed:
            continue
        for node in ast.walk(_tree(name)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Import | ast.ImportFrom):
                        found.append(f"{MODULES[name]}:{inner.lineno} in {node.name}()")
    assert not found, "imports inside functions:\n" + "\n".join(found)


def test_no_route_imports_another_route() -> None:
    found = []
    for name in MODULES:
        if name.startswith("app.routes."):
            others = {
                d for d in _top_level_imports(name) if d.startswith("app.routes.") and d != name
            }
            found += [f"{name} imports {d}" for d in sorted(others)]
    assert not found, "\n".join(found)


def test_no_handler_catches_not_found() -> None:
    """NotFound becomes the 404 page in one place (app/web/errors.py)."""
    found = []
    for name in MODULES:
        if name.startswith("app.routes."):
            for node in ast.walk(_tree(name)):
                if isinstance(node, ast.ExceptHandler) and node.type is not None:
                    if "NotFound" in ast.unparse(node.type):
                        found.append(f"{MODULES[name]}:{node.lineno}")
    assert not found, "handlers catching NotFound:\n" + "\n".join(found)


def test_the_clock_is_read_in_one_place() -> None:
    """now()/today() come from app/clock.py (CLOCK_AT moves them all at once)."""
    pattern = re.compile(r"\b(datetime\.now|datetime\.utcnow|date\.today|time\.time)\(")
    found = []
    for name, path in MODULES.items():
        if name == "app.clock":
            continue
        for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                found.append(f"{path}:{no}: {line.strip()}")
    assert not found, "clock reads outside app/clock.py:\n" + "\n".join(found)


def _status_literals(tree: ast.Module) -> Iterator[ast.Constant]:
    """String constants where a status is compared or set: ``x == "…"``, ``x in ("…",)``,
    ``status="…"`` and ``{"status": "…"}``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for side in [node.left, *node.comparators]:
                yield from (c for c in ast.walk(side) if isinstance(c, ast.Constant))
        elif isinstance(node, ast.keyword) and node.arg and "status" in node.arg:
            yield from (c for c in ast.walk(node.value) if isinstance(c, ast.Constant))
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and "status" in str(key.value):
                    yield from (c for c in ast.walk(value) if isinstance(c, ast.Constant))


def test_no_bare_booking_status_outside_the_enum() -> None:
    """Booking states are compared and set as BookingStatus members, never as text."""
    values = {s.value for s in BookingStatus} | {s.label for s in BookingStatus}
    found = []
    for name in MODULES:
        if name == "app.enums":
            continue
        for const in _status_literals(_tree(name)):
            if const.value in values:
                found.append(f"{MODULES[name]}:{const.lineno}: {const.value!r}")
    assert not found, "bare booking states:\n" + "\n".join(found)
