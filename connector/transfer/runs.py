"""What an import run needs around the rows: whom it acts as, and its rejects file (the
command and the admin page's job share them)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.orgs.models import Role, User
from connector.transfer.reading import SourceRow


def acting_user(session: Session, org_id: int) -> User | None:
    """Whom an import acts as (the records' owner, the history's author): the organization's
    first admin, else its first user; deactivated users never."""
    query = (
        select(User)
        .where(User.organization_id == org_id, User.deactivated_at.is_(None))
        .order_by(User.role != Role.ADMIN, User.id)
        .limit(1)
    )
    return session.scalar(query)


class Rejects:
    """The rejects file: the rows' own columns, then `line` and `reason`; opened at the first."""

    def __init__(self, path: Path, columns: list[str]) -> None:
        self.path = path
        self.columns = columns
        self.count = 0
        self._file: TextIO | None = None
        self._writer: Any = None

    def __call__(self, row: SourceRow, reason: str) -> None:
        if self._writer is None:
            self._file = self.path.open("w", encoding="utf-8-sig", newline="")
            extra = [c for c in row.cells if c not in self.columns]
            self.columns = [*self.columns, *extra]
            self._writer = csv.writer(self._file)
            self._writer.writerow([*self.columns, "line", "reason"])
        cells = [row.cells.get(c, "") for c in self.columns]
        self._writer.writerow([*cells, row.line, reason])
        self.count += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        elif self.path.exists():
            # This run rejected nothing: a rejects file of an earlier run would mislead.
            self.path.unlink()
