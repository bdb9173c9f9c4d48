"""The OpenLineage run facet: its JSON schema ships in the package, and its ``_schemaURL`` points at that file."""

from __future__ import annotations

import json
import urllib.parse
from importlib import metadata, resources
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource

import airflow_provider_alta
from airflow_provider_alta._airflow.lineage import (
    FACET_NAME,
    SCHEMA_DEF,
    SCHEMA_FILE,
    SCHEMA_URL,
    facet_fields,
    operator_lineage,
)
from airflow_provider_alta.models import WorkflowRun

#: The OpenLineage spec the facet's schema builds on (``$ref`` to its ``RunFacet``).
OPENLINEAGE_SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
#: The two definitions of that spec the facet's schema reaches, as the spec states them (the tests run offline).
OPENLINEAGE_FACETS = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": OPENLINEAGE_SPEC,
    "$defs": {
        "BaseFacet": {
            "type": "object",
            "properties": {
                "_producer": {"type": "string", "format": "uri"},
                "_schemaURL": {"type": "string", "format": "uri"},
            },
            "additionalProperties": True,
            "required": ["_producer", "_schemaURL"],
        },
        "RunFacet": {
            "type": "object",
            "allOf": [{"$ref": "#/$defs/BaseFacet"}, {"type": "object", "additionalProperties": True}],
        },
    },
}
BODY = {
    "workflowRunId": "r-1",
    "status": "SUCCEED",
    "workflowName": "todayNews",
    "workflowVersion": "1.0.1",
    "output": {"news": []},
    "totalCost": 0.6928,
    "totalTokens": 1745,
    "workflowExecutionTime": 200,
}


def shipped_schema() -> dict[str, Any]:
    """The schema as installed (the version matrix tests the wheel, not the source tree)."""
    package_path = SCHEMA_FILE.removeprefix("airflow_provider_alta/")
    schema: dict[str, Any] = json.loads((resources.files("airflow_provider_alta") / package_path).read_text())
    return schema


def facet_validator() -> jsonschema.Draft202012Validator:
    """Validates a facet against the definition ``_schemaURL`` points at, resolved in the shipped file."""
    schema_url = SCHEMA_URL.partition("#")[0]
    registry: Registry = Registry().with_resources(
        [
            (schema_url, Resource.from_contents(shipped_schema())),
            (OPENLINEAGE_SPEC, Resource.from_contents(OPENLINEAGE_FACETS)),
        ]
    )
    return jsonschema.Draft202012Validator(
        {"$ref": SCHEMA_URL}, registry=registry, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def emitted(body: dict[str, Any]) -> dict[str, Any]:
    """The facet as the OpenLineage client writes it into an event (its own serializer: nulls left out)."""
    from openlineage.client.serde import Serde

    facet = operator_lineage(WorkflowRun.from_response(body)).run_facets[FACET_NAME]
    event_facet: dict[str, Any] = json.loads(Serde.to_json(facet))
    return event_facet


def test_the_emitted_facet_validates_against_the_shipped_schema():
    facet = emitted(BODY)
    assert facet["_schemaURL"] == SCHEMA_URL
    assert facet["workflowRunId"] == "r-1" and facet["totalTokens"] == 1745
    facet_validator().validate(facet)
    # A FAILED run that reported no figures: the fields it lacks are left out of the event, and it still validates.
    sparse = emitted({"workflowRunId": "r-2", "status": "FAILED"})
    assert {k for k in sparse if not k.startswith("_")} == {"workflowRunId", "status"}
    facet_validator().validate(sparse)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"status": "RUNNING"}, "is not one of"),
        ({"totalCost": "0.69"}, "is not of type 'number'"),
        ({"workflowRunId": None}, "'workflowRunId' is a required property"),
        ({"_producer": None}, "'_producer' is a required property"),
    ],
)
def test_the_schema_refuses_what_the_facet_never_is(change, message):
    facet = {k: v for k, v in {**emitted(BODY), **change}.items() if v is not None}
    with pytest.raises(jsonschema.ValidationError, match=message):
        facet_validator().validate(facet)


def test_the_schema_url_is_the_shipped_file_at_this_release():
    url = urllib.parse.urlsplit(SCHEMA_URL)
    version = metadata.version("airflow-provider-alta")
    assert version == airflow_provider_alta.__version__
    assert (url.scheme, url.netloc) == ("https", "raw.githubusercontent.com")
    assert url.path == f"/altatech-ai/airflow-provider-alta/v{version}/{SCHEMA_FILE}"
    assert url.fragment == f"/$defs/{SCHEMA_DEF}"
    assert (resources.files("airflow_provider_alta").joinpath(*SCHEMA_FILE.split("/")[1:])).is_file()


def test_the_schema_follows_the_openlineage_facet_conventions():
    schema = shipped_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    definition = schema["$defs"][SCHEMA_DEF]
    base, own = definition["allOf"]
    assert base == {"$ref": f"{OPENLINEAGE_SPEC}#/$defs/RunFacet"}
    assert schema["properties"] == {FACET_NAME: {"$ref": f"#/$defs/{SCHEMA_DEF}"}}
    # Every field the facet carries is described, and only those.
    assert set(own["properties"]) == set(facet_fields(WorkflowRun.from_response(BODY)))
    assert all(spec.get("description") for spec in own["properties"].values())
