"""A batch's datasets for OpenLineage: the input file it read (when it read one) and the folder it wrote.

Named as the OpenLineage naming spec names file system datasets: ``file`` and the absolute path on a local
disk; ``<scheme>://<bucket>`` and the path within it on object storage. Nothing is imported from OpenLineage
until its listener asks, in the worker that ran the task.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit


def dataset_name(uri: str) -> tuple[str, str]:
    """``(namespace, name)`` of the file or folder at ``uri``."""
    parts = urlsplit(uri)
    if parts.scheme in ("", "file", "local"):
        return "file", parts.path or uri
    return f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/")


def batch_lineage(input_uri: str | None, output_uri: str | None) -> Any:
    """An ``OperatorLineage`` with the batch's input and output datasets (empty before the task ran)."""
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.event_v2 import Dataset

    def datasets(uri: str | None) -> list[Any]:
        return [Dataset(*dataset_name(uri))] if uri else []

    return OperatorLineage(inputs=datasets(input_uri), outputs=datasets(output_uri))
