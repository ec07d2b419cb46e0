"""A reference to one record, "contact:12": the one place its text form is read and written."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connector.records.models import RecordType


@dataclass(frozen=True)
class RecordRef:
    type: RecordType
    id: int

    @classmethod
    def of(cls, record_type: str | RecordType, record_id: int | str) -> RecordRef:
        """From a type name and an id as a form, a URL or validated JSON gives them;
        ValueError when either is not one."""
        return cls(RecordType(record_type), int(record_id))

    @classmethod
    def parse(cls, text: str) -> RecordRef:
        """From "contact:12"; ValueError when it is not one."""
        record_type, colon, record_id = text.partition(":")
        if not colon:
            raise ValueError(f"not a record reference: {text!r}")
        return cls.of(record_type, record_id)

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> RecordRef:
        """From `{"type": "contact", "id": 12}`, as the API's schemas load it."""
        return cls.of(item["type"], item["id"])

    def __str__(self) -> str:
        return f"{self.type.value}:{self.id}"
