"""A retry that starts afresh, on every release: Airflow 3.0 hands it the deferral of the try that failed."""

from __future__ import annotations

from typing import Any


class FreshRetryMixin:
    """Start a try at ``execute`` when Airflow resumes it with what ended an earlier try's wait.

    Airflow 3.0 keeps a deferred task's ``next_method`` when that try fails, so its retry resumes with the old
    trigger event, or with ``__fail__`` (which raises ``TaskDeferralError``) when the trigger itself failed or timed
    out; 3.1 clears it. Which try deferred is told by
    :func:`~airflow_provider_alta._airflow.version_compat.task.earlier_deferring_try`. The class says in ``fresh_start``
    what starting afresh does for it.
    """

    fresh_start: str = ""

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Any) -> Any:
        """Resume after the trigger fired; a try handed the deferral of an earlier one starts afresh."""
        from airflow_provider_alta._airflow.version_compat.task import earlier_deferring_try

        earlier = earlier_deferring_try(context, next_kwargs)
        if earlier is not None:
            self.log.info(  # type: ignore[attr-defined]
                "This is try %s, resumed with what ended the wait of try %s: starting it afresh (%s)",
                context["ti"].try_number,
                earlier,
                self.fresh_start,
            )
            return self.execute(context)  # type: ignore[attr-defined]
        return super().resume_execution(next_method, next_kwargs, context)  # type: ignore[misc]
