"""One page of a query: its rows, converted, and the count over all pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa

from gridguard.platform.database import Database
from gridguard.platform.models import Page

T = TypeVar("T")


async def fetch_page(
    db: Database,
    query: sa.Select[Any],
    *,
    order_by: tuple[sa.ColumnElement[Any], ...],
    offset: int,
    limit: int,
    convert: Callable[[Any], T],
) -> Page[T]:
    async with db.read() as conn:
        total = await conn.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
        rows = await conn.execute(query.order_by(*order_by).offset(offset).limit(limit))
        items = [convert(r) for r in rows]
    return Page(items=items, total=total or 0, offset=offset, limit=limit)
