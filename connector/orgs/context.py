"""What a service call needs to know about its surroundings, passed in explicitly.

Services take a `Ctx` rather than reaching for Flask globals, so that they run the
same from a view, a command or a test.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from connector.addresses import FreeMailDomains
from connector.orgs.models import User
from connector.store import SharedStore


@dataclass(frozen=True)
class Settings:
    free_mail: FreeMailDomains
    attachment_cap_bytes: int
    lookup_cache_seconds: int


@dataclass(frozen=True)
class Ctx:
    session: Session
    user: User
    store: SharedStore
    settings: Settings

    @property
    def org_id(self) -> int:
        return self.user.organization_id
