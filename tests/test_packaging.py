"""What an index and a user's tooling read of the package: its license and metadata, and ``make dist``'s checks."""

from __future__ import annotations

import importlib.util
import io
import sys
import tarfile
import zipfile
from importlib import metadata
from pathlib import Path
from types import ModuleType

from packaging.specifiers import SpecifierSet
from packaging.version import Version

DIST = "airflow-provider-alta"
ROOT = Path(__file__).parent.parent
#: The newest minor release a classifier may name without being tested on it.
NEWEST_PYTHON = 12


def test_the_license_is_declared_and_shipped():
    info = metadata.metadata(DIST)
    assert info["License-Expression"] == "Apache-2.0"
    assert info.get_all("License-File") == ["LICENSE"]
    text = metadata.distribution(DIST).read_text("licenses/LICENSE")
    assert text is not None, "the installed distribution holds no licenses/LICENSE"
    assert text.split()[:5] == ["Apache", "License", "Version", "2.0,", "January"]
    assert "END OF TERMS AND CONDITIONS" in text


def test_authors_and_maintainers_are_named():
    info = metadata.metadata(DIST)
    assert info["Author"] or info["Author-email"]
    assert info["Maintainer"] or info["Maintainer-email"]


def test_python_classifiers_cover_requires_python():
    """Every minor version pip would install the package on is listed, and only versions it allows."""
    allowed = SpecifierSet(metadata.metadata(DIST)["Requires-Python"])
    listed = _claimed_minors()
    supported = [minor for minor in range(0, NEWEST_PYTHON + 1) if Version(f"3.{minor}") in allowed]
    assert listed == supported
    assert sys.version_info.minor in listed


def test_the_matrix_tests_the_oldest_and_newest_python_claimed():
    matrix = _script("matrix")
    listed = _claimed_minors()
    assert [release.python for release in matrix.PYTHONS] == [f"3.{listed[0]}", f"3.{listed[-1]}"]


def _claimed_minors() -> list[int]:
    """The Python 3 minor versions the package's classifiers claim, in order."""
    prefix = "Programming Language :: Python :: 3."
    classifiers = metadata.metadata(DIST).get_all("Classifier") or []
    return sorted(int(c.removeprefix(prefix)) for c in classifiers if c.startswith(prefix))


def _script(name: str) -> ModuleType:
    """``scripts/<name>.py`` as a module (registered first: dataclasses look their module up)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _check_dist() -> ModuleType:
    return _script("check_dist")


def _wheel(folder: Path, *, license_file: bool) -> Path:
    """A wheel holding what check_dist requires, with or without its license."""
    check = _check_dist()
    info = "airflow_provider_alta-0.1.0.dist-info"
    path = folder / "airflow_provider_alta-0.1.0-py3-none-any.whl"
    entry_points = "".join(f"[{group}]\n{name} = x:y\n" for group, name in check.ENTRY_POINTS.items())
    with zipfile.ZipFile(path, "w") as wheel:
        for name in check.WHEEL_FILES:
            wheel.writestr(name, "")
        wheel.writestr(f"{info}/entry_points.txt", entry_points)
        wheel.writestr(f"{info}/METADATA", "Name: airflow-provider-alta\n" + ("License-File: LICENSE\n" * license_file))
        if license_file:
            wheel.writestr(f"{info}/licenses/LICENSE", "Apache License")
    return path


def _sdist(folder: Path, *, license_file: bool) -> Path:
    path = folder / "airflow_provider_alta-0.1.0.tar.gz"
    with tarfile.open(path, "w:gz") as sdist:
        for name in _check_dist().SDIST_FILES:
            if name != "LICENSE" or license_file:
                sdist.addfile(tarfile.TarInfo(f"airflow_provider_alta-0.1.0/{name}"), io.BytesIO(b""))
    return path


def test_check_dist_fails_without_the_license(tmp_path):
    check = _check_dist()
    wheel, sdist = _wheel(tmp_path, license_file=False), _sdist(tmp_path, license_file=False)
    assert check.check_wheel(wheel) == [
        f"{wheel.name}: missing airflow_provider_alta-0.1.0.dist-info/licenses/LICENSE",
        f"{wheel.name}: METADATA names no License-File: LICENSE",
    ]
    assert check.check_sdist(sdist) == [f"{sdist.name}: missing LICENSE"]
    assert check.main(str(tmp_path)) == 1


def test_check_dist_passes_with_the_license(tmp_path):
    check = _check_dist()
    assert check.check_wheel(_wheel(tmp_path, license_file=True)) == []
    assert check.check_sdist(_sdist(tmp_path, license_file=True)) == []
    assert check.main(str(tmp_path)) == 0
