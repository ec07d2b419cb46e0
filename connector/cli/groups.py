"""The command groups that the modules of connector.cli add their commands to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import click
from flask import Flask


@dataclass(frozen=True)
class Groups:
    users: click.Group
    keys: click.Group
    orgs: click.Group


class CommandModule(Protocol):
    def register(self, app: Flask, groups: Groups) -> None: ...
