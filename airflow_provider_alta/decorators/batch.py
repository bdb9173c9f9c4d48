"""``@task.alta_batch``: a TaskFlow task whose function returns the items of a batch.

::

    @task.alta_batch(alta_conn_id="alta_tickets", output_path="s3://lake/summaries/{{ ds }}", key_field="id")
    def tickets(day: str) -> list[dict]:
        return [{"id": t.id, "text": t.body} for t in load_tickets(day)]

    manifest = tickets("{{ ds }}")  # an XComArg: the batch's manifest

The function runs on the worker when the task starts, with its arguments resolved like any TaskFlow task's;
the list it returns is the batch's items (a large input belongs in a file: give ``input_path`` to
:class:`~airflow_provider_alta.operators.batch.AltaBatchOperator` instead). Every operator option goes in the
decorator's arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk.bases.decorator import DecoratedOperator, task_decorator_factory

from airflow_provider_alta.operators.batch import AltaBatchOperator

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.sdk.bases.decorator import TaskDecorator


class _AltaBatchDecoratedOperator(DecoratedOperator, AltaBatchOperator):
    """The operator behind ``@task.alta_batch``: the function's return value becomes ``items``."""

    custom_operator_name: str = "@task.alta_batch"
    template_fields: Sequence[str] = (*DecoratedOperator.template_fields, *AltaBatchOperator.template_fields)
    template_fields_renderers: ClassVar[dict[str, str]] = {
        **DecoratedOperator.template_fields_renderers,
        **AltaBatchOperator.template_fields_renderers,
    }

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Collection[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        for taken in ("items", "input_path"):
            if taken in kwargs:
                raise TypeError(f"@task.alta_batch takes its items from the function's return value, not {taken}=")
        # Known once the function has run on the worker; until then an empty list passes the checks.
        super().__init__(python_callable=python_callable, op_args=op_args, op_kwargs=op_kwargs, items=[], **kwargs)

    def execute(self, context: Context) -> Any:
        from airflow_provider_alta._airflow.version_compat.task import call_task_function

        self.items = call_task_function(self, context)
        # Straight to the operator: it returns the manifest itself (see ``@task.alta`` for why).
        return AltaBatchOperator.execute(self, context)


def alta_batch_task(python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> TaskDecorator:
    """Wrap a function returning a batch's items into a task running the workflow over them (``@task.alta_batch``).

    :param python_callable: the function; its return value is the list of items (dicts).
    :param kwargs: any :class:`~airflow_provider_alta.operators.batch.AltaBatchOperator` or ``BaseOperator``
        argument but ``items`` and ``input_path``.
    """
    return task_decorator_factory(
        python_callable=python_callable,
        multiple_outputs=False,
        decorated_operator_class=_AltaBatchDecoratedOperator,
        **kwargs,
    )
