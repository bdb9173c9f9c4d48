"""``@task.alta``: a TaskFlow task whose function returns a workflow's input and whose result is its output.

::

    @task.alta(alta_conn_id="alta_news", deferrable=True)
    def today_news(topic: str) -> dict:
        return {"topic": topic}

    news = today_news("Markets")  # an XComArg: the run's output

The function runs on the worker when the task starts, with its arguments
resolved like any TaskFlow task's (XComArgs, templates, context keys); what
it returns is validated and sent as the input of the connection's workflow.
Every :class:`~airflow_provider_alta.operators.alta.AltaRunWorkflowOperator`
option goes in the decorator's arguments, so the task behaves exactly like
the operator: the same modes, retries that never pay twice, XComs and errors.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk.bases.decorator import DecoratedOperator, task_decorator_factory

from airflow_provider_alta._airflow.version_compat.task import call_task_function
from airflow_provider_alta.operators.alta import AltaRunWorkflowOperator

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.sdk.bases.decorator import TaskDecorator


class _AltaDecoratedOperator(DecoratedOperator, AltaRunWorkflowOperator):
    """The operator behind ``@task.alta``: the function's return value becomes ``input``, then the run goes on."""

    custom_operator_name: str = "@task.alta"
    template_fields: Sequence[str] = (*DecoratedOperator.template_fields, *AltaRunWorkflowOperator.template_fields)
    template_fields_renderers: ClassVar[dict[str, str]] = {
        **DecoratedOperator.template_fields_renderers,
        **AltaRunWorkflowOperator.template_fields_renderers,
    }

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Collection[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if "input" in kwargs:
            raise TypeError("@task.alta takes its input from the function's return value, not an input= argument")
        # Known once the function has run on the worker; until then an empty object passes the checks.
        super().__init__(python_callable=python_callable, op_args=op_args, op_kwargs=op_kwargs, input={}, **kwargs)

    def execute(self, context: Context) -> Any:
        self.input = call_task_function(self, context)
        # Straight to the operator: it pushes its own XComs and returns the output. DecoratedOperator's output
        # handling would read the function's return annotation (the input's type) as ``multiple_outputs`` for the
        # output, and before Airflow 3.1 it needs an ``xcom_push`` method that the SDK's operators lack.
        return AltaRunWorkflowOperator.execute(self, context)


def alta_task(
    python_callable: Callable[..., Any] | None = None,
    *,
    multiple_outputs: bool = False,
    **kwargs: Any,
) -> TaskDecorator:
    """Wrap a function returning a workflow's input into a task running that workflow (``@task.alta``).

    :param python_callable: the function; its return value is the workflow's input (a dict).
    :param multiple_outputs: push each key of the run's output as an XCom of its own. Always passed on:
        left unset, Airflow would infer it from the function's return annotation, which here describes
        the workflow's input (``-> dict``), not its output.
    :param kwargs: any :class:`~airflow_provider_alta.operators.alta.AltaRunWorkflowOperator` or
        ``BaseOperator`` argument but ``input``.
    """
    return task_decorator_factory(
        python_callable=python_callable,
        multiple_outputs=multiple_outputs,
        decorated_operator_class=_AltaDecoratedOperator,
        **kwargs,
    )
