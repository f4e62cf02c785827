"""Fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.postgres_cluster import PostgresCluster


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
