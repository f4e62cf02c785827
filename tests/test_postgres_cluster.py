"""The private PostgreSQL cluster the storage tests run against really serves SQL."""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine


async def test_fresh_postgres_database_accepts_connections(fresh_postgres_url: str) -> None:
    engine = create_async_engine(fresh_postgres_url)
    try:
        async with engine.connect() as connection:
            version = (await connection.execute(text("select version()"))).scalar_one()
    finally:
        await engine.dispose()
    assert version.startswith("PostgreSQL")
