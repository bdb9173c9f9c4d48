"""The type of a templated argument, as a DAG author passes it.

Between ``__init__`` and ``execute`` Airflow renders every template field: a Jinja string (already a ``str``) is
rendered, and an ``XComArg`` (an upstream task's ``.output``, what calling a ``@task`` function returns, or a
mapped, zipped or concatenated one) is resolved, at any depth. A parameter annotated with the rendered type alone
makes a strict type checker (mypy ``--strict``, pyright) reject the provider's own documented pattern,
``AltaWorkflowRunSensor(workflow_run_id=start.output)``. ``Templated[T]`` says what such a parameter takes; the
attribute it lands in keeps the type ``execute`` sees (:func:`rendered`).

``airflow.sdk`` has exported ``XComArg`` since Airflow 3.0, and loads it with ``BaseOperator``: importing this
module costs nothing more.
"""

from __future__ import annotations

from typing import TypeAlias, TypeVar, cast

from airflow.sdk import XComArg

__all__ = ["Templated", "rendered"]

T = TypeVar("T")

#: A ``T``, or an ``XComArg`` Airflow resolves to one before ``execute``.
Templated: TypeAlias = T | XComArg


def rendered(value: Templated[T]) -> T:
    """``value`` as ``execute`` sees it: Airflow renders template fields before it runs (no check, no copy)."""
    return cast("T", value)
