"""The `connector` command: the app's commands (connector.cli), on an app made first."""

from __future__ import annotations

import sys

import click
from flask.cli import FlaskGroup

from connector.app import create_app
from connector.config import ConfigError


def main() -> None:
    # The app is made before any command runs, so that a configuration that cannot
    # serve (see connector.config) stops every command with one line, not a traceback.
    try:
        app = create_app()
    except ConfigError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(1)
    cli = FlaskGroup(create_app=lambda: app, add_default_commands=False, add_version_option=False)
    cli.main(prog_name="connector")
