"""The Outlook XML manifest: valid against Microsoft's schemas, every resid defined, all https."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

# Microsoft's XSDs, kept in the repository (see the README there for source, licence, mends).
SCHEMAS = Path(__file__).resolve().parent / "schemas" / "office-addin-manifest"
BASE = "https://connector.example.test"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
BT = "{http://schemas.microsoft.com/office/officeappbasictypes/1.0}"


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    entry = SCHEMAS / "OfficeAppManifestV1_1.xsd"
    if not entry.exists():
        pytest.fail(f"Microsoft's manifest schemas are missing: {entry}")
    return etree.XMLSchema(etree.parse(str(entry)))


def write(runner, app, tmp_path, client_id: str | None) -> etree._Element:
    app.config["MS_CLIENT_ID"] = client_id or ""
    result = runner.invoke(
        args=["manifest", "outlook", "--base-url", BASE, "--output-dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    return etree.parse(str(tmp_path / "manifest.xml")).getroot()


@pytest.mark.parametrize("client_id", [None, CLIENT_ID])
def test_manifest_is_valid(runner, app, tmp_path, schema, client_id) -> None:
    root = write(runner, app, tmp_path, client_id)
    schema.assertValid(root)
    names = [el.tag.split("}")[1] for el in root.iter(etree.Element)]
    assert ("WebApplicationInfo" in names) is bool(client_id)
    assert root.findtext("{*}Permissions") == "ReadItem"
    rule = root.find("{*}Rule/{*}Rule")
    assert (rule.get("ItemType"), rule.get("FormType")) == ("Message", "Read")
    assert root.find("{*}Requirements/{*}Sets/{*}Set").get("MinVersion") == "1.1"
    assert [el.text for el in root.iter("{*}SupportsPinning")] == ["true"]
    assert len(list(root.iter("{*}ExtensionPoint"))) == 3  # 1.0 desktop; 1.1 desktop, mobile


def test_every_resid_is_defined_and_every_url_is_https(runner, app, tmp_path) -> None:
    root = write(runner, app, tmp_path, CLIENT_ID)

    def owner(element: etree._Element) -> etree._Element:
        return next(a for a in element.iterancestors() if a.tag.endswith("}VersionOverrides"))

    for overrides in root.iter("{*}VersionOverrides"):
        # Each VersionOverrides resolves resids in its own Resources (not a nested one's).
        mine = [
            el
            for el in overrides.iter(etree.Element)
            if el is not overrides and owner(el) is overrides
        ]
        defined = {
            el.get("id")
            for el in mine
            if el.get("id") and "Resources" in {a.tag.split("}")[1] for a in el.iterancestors()}
        }
        used = {el.get("resid") for el in mine if el.get("resid")}
        assert used and used <= defined, used - defined
    urls = [
        el.get("DefaultValue")
        for el in root.iter(etree.Element)
        if (el.get("DefaultValue") or "").startswith("http")
    ]
    urls += [el.text for el in root.iter("{*}AppDomain")]
    assert urls and all(u.startswith(BASE) for u in urls), urls


def test_icons_and_pane_are_served(client, runner, app, tmp_path) -> None:
    root = write(runner, app, tmp_path, None)
    images = {el.get("DefaultValue") for el in root.iter(f"{BT}Image") if el.get("DefaultValue")}
    assert images
    for url in images | {root.find("{*}IconUrl").get("DefaultValue")}:
        response = client.get(url.removeprefix(BASE))
        assert response.status_code == 200, url
        assert response.data.startswith(b"\x89PNG")


def test_plain_http_is_refused(runner) -> None:
    result = runner.invoke(args=["manifest", "outlook", "--base-url", "http://x.test"])
    assert result.exit_code != 0 and "https" in result.output


APP_MANIFEST = Path(__file__).resolve().parents[1] / "node_modules" / "@microsoft" / "app-manifest"


@pytest.mark.parametrize("client_id", [None, CLIENT_ID])
def test_json_manifest_is_valid(runner, app, tmp_path, client_id) -> None:
    import json

    from jsonschema import Draft4Validator

    write(runner, app, tmp_path, client_id)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    version = manifest["manifestVersion"]
    schema_file = APP_MANIFEST / "build" / "json-schemas" / "teams" / f"v{version}"
    schema_file = schema_file / "MicrosoftTeams.schema.json"
    if not schema_file.exists():
        pytest.fail(
            f"run npm install: the schema of @microsoft/app-manifest is missing ({schema_file})"
        )
    validator = Draft4Validator(json.loads(schema_file.read_text()))
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(manifest)]
    assert errors == []
    assert ("webApplicationInfo" in manifest) is bool(client_id)
    assert manifest["id"] == write(runner, app, tmp_path, client_id).findtext("{*}Id")
    [extension] = manifest["extensions"]
    assert extension["ribbons"][0]["contexts"] == ["mailRead"]
    assert extension["runtimes"][0]["actions"][0]["pinnable"] is True
    for name in ("icon-color.png", "icon-outline.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")


def test_the_manifest_builders_need_no_routes() -> None:
    """Building a manifest does not load the module that serves the pages (its routes)."""
    code = (
        "import sys, connector.manifests.outlook_xml, connector.manifests.outlook_json\n"
        "print('connector.web.pages' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "False"
