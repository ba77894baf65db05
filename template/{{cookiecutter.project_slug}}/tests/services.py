"""The machine's real Redis, PostgreSQL and MariaDB for the shared-store tests.

Their URLs come from environment variables, with the defaults of a developer machine (or the
project's compose.yaml). A server that does not answer skips the tests that need it, with the
reason, unless MSAL_WEBAPP_REQUIRE_SERVICES=1 (a CI that has them all): then they fail.

Every test run works in its own namespace, so that suites running at once on one server never
meet: a Redis key prefix per test, a PostgreSQL schema or a MariaDB database per test process.
"""

from __future__ import annotations

import os
import secrets

import pytest

REQUIRE_SERVICES = "MSAL_WEBAPP_REQUIRE_SERVICES"
REDIS_URL = os.environ.get("MSAL_WEBAPP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get("MSAL_WEBAPP_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("MSAL_WEBAPP_TEST_MYSQL_URL",
                           "mysql+pymysql://root@127.0.0.1:3306/test")


def unavailable(reason: str) -> None:
    """Skip the test for a missing server or browser, or fail it where they are required."""
    if os.environ.get(REQUIRE_SERVICES) == "1":
        pytest.fail(f"{REQUIRE_SERVICES}=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def unique_name(label: str) -> str:
    """A name no other test process uses (lower case, a valid SQL identifier)."""
    return f"{label}_{os.getpid()}_{secrets.token_hex(4)}"
