"""An auth manager for the spend view's tests: Airflow's simple auth manager, where some users read fewer DAGs."""

from __future__ import annotations

from typing import Any

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

#: DAGs each of these users may read (every other user: what the simple auth manager allows, i.e. all).
READABLE = {"only_other": {"t_spend_other"}, "nothing": set()}


class SomeDagsAuthManager(SimpleAuthManager):
    """Grants the users of :data:`READABLE` only their DAGs, as a deployment's real auth manager may."""

    def is_authorized_dag(self, *, method: Any, user: Any, access_entity: Any = None, details: Any = None) -> bool:
        allowed = READABLE.get(user.get_name())
        if allowed is None:
            granted = super().is_authorized_dag(method=method, user=user, access_entity=access_entity, details=details)
            return bool(granted)
        return details is not None and details.id in allowed
