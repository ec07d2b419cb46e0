"""Lists of records by filter, a page at a time, for syncing and reports.

Pages follow the id (keyset): a cursor names the last id of the page before, so a page costs
the same at the millionth record as at the first, and records written meanwhile neither
shift nor repeat the pages. No total count: it would cost a scan on every page.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from connector.errors import InvalidInput
from connector.ids import MAX_ID
from connector.orgs.context import Ctx
from connector.records.models import RecordType
from connector.records.service import RECORD_MODELS, Record

# Which filters each type has (besides updated_since, archived, cursor and limit).
FILTERS: dict[RecordType, tuple[str, ...]] = {
    RecordType.CONTACT: ("owner_id", "company_id"),
    RecordType.COMPANY: ("owner_id",),
    RecordType.LEAD: ("owner_id", "company_id", "contact_id", "stage"),
    RecordType.TICKET: ("owner_id", "company_id", "contact_id", "status"),
}


@dataclass(frozen=True)
class Page:
    records: list[Record]
    next_cursor: str | None


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": last_id}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
        after = value["after"]
        if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after <= MAX_ID:
            raise ValueError(after)
        return after
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidInput(
            "That cursor is not one this API gave: start again without it.",
            {"cursor": ["invalid"]},
        ) from exc


def list_records(
    ctx: Ctx,
    record_type: RecordType,
    filters: Mapping[str, Any],
    *,
    updated_since: dt.datetime | None = None,
    archived: bool = False,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    model = RECORD_MODELS[record_type]
    unknown = sorted(set(filters) - set(FILTERS[record_type]))
    if unknown:
        allowed = ", ".join(FILTERS[record_type])
        raise InvalidInput(
            f"{record_type.value.capitalize()} lists filter by {allowed}, not by "
            f"{', '.join(unknown)}.",
            {name: ["not a filter of this list"] for name in unknown},
        )
    query = select(model).where(
        model.organization_id == ctx.org_id,
        model.archived_at.is_not(None) if archived else model.archived_at.is_(None),
    )
    for name, value in filters.items():
        query = query.where(getattr(model, name) == value)
    if updated_since is not None:
        query = query.where(model.updated_at >= updated_since.astimezone(dt.UTC))
    if cursor:
        query = query.where(model.id > decode_cursor(cursor))
    rows: list[Record] = list(ctx.session.scalars(query.order_by(model.id).limit(limit + 1)))
    more = len(rows) > limit
    records = rows[:limit]
    return Page(records, encode_cursor(records[-1].id) if more else None)
