"""Where a batch reads and writes: an ``ObjectStoragePath`` or a URI, as an fsspec file system and a path.

Airflow's object storage (``ObjectStoragePath``) knows the schemes its providers register (``file``, ``s3``,
``gs``, ...), with their connections. A URI whose scheme Airflow does not register but fsspec knows (``memory://``
in tests, say) is opened with fsspec directly.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

from airflow_provider_alta.exceptions import AltaValidationError


@dataclass(frozen=True)
class Location:
    """A file or folder on some file system: ``path`` as that file system names it, ``uri`` as people do."""

    fs: Any  # an fsspec ``AbstractFileSystem``
    path: str

    @property
    def uri(self) -> str:
        uri: str = self.fs.unstrip_protocol(self.path)
        return uri

    @property
    def local(self) -> bool:
        """On this machine's disk: appends are cheap, and the state survives only this machine."""
        protocol = self.fs.protocol
        return "file" in (protocol if isinstance(protocol, (tuple, list)) else (protocol,))

    def child(self, *parts: str) -> Location:
        return Location(self.fs, posixpath.join(self.path, *parts))

    def exists(self) -> bool:
        return bool(self.fs.exists(self.path))

    def files(self, suffix: str) -> list[Location]:
        """The files right in this folder whose names end with ``suffix``, sorted by name."""
        if not self.fs.exists(self.path):
            return []
        names = sorted(str(p) for p in self.fs.ls(self.path, detail=False) if str(p).endswith(suffix))
        return [Location(self.fs, self.fs._strip_protocol(name)) for name in names]


def resolve(value: Any, field: str) -> Location:
    """The :class:`Location` of an ``ObjectStoragePath`` or a path or URI string."""
    if not isinstance(value, str):
        return Location(value.fs, value.path)
    text = value.strip()
    from airflow.sdk import ObjectStoragePath

    try:
        path = ObjectStoragePath(text)
        return Location(path.fs, path.path)
    except ValueError:
        pass  # a scheme Airflow registers no file system for
    import fsspec

    scheme = text.split("://", 1)[0]
    try:
        fs = fsspec.filesystem(scheme)
    except (ValueError, ImportError) as err:
        raise AltaValidationError(
            f"{field} {text!r}: no file system is known for {scheme}:// ({err}); install the provider or fsspec "
            "package that serves it"
        ) from None
    return Location(fs, fs._strip_protocol(text))
