"""Tests of the Alta emulator and the pytest plugin (airflow_provider_alta.testing)."""
