"""The package's layout keeps its shape: layers that only import downwards, no cycles, an Airflow-free core.

Read from the source (every import, at the top of a module or inside a function), so nothing here depends on
what a test happened to import first. The layers, from the bottom:

0. ``exceptions``, ``models``: the errors and the run, imported by everything;
1. ``_core``: the Airflow-free core (protocol, polling, waiting, rate limits, request retries, argument checks,
   JSON limits, the connection's settings, the finish plan, the batch's state machine);
2. ``_airflow``, ``_webhook``, ``_transport`` and ``_batch``: the Airflow plumbing (the ``version_compat`` package of
   release differences, the ``internals`` used on every release, the run-id store, fail-fast, finishing), the
   webhook feature, the wire (the HTTP clients, no Airflow) and the batch engine's I/O;
3. the public faces: ``hooks``, ``operators``, ``sensors``, ``triggers``, ``decorators``, ``links``, ``plugins``,
   ``testing``, ``failures``, ``templated``, ``get_provider_info``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import airflow_provider_alta

#: The package as installed (the version matrix tests the built wheel, not the checkout).
PACKAGE = Path(airflow_provider_alta.__file__).resolve().parent
NAME = "airflow_provider_alta"
BASE = {f"{NAME}.exceptions", f"{NAME}.models", NAME}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of its code."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
GRAPH = {
    name: {imported for imported in imports_of(path) if imported in MODULES and imported != name}
    for name, path in MODULES.items()
}


def layer(name: str) -> int:
    if name in BASE:
        return 0
    if name.startswith(f"{NAME}._core"):
        return 1
    if name.startswith((f"{NAME}._airflow", f"{NAME}._webhook", f"{NAME}._transport", f"{NAME}._batch")):
        return 2
    return 3


def test_the_core_imports_nothing_from_airflow():
    core = {name: path for name, path in MODULES.items() if layer(name) <= 1}
    assert len(core) >= 10
    for name, path in core.items():
        airflow = sorted(i for i in imports_of(path) if i == "airflow" or i.startswith("airflow."))
        assert not airflow, f"{name} imports {airflow}"


def test_the_wire_imports_nothing_from_airflow():
    wire = {name: path for name, path in MODULES.items() if name.startswith(f"{NAME}._transport")}
    assert len(wire) >= 4
    for name, path in wire.items():
        airflow = sorted(i for i in imports_of(path) if i == "airflow" or i.startswith("airflow."))
        assert not airflow, f"{name} imports {airflow}"


def test_imports_only_go_down_the_layers():
    upward = [
        f"{name} (layer {layer(name)}) imports {imported} (layer {layer(imported)})"
        for name, imported_set in GRAPH.items()
        for imported in imported_set
        if layer(imported) > layer(name)
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    """Tarjan's strongly connected components over the package's imports: each must be one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in GRAPH[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in GRAPH:
        if node not in index:
            visit(node)
    assert not cycles, cycles


def test_the_root_holds_the_public_faces_only():
    plain = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(plain) <= 6, plain
    packages = sorted(path.name for path in PACKAGE.iterdir() if (path / "__init__.py").exists())
    public = {"hooks", "operators", "sensors", "triggers", "decorators", "links", "plugins", "testing", "schemas"}
    assert set(packages) - public == {"_core", "_airflow", "_webhook", "_transport", "_batch"}, packages


#: The most lines a module of the package may have: past it, a module holds more than one job.
MODULE_LINES = 450
#: The most a public face (an operator, a hook, a trigger) may have: the conductor, with its rooms elsewhere.
FACE_LINES = 400


def test_no_module_outgrows_one_job():
    sizes = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    assert len(sizes) >= 60
    assert not {name: n for name, n in sizes.items() if n > MODULE_LINES}
    faces = {f"{NAME}.operators.alta", f"{NAME}.hooks.alta", f"{NAME}.triggers.alta", f"{NAME}.sensors.alta"}
    faces |= {f"{NAME}.operators.batch"}
    assert not {name: sizes[name] for name in faces if sizes[name] > FACE_LINES}
