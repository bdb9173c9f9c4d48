"""The OpenLineage run facet of an Alta run, for the OpenLineage provider's operator hooks.

The OpenLineage listener (``apache-airflow-providers-openlineage``) calls
``get_openlineage_facets_on_complete`` / ``_on_failure`` on the task when it
ends, in the worker that ran it. This module imports nothing from OpenLineage
at import time (DAG files import the operator on every parse): the facet class
is defined the first time a facet is built, so a deployment without the
OpenLineage provider never loads it.

The facet names the run and what it cost; never an input, an output, a key or
a header.

Its ``_schemaURL`` points, as the OpenLineage spec asks of a custom facet, at
the JSON schema of the facet: ``schemas/alta_run_facet.json``, shipped in the
package and read at this release's tag in the project's repository, with the
``#/$defs/AltaRunFacet`` pointer to the facet's definition.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from airflow_provider_alta import __version__

if TYPE_CHECKING:
    from airflow_provider_alta.models import WorkflowRun

#: The key of the facet in the event's ``run.facets``.
FACET_NAME = "alta_run"
#: The facet's JSON schema, inside the package.
SCHEMA_FILE = "airflow_provider_alta/schemas/alta_run_facet.json"
#: The facet's definition in that schema.
SCHEMA_DEF = "AltaRunFacet"
#: The facet's schema, as this release ships it: the file at the release's tag in the project's repository.
SCHEMA_URL = (
    f"https://raw.githubusercontent.com/altatech-ai/airflow-provider-alta/v{__version__}/{SCHEMA_FILE}"
    f"#/$defs/{SCHEMA_DEF}"
)


@functools.cache
def run_facet_class() -> type:
    """``AltaRunFacet``: an attrs class deriving from the OpenLineage client's ``RunFacet`` (built once)."""
    import attrs
    from openlineage.client.facet_v2 import RunFacet

    @attrs.define(kw_only=True)
    class AltaRunFacet(RunFacet):
        """One Alta workflow run: which workflow, which run, how it ended and what it cost (camelCase, as
        OpenLineage facets and Alta name their fields)."""

        workflowName: str | None = None
        workflowVersion: str | None = None
        workflowRunId: str | None = None
        status: str | None = None
        totalCost: float | None = None
        totalTokens: float | None = None
        executionTimeMs: float | None = None

        @staticmethod
        def _get_schema() -> str:
            return SCHEMA_URL

    AltaRunFacet.__module__ = __name__
    return AltaRunFacet


def facet_fields(run: WorkflowRun) -> dict[str, Any]:
    """The facet's fields, named as Alta names them."""
    return {
        "workflowName": run.workflow_name,
        "workflowVersion": run.workflow_version,
        "workflowRunId": run.workflow_run_id,
        "status": run.status.value,
        "totalCost": run.total_cost,
        "totalTokens": run.total_tokens,
        "executionTimeMs": run.execution_time_ms,
    }


def operator_lineage(run: WorkflowRun | None) -> Any:
    """An ``OperatorLineage`` with the Alta run facet; empty when the task ended before a run ended."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    if run is None:
        return OperatorLineage()
    return OperatorLineage(run_facets={FACET_NAME: run_facet_class()(**facet_fields(run))})


class RunLineageMixin:
    """The OpenLineage provider's operator hooks, for a task that finishes an Alta run.

    The facet comes from the run the task finished in this process (``_final_run``, set when the run's end
    is handled), which is the process the OpenLineage listener reports from.
    """

    _final_run: WorkflowRun | None = None

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The Alta run facet of the run this task finished (OpenLineage COMPLETE event)."""
        return operator_lineage(self._final_run)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        """The Alta run facet when the task failed: a FAILED run, or a finished run that broke a contract."""
        return operator_lineage(self._final_run)
