"""The privacy, terms and support pages, and the manifests' links to them."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from lxml import etree

BASE = "https://connector.example.com"
PAGES = {"privacy": "Privacy", "terms": "Terms of use", "support": "Support"}


@pytest.mark.parametrize(("page", "title"), PAGES.items())
def test_pages_are_served(client, page: str, title: str) -> None:
    response = client.get(f"/{page}")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert f"<h1>{title}</h1>" in html
    for other in PAGES:
        assert f'href="/{other}"' in html


def test_configured_addresses_take_over(app, client) -> None:
    app.config["PRIVACY_URL"] = "https://acme.test/legal/privacy"
    response = client.get("/privacy")
    assert response.status_code == 302
    assert response.headers["Location"] == "https://acme.test/legal/privacy"
    assert client.get("/terms").status_code == 200


def outlook_links(runner, tmp_path: Path) -> dict[str, str]:
    result = runner.invoke(
        args=["manifest", "outlook", "--base-url", BASE, "--output-dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    root = etree.parse(str(tmp_path / "manifest.xml")).getroot()
    developer = json.loads((tmp_path / "manifest.json").read_text())["developer"]
    return {
        "SupportUrl": root.find("{*}SupportUrl").get("DefaultValue"),
        "websiteUrl": developer["websiteUrl"],
        "privacyUrl": developer["privacyUrl"],
        "termsOfUseUrl": developer["termsOfUseUrl"],
    }


def test_manifests_link_to_the_pages_by_default(runner, client, tmp_path: Path) -> None:
    links = outlook_links(runner, tmp_path)
    assert links == {
        "SupportUrl": f"{BASE}/support",
        "websiteUrl": f"{BASE}/support",
        "privacyUrl": f"{BASE}/privacy",
        "termsOfUseUrl": f"{BASE}/terms",
    }
    for url in links.values():
        assert client.get(urlsplit(url).path).status_code == 200, url
    gmail = runner.invoke(
        args=["manifest", "gmail", "--base-url", BASE, "--output", str(tmp_path / "d.json")]
    )
    assert gmail.exit_code == 0, gmail.output
    # The descriptor has no such fields: the command says what the store listing needs.
    for page in PAGES:
        assert f"{BASE}/{page}" in gmail.output


def test_manifests_link_to_the_configured_addresses(app, runner, tmp_path: Path) -> None:
    app.config.update(
        PRIVACY_URL="https://acme.test/privacy",
        TERMS_URL="https://acme.test/terms",
        SUPPORT_URL="https://help.acme.test/",
    )
    assert outlook_links(runner, tmp_path) == {
        "SupportUrl": "https://help.acme.test/",
        "websiteUrl": "https://help.acme.test/",
        "privacyUrl": "https://acme.test/privacy",
        "termsOfUseUrl": "https://acme.test/terms",
    }
