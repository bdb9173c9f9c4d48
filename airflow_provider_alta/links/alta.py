"""The "Alta run" button of a task: a link to the run in Alta's own dashboard.

Alta documents no run page, so the address comes from the connection's
``run_url_template`` extra, e.g. ``https://app.example/runs/{workflow_run_id}``;
without it (or before a run id is known) the task shows no link. Airflow 3
asks for the link once, in the worker, when the task ends, and stores the
answer as the XCom ``_link_AltaRunLink``, which the UI and the REST API's
``.../links`` endpoint show. The template holds no secret (a template with the
API key in it is refused) and the run id is URL-quoted into it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

#: The placeholder ``run_url_template`` must contain.
RUN_ID_PLACEHOLDER = "{workflow_run_id}"


def run_url(template: str | None, workflow_run_id: str | None) -> str:
    """The run's address, or ``""`` (no link) when the template or the run id is unknown."""
    if not template or not workflow_run_id:
        return ""
    return template.replace(RUN_ID_PLACEHOLDER, quote(workflow_run_id, safe=""))


class AltaRunLink(BaseOperatorLink):
    """Links a task of :class:`~airflow_provider_alta.operators.alta.AltaRunWorkflowOperator` to its Alta run."""

    name = "Alta run"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """The run's address from the connection's template and the run the task handled.

        Airflow asks in the worker process that ends the task, where the operator knows its run (a deferred
        task learns it again when it resumes); a task that ended before any run started has no link. The run
        id is not read back from XCom: a missing XCom is logged as an Airflow error, which a task that failed
        before its invoke would add to its log. Never raises: Airflow 3.0 fails a task whose link raises, and
        a link is not worth a failed task.
        """
        try:
            run_id = getattr(operator, "_run_id", None)
            if not run_id:
                return ""
            from airflow_provider_alta.hooks.alta import AltaHook

            conn_id: Any = getattr(operator, "alta_conn_id", AltaHook.default_conn_name)
            return run_url(AltaHook(conn_id).config.run_url_template, run_id)
        except Exception:
            return ""
