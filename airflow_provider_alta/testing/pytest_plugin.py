"""Pytest fixtures for testing DAGs that use the Alta provider, offline.

Installed with the package (entry point ``pytest11``)::

    def test_my_dag(alta_emulator, monkeypatch):
        monkeypatch.setenv("AIRFLOW_CONN_ALTA_DEFAULT", alta_emulator.connection_uri())
        ...

``alta_emulator`` is one emulator per test session, reset before each test.

The entry point loads this module into every pytest run of every environment
that has the provider, so it imports pytest alone: the emulator (aiohttp) is
imported by the fixtures, only in sessions that use them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow_provider_alta.testing.client import EmulatorClient
    from airflow_provider_alta.testing.emulator import EmulatorThread


@pytest.fixture(scope="session")
def alta_emulator_server() -> Iterator[EmulatorThread]:
    """The emulator serving on a free port of 127.0.0.1 for the whole session."""
    from airflow_provider_alta.testing.emulator import EmulatorThread

    with EmulatorThread() as server:
        yield server


@pytest.fixture
def alta_emulator(alta_emulator_server: EmulatorThread) -> EmulatorClient:
    """A freshly reset emulator, driven through :class:`EmulatorClient`."""
    from airflow_provider_alta.testing.client import EmulatorClient

    client = EmulatorClient(alta_emulator_server.url)
    client.reset()
    return client
