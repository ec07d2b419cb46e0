from __future__ import annotations

import pytest

from connector.records.models import RecordType
from connector.records.refs import RecordRef


def test_a_reference_reads_and_writes_its_text_form() -> None:
    ref = RecordRef.parse("lead:12")
    assert ref == RecordRef(RecordType.LEAD, 12) == RecordRef.of("lead", "12")
    assert str(ref) == "lead:12"
    assert RecordRef.from_json({"type": "ticket", "id": 3}) == RecordRef(RecordType.TICKET, 3)


@pytest.mark.parametrize("text", ["", "lead", "lead:", ":12", "planet:1", "lead:x", "lead12"])
def test_anything_else_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        RecordRef.parse(text)
