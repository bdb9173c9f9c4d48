"""What a hook meets differently on each release: its base class, a connection read from a trigger, the form.

``sync_to_async`` (asgiref, which Airflow ships) is the bridge Airflow's own triggerer offers for sync SDK
calls: the call runs in a worker thread while its message to the supervisor goes out on the triggerer's event
loop, so the loop is never blocked and the supervisor channel is never used from two loops.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

try:  # Airflow 3.1+
    from airflow.sdk import BaseHook
except ImportError:  # Airflow 3.0
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef,attr-defined]

if TYPE_CHECKING:
    from airflow.sdk import Connection

__all__ = ["BaseHook", "aget_connection", "legacy_connection_form"]


async def aget_connection(conn_id: str) -> Connection:
    """Read a connection from inside a trigger without blocking the event loop."""
    native = getattr(BaseHook, "aget_connection", None)
    if native is not None:  # Airflow 3.1+
        conn: Connection = await native(conn_id)
        return conn
    from asgiref.sync import sync_to_async

    conn = await sync_to_async(BaseHook.get_connection)(conn_id)
    return conn


def legacy_connection_form(connection_type: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The connection form for Airflow 3.0 and 3.1, built from the provider info's declarative form.

    Those releases do not read ``conn-fields`` / ``ui-field-behaviour`` from
    provider info; they call the hook's ``get_connection_form_widgets`` and
    ``get_ui_field_behaviour`` instead (Airflow 3.2+ skips both when the
    provider info declares the form, so one declaration serves every release).
    Their API server substitutes stand-ins for wtforms and Flask-AppBuilder
    when those are not installed.
    """
    from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
    from flask_babel import lazy_gettext
    from wtforms import BooleanField, IntegerField, PasswordField, StringField
    from wtforms.validators import Optional

    widgets: dict[str, Any] = {}
    for name, spec in connection_type.get("conn-fields", {}).items():
        schema = spec["schema"]
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        label = lazy_gettext(spec["label"])
        description = spec.get("description", "")
        default = schema.get("default")
        if "boolean" in kinds:
            widgets[name] = BooleanField(label, description=description, default=default)
        elif "integer" in kinds:
            widgets[name] = IntegerField(
                label, validators=[Optional()], widget=BS3TextFieldWidget(), description=description, default=default
            )
        elif schema.get("format") == "password":
            widgets[name] = PasswordField(label, widget=BS3PasswordFieldWidget(), description=description)
        else:
            text_default = None if default is None else str(default)
            widgets[name] = StringField(
                label, widget=BS3TextFieldWidget(), description=description, default=text_default
            )
    behaviour = connection_type.get("ui-field-behaviour", {})
    legacy_behaviour = {
        "hidden_fields": list(behaviour.get("hidden-fields", [])),
        "relabeling": dict(behaviour.get("relabeling", {})),
        "placeholders": dict(behaviour.get("placeholders", {})),
    }
    return widgets, legacy_behaviour
