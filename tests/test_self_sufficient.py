"""A fresh clone needs nothing beside it: no tracked file reaches into a sibling folder."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# A relative path up into the sibling folder, or one built with the path operator (the
# pattern is spelled in two parts so that this file does not match itself).
SIBLING = re.compile(r"\.\./" + r"shared|[\"']shared[\"']\s*/")


def tracked_files() -> list[Path]:
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=30,
    ).stdout.decode()
    return [ROOT / name for name in listing.split("\0") if name]


def test_no_file_reads_a_sibling_folder() -> None:
    offenders = []
    for path in tracked_files():
        if path.suffix == ".md" or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        offenders += [
            f"{path.relative_to(ROOT)}:{number}"
            for number, line in enumerate(text.splitlines(), 1)
            if SIBLING.search(line)
        ]
    assert offenders == []


def test_the_office_schemas_are_in_the_repository() -> None:
    schemas = ROOT / "tests" / "schemas" / "office-addin-manifest"
    assert (schemas / "OfficeAppManifestV1_1.xsd").is_file()
    assert "licence" in (schemas / "README.md").read_text().lower()
