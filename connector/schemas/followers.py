"""Schemas of /api/v1/{contacts|companies|leads|tickets}/{id}/followers: who follows a
record (gets mail about it), adding and removing them."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validates_schema

from connector.ids import Id
from connector.requires_one_of import RequiresOneOf
from connector.schemas.cards import FollowerOut, email_address


class FollowerIn(RequiresOneOf):
    """Exactly one of the three names the person who is to follow."""

    required_one_of = ("user_id", "contact_id", "email")
    required_one_of_message = "Give one of 'user_id', 'contact_id' or 'email'."

    user_id = Id(metadata={"description": "A user of the organization"})
    contact_id = Id(metadata={"description": "A contact of the organization"})
    email = email_address(
        metadata={
            "description": "The address of a user of the organization, else of one of its contacts"
        }
    )

    @validates_schema
    def _only_one(self, data: dict[str, Any], **_kwargs: Any) -> None:
        given = [name for name in self.required_one_of if name in data]
        if len(given) > 1:
            raise ValidationError(
                f"Give only one of 'user_id', 'contact_id' or 'email', not {' and '.join(given)}."
            )


class FollowerListOut(Schema):
    results = fields.List(fields.Nested(FollowerOut))
