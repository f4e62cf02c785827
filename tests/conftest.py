"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.postgres_cluster import PostgresCluster

# The suite's scripted WebSocket clients sign in with `/ws?token=`, which the product
# refuses by default (#17): every daemon the tests start, in process or as a child,
# accepts it. tests/api/test_security_stream.py checks the default refuses it.
os.environ.setdefault("VITALSD_WS_TOKEN_IN_URL", "true")


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """An empty database for the whole run (`postgresql+asyncpg://...`)."""
    return postgres_cluster.database()


@pytest.fixture
def fresh_postgres_url(postgres_cluster: PostgresCluster) -> str:
    """A new empty database for one test."""
    return postgres_cluster.database()
