"""The verifier's lakehouse: the session's seeded and built one with a read-only identity
(tests/support/marts.py, shared with tests/semantic), and the verifier's settings and context."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from demo.verify.checks import Context
from demo.verify.settings import VerifySettings
from tests.support.marts import READER_ID, READER_SECRET, Stack  # noqa: F401 - Stack: for the tests


@pytest.fixture(scope="session")
def stack(marts_stack: Stack) -> Stack:
    """The session's seeded and built lakehouse (tests/support/marts.py), shared with tests/semantic."""
    return marts_stack


def verify_settings(**overrides: object) -> VerifySettings:
    """VerifySettings with test values; the fake services' URLs come in as overrides."""
    values: dict[str, object] = {
        "dagster_url": "http://127.0.0.1:9",
        "dagster_location": "demo.orchestration.definitions",
        "cube_api_url": "http://127.0.0.1:9",
        "cube_api_secret": "floe-test-cube-secret",
        "cube_sql_host": "127.0.0.1",
        "cube_sql_port": 9,
        "cube_sql_user": "floe",
        "cube_sql_password": "floe-test-password",
        "reader_client_id": READER_ID,
        "reader_client_secret": READER_SECRET,
        "verify_check_timeout_seconds": 30,
    }
    values.update(overrides)
    return VerifySettings.model_validate(values)


@pytest.fixture
def ctx(stack: Stack) -> Iterator[Context]:
    context = Context(lake=stack.settings, settings=verify_settings(), settle_seconds=0)
    yield context
    context.http.close()
