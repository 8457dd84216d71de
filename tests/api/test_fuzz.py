"""A bounded schemathesis pass over /openapi.json: generated requests never get a 5xx.

Requests carry a valid key of a user with plenty of credits, so generated bodies that pass
validation really submit runs (on a worker-less install: they stay queued).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from phone_core import bootstrap
from phone_core.api.app import create_app
from phone_core.runtime import Runtime
from tests.api.conftest import auth, new_key
from tests.conftest import grant, make_settings

pytestmark = pytest.mark.slow  # schemathesis over the whole API: not in make test-fast


@pytest.fixture(scope="module")
def fuzz_rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    bootstrap.shutdown()
    data: Path = tmp_path_factory.mktemp("fuzz") / "data"
    rt = bootstrap.get_runtime(make_settings(data, api_rate_per_minute=1_000_000), worker=False)
    grant(rt, "fuzzer", 10**9)
    yield rt
    bootstrap.shutdown()


@pytest.fixture(scope="module")
def fuzz_headers(fuzz_rt: Runtime) -> dict[str, str]:
    return auth(new_key(fuzz_rt, "fuzzer"))


# Loaded at import from an app without a runtime (the document needs none); the runtime
# is bound below. Not ``from_asgi``: it would run the app's lifespan, which starts the
# default runtime; and schemathesis' lazy ``from_fixture`` loader breaks on pytest 9.
APP = create_app()
schema = schemathesis.openapi.from_dict(APP.openapi())
schema.app = APP


@pytest.fixture(scope="module", autouse=True)
def _bind_runtime(fuzz_rt: Runtime) -> Iterator[None]:
    APP.state.rt = fuzz_rt
    yield
    APP.state.rt = None
    APP.state.limiter = None


@schema.parametrize()
@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_errors(case: Any, fuzz_headers: dict[str, str]) -> None:
    case.call_and_validate(
        headers=fuzz_headers,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
