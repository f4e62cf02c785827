"""Path and query parameters shared by several routes, bounded so that no value can
reach the database outside what its columns hold."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Final

from fastapi import Depends, Path, Query

from api.schemas import TimeIn

# PostgreSQL's INTEGER (the id columns) ends at 2**31 - 1.
MAX_ID: Final = 2**31 - 1
MAX_PAGE: Final = 1000
MAX_OFFSET: Final = 100_000

IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]


@dataclass(frozen=True)
class ReadingQuery:
    """A time range (`since` inclusive, `until` exclusive) and a page of it."""

    since: datetime | None
    until: datetime | None
    limit: int
    offset: int


def reading_query(
    since: Annotated[TimeIn | None, Query(description="Measured at or after (ISO 8601)")] = None,
    until: Annotated[TimeIn | None, Query(description="Measured before (ISO 8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> ReadingQuery:
    return ReadingQuery(since, until, limit, offset)


ReadingWindow = Annotated[ReadingQuery, Depends(reading_query)]
