"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``)."""

from __future__ import annotations

from typing import Any

from airflow_provider_alta import __version__


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-alta",
        "name": "Alta",
        "description": "Run Alta AI workflows from Airflow: hook, operator, deferrable sensor and trigger.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Alta",
                "external-doc-url": "https://altatech.ai/",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": "Alta", "python-modules": ["airflow_provider_alta.hooks.alta"]}],
        "operators": [
            {
                "integration-name": "Alta",
                "python-modules": ["airflow_provider_alta.operators.alta", "airflow_provider_alta.operators.batch"],
            }
        ],
        "sensors": [{"integration-name": "Alta", "python-modules": ["airflow_provider_alta.sensors.alta"]}],
        "triggers": [{"integration-name": "Alta", "python-modules": ["airflow_provider_alta.triggers.alta"]}],
        "extra-links": ["airflow_provider_alta.links.alta.AltaRunLink"],
        "task-decorators": [
            {"name": "alta", "class-name": "airflow_provider_alta.decorators.alta.alta_task"},
            {"name": "alta_batch", "class-name": "airflow_provider_alta.decorators.batch.alta_batch_task"},
        ],
        "config": {
            "alta": {
                "description": "The Alta webhook receiver mounted on the API server (airflow_webhook=True).",
                "options": {
                    "webhook_enabled": {
                        "description": "Mount the receiver at /alta on the API server and let operators use it.",
                        "version_added": "0.1.0",
                        "type": "boolean",
                        "example": "True",
                        "default": "False",
                    },
                    "webhook_base_url": {
                        "description": "The absolute URL at which Alta reaches this Airflow's API server.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "https://airflow.example.com",
                        "default": "",
                    },
                    "webhook_token_lifetime": {
                        "description": "Seconds a webhook token stays valid after the task invokes its run "
                        "(it is also refused once the task's try is over). Cover the longest run you wait for.",
                        "version_added": "0.1.0",
                        "type": "integer",
                        "example": "86400",
                        "default": "604800",
                    },
                },
            }
        },
        "connection-types": [
            {
                "connection-type": "alta",
                "hook-class-name": "airflow_provider_alta.hooks.alta.AltaHook",
                "hook-name": "Alta",
                "ui-field-behaviour": {
                    "hidden-fields": ["login", "schema", "port"],
                    "relabeling": {"host": "Base URL", "password": "API Key"},
                    "placeholders": {
                        "host": "https://altatech.ai",
                        "password": "the workflow's API key from Alta's dashboard",
                    },
                },
                "conn-fields": {
                    "timeout": {
                        "label": "Request timeout (s)",
                        "description": "Read timeout of queries and async invokes.",
                        "schema": {"type": ["number", "null"], "minimum": 0, "default": 60},
                    },
                    "sync_invoke_timeout": {
                        "label": "Synchronous invoke timeout (s)",
                        "description": "Read timeout of a synchronous invoke, which lasts as long as the run.",
                        "schema": {"type": ["number", "null"], "minimum": 0, "default": 900},
                    },
                    "connect_timeout": {
                        "label": "Connect timeout (s)",
                        "description": "Seconds to wait for a connection; a request never connected was not sent.",
                        "schema": {"type": ["number", "null"], "minimum": 0, "default": 10},
                    },
                    "verify": {
                        "label": "Verify TLS",
                        "description": "Verify Alta's TLS certificate (or set a CA bundle path in the extras JSON).",
                        "schema": {"type": ["boolean", "null"], "default": True},
                    },
                    "proxies": {
                        "label": "Proxies",
                        "description": 'JSON object, e.g. {"https": "http://proxy:3128"}.',
                        "schema": {"type": ["object", "null"]},
                    },
                    "max_retries": {
                        "label": "Max retries",
                        "description": "Retries of one request on transient errors (invoke: only if not started).",
                        "schema": {"type": ["integer", "null"], "minimum": 0, "default": 4},
                    },
                    "retry_max_wait": {
                        "label": "Max retry time (s)",
                        "description": "Seconds one request may spend being retried.",
                        "schema": {"type": ["number", "null"], "minimum": 0, "default": 120},
                    },
                    "retry_backoff": {
                        "label": "First retry backoff (s)",
                        "description": "Pause before the first retry, doubled on each further retry (with jitter).",
                        "schema": {"type": ["number", "null"], "minimum": 0, "default": 1},
                    },
                    "webhook_secret": {
                        "label": "Webhook secret",
                        "description": "16+ random characters that sign the webhook receiver's URLs "
                        "(airflow_webhook=True).",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "run_url_template": {
                        "label": "Run URL template",
                        "description": "The address of a run in Alta's dashboard, for the task's \"Alta run\" "
                        "link, e.g. https://app.example/runs/{workflow_run_id}.",
                        "schema": {"type": ["string", "null"]},
                    },
                },
            }
        ],
    }
