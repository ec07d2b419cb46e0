"""Schemas that need at least one of some fields: plain marshmallow, for the domain schemas.

The JSON API documents the rule (connector.web.api.base's RequiresOneOfPlugin); the schemas that
use it need nothing of Flask or the API to load.
"""

from __future__ import annotations

from typing import Any, ClassVar

from marshmallow import Schema, ValidationError, validates_schema


class RequiresOneOf(Schema):
    """A schema that needs at least one of some fields (say a title, or the email to take
    it from): it says so when loading, and the OpenAPI document says so too (anyOf)."""

    required_one_of: ClassVar[tuple[str, ...]] = ()
    required_one_of_message: ClassVar[str] = ""

    @validates_schema
    def _one_of(self, data: dict[str, Any], *, partial: Any = None, **_kwargs: Any) -> None:
        # As marshmallow's partial loading lets required fields be missing, it lets these be:
        # the caller gives them apart (the Gmail add-on's lead takes the open email).
        if partial is True or (partial and set(partial) & set(self.required_one_of)):
            return
        if self.required_one_of and not any(name in data for name in self.required_one_of):
            names = " or ".join(f"'{self._data_key(n)}'" for n in self.required_one_of)
            raise ValidationError(self.required_one_of_message or f"Give {names}.")

    @classmethod
    def _data_key(cls, name: str) -> str:
        return cls._declared_fields[name].data_key or name
