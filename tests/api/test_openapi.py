"""The published description: version, security, the reference's examples, /docs."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from phone_core.api.app import create_app
from tests.api.conftest import REFERENCE_EXAMPLE, TestClient


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    client = TestClient(create_app())  # no lifespan: the document needs no runtime
    r = client.get("/openapi.json")
    assert r.status_code == 200
    doc: dict[str, Any] = r.json()
    return doc


def test_version_and_security(spec: dict[str, Any]) -> None:
    assert spec["info"]["version"] == "1.4.1"
    assert spec["components"]["securitySchemes"]["BearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["BearerAuth"]["description"],
    }
    operations = [op for ops in spec["paths"].values() for op in ops.values()]
    assert len(operations) == 8
    assert all(op["security"] == [{"BearerAuth": []}] for op in operations)
    assert set(spec["paths"]) == {
        "/v1/agents/phone",
        "/v1/agents/runs/{run_id}",
        "/v1/agents/runs/{run_id}/deliveries",  # issue 13: the run's notifications
        "/v1/credits/remaining",
        "/v1/credits/usage",
        "/v1/audit",
        "/v1/enrich/phone",  # the single-record API (issue 12)
        "/v1/sources/stats",
    }


def test_submit_examples(spec: dict[str, Any]) -> None:
    op = spec["paths"]["/v1/agents/phone"]["post"]
    examples = op["requestBody"]["content"]["application/json"]["examples"]
    assert examples["ids"]["value"] == REFERENCE_EXAMPLE
    assert spec["components"]["schemas"]["BatchCreate"]["examples"] == [REFERENCE_EXAMPLE]
    responses = op["responses"]
    for status in ("202", "401", "402", "422", "429"):
        assert "example" in responses[status]["content"]["application/json"], status
    assert set(responses["202"]["content"]["application/json"]["example"]) == {
        "run_id",
        "result_path",
        "credits_csv_path",
    }
    assert responses["402"]["content"]["application/json"]["example"]["credits_required"] == 100
    assert responses["429"]["content"]["application/json"]["example"]["retry_after"] == 7
    detail = responses["422"]["content"]["application/json"]["example"]["detail"][0]
    assert set(detail) == {"loc", "msg", "type"}
    header = next(p for p in op["parameters"] if p["name"] == "Idempotency-Key")
    assert header["in"] == "header" and not header.get("required", False)


def test_request_fields_match_reference(spec: dict[str, Any]) -> None:
    schema = spec["components"]["schemas"]["BatchCreate"]
    reference = {"ids", "records", "entity_type", "max_credits"}
    # issue 13: ``webhook_url``, issue 12: ``sources``: optional additions
    assert set(schema["properties"]) == reference | {"webhook_url", "sources"}
    assert set(schema["required"]) <= reference
    assert schema["properties"]["max_credits"]["type"] == "integer"
    assert schema["additionalProperties"] is False
    accepted = spec["components"]["schemas"]["BatchAccepted"]
    assert set(accepted["required"]) == {"run_id", "result_path", "credits_csv_path"}
    error = spec["components"]["schemas"]["ErrorBody"]
    assert set(error["properties"]) == {
        "error",
        "details",
        "request_id",
        "credits_required",
        "credits_remaining",
        "retry_after",
    }
    assert error["required"] == ["error"]


def test_docs_page() -> None:
    r = TestClient(create_app()).get("/docs")
    assert r.status_code == 200
    assert "swagger-ui" in r.text.lower()
    assert r.headers["x-request-id"]


def test_no_streamlit_in_phone_core_api() -> None:
    code = "import sys, phone_core.api, phone_core.api.app; print('streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
