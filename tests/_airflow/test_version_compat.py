"""The one home of the differences between Airflow releases: what it tells, and that nothing else tells it.

The rules about the package as a whole are read from its source, so nothing here depends on what a test
happened to import first. (That a DAG file's parse loads the home but none of its rooms: tests/test_imports.py.)
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import airflow
import pytest
from packaging.version import Version

import airflow_provider_alta
from airflow_provider_alta._airflow import version_compat

PACKAGE = Path(airflow_provider_alta.__file__).resolve().parent
HOME = PACKAGE / "_airflow" / "version_compat"


def sources() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text()) for path in sorted(PACKAGE.rglob("*.py"))}


def test_the_release_is_airflows_own():
    release = Version(airflow.__version__).release[:2]
    assert release == version_compat.AIRFLOW_CORE_RELEASE
    assert version_compat.AIRFLOW_V_3_1_PLUS is (version_compat.AIRFLOW_CORE_RELEASE >= (3, 1))


def test_moved_names_come_from_where_this_release_keeps_them():
    """The SDK's names where the release has them (3.2+), Airflow core's before."""
    found = importlib.util.find_spec("airflow.sdk.exceptions")
    sdk = importlib.import_module("airflow.sdk.exceptions") if found else None
    home = sdk if hasattr(sdk, "AirflowFailException") else importlib.import_module("airflow.exceptions")
    for name in ("AirflowFailException", "AirflowNotFoundException", "AirflowSensorTimeout", "AirflowSkipException"):
        assert getattr(version_compat, name) is getattr(home, name)
    assert version_compat.conf.get("core", "dags_folder")  # the configuration this process reads


def test_a_missing_connection_raises_what_the_hooks_catch():
    from airflow_provider_alta._airflow.version_compat.hook import BaseHook

    with pytest.raises(version_compat.AirflowNotFoundException):
        BaseHook.get_connection("alta_no_such_connection_anywhere")


def test_only_the_home_tells_the_release():
    """Outside ``version_compat``, no module reads Airflow's release or imports a name some release lacks."""
    told = [
        f"{path.relative_to(PACKAGE)}:{node.lineno} {what}"
        for path, tree in sources().items()
        if HOME not in path.parents
        for node in ast.walk(tree)
        for what in [_tells_the_release(node)]
        if what
    ]
    assert not told, "\n".join(told)


def _tells_the_release(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name) and (node.id.startswith("AIRFLOW_V_") or node.id == "AIRFLOW_CORE_RELEASE"):
        return f"reads {node.id}"
    if isinstance(node, ast.ImportFrom) and node.module == "airflow" and node.level == 0:
        return "imports from airflow itself (its version)"
    if isinstance(node, ast.Try) and _caught(node) & {"ImportError", "ModuleNotFoundError"} and _airflow_import(node):
        return "imports an Airflow name that some release lacks"
    return None


def test_each_way_of_telling_the_release_is_seen():
    """The rule above would see a module that tells the release in any of the ways it looks for."""
    told = [
        "if AIRFLOW_V_3_1_PLUS: pass",
        "from airflow import __version__",
        "try:\n    from airflow.sdk import BaseHook\nexcept ImportError:\n    BaseHook = None",
        "def f():\n    try:\n        import airflow.stats\n    except (ImportError, AttributeError):\n        pass",
    ]
    for source in told:
        assert any(_tells_the_release(node) for node in ast.walk(ast.parse(source))), source
    silent = "try:\n    import requests\nexcept ImportError:\n    pass\nfrom airflow.sdk import BaseOperator"
    assert not any(_tells_the_release(node) for node in ast.walk(ast.parse(silent)))


def _caught(node: ast.Try) -> set[str]:
    return {
        name.id
        for handler in node.handlers
        if handler.type is not None
        for name in ast.walk(handler.type)
        if isinstance(name, ast.Name)
    }


def _airflow_import(node: ast.Try) -> bool:
    modules: list[str] = []
    for child in (child for statement in node.body for child in ast.walk(statement)):
        if isinstance(child, ast.ImportFrom) and child.level == 0:
            modules.append(child.module or "")
        elif isinstance(child, ast.Import):
            modules += [alias.name for alias in child.names]
    return any(module == "airflow" or module.startswith("airflow.") for module in modules)


def test_no_difference_is_told_by_reading_airflows_source():
    """No module of the package reads source text (``inspect.getsource`` and friends) or an Airflow module's file."""
    readers = {"getsource", "getsourcelines", "getsourcefile", "getfile", "findsource"}
    found = [
        f"{path.relative_to(PACKAGE)}:{node.lineno}"
        for path, tree in sources().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and (node.attr in readers or _airflow_file(node))
    ]
    assert not found, found


def _airflow_file(node: ast.Attribute) -> bool:
    """``<name>.__file__`` where the name is an Airflow module (``airflow``, ``task_runner``, ...) rather than ours."""
    ours = isinstance(node.value, ast.Name) and node.value.id == "airflow_provider_alta"
    return node.attr == "__file__" and not ours
