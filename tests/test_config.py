"""Configuration from the environment: what production refuses, and the new settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.config import ConfigError, check_production, load_config

GOOD_SECRET = "s" * 32
PRODUCTION = {
    "CONNECTOR_ENV": "production",
    "CONNECTOR_SECRET_KEY": GOOD_SECRET,
    "CONNECTOR_PUBLIC_URL": "https://connector.example.com",
}


@pytest.mark.parametrize("value", ["production", "Production", "PRODUCTION", " production "])
def test_production_is_read_in_any_case(tmp_path: Path, value: str) -> None:
    config = load_config({**PRODUCTION, "CONNECTOR_ENV": value}, tmp_path)
    assert config["ENV_NAME"] == "production"


@pytest.mark.parametrize("value", ["", "development", "Development"])
def test_development_is_the_default(tmp_path: Path, value: str) -> None:
    assert load_config({"CONNECTOR_ENV": value}, tmp_path)["ENV_NAME"] == "development"


@pytest.mark.parametrize("value", ["prod", "staging", "dev", "productio"])
def test_an_unknown_environment_is_an_error_not_development(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="CONNECTOR_ENV must be development or production"):
        load_config({**PRODUCTION, "CONNECTOR_ENV": value}, tmp_path)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"CONNECTOR_SECRET_KEY": ""}, "CONNECTOR_SECRET_KEY is required"),
        ({"CONNECTOR_SECRET_KEY": "s" * 31}, "at least 32 characters"),
        ({"CONNECTOR_SECRET_KEY": " " * 40}, "at least 32 characters"),
        ({"CONNECTOR_SECRET_KEY": "s " * 20}, "not counting white space"),
        ({"CONNECTOR_PUBLIC_URL": "http://connector.example.com"}, "must be an https URL"),
        ({"CONNECTOR_PUBLIC_URL": ""}, "must be an https URL"),
    ],
)
def test_production_refuses(tmp_path: Path, changes: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config({**PRODUCTION, **changes}, tmp_path)
    # No secret is generated and kept for production, as it is for development.
    assert not (tmp_path / "secret_key").exists()


def test_a_sound_production_configuration_loads(tmp_path: Path) -> None:
    config = load_config(PRODUCTION, tmp_path)
    assert config["SECRET_KEY"] == GOOD_SECRET
    assert config["PUBLIC_URL"] == "https://connector.example.com"


def test_sqlite_serves_one_worker_only_in_production(tmp_path: Path) -> None:
    config = load_config(PRODUCTION, tmp_path)
    check_production(config, workers=1)
    with pytest.raises(ConfigError, match="SQLite cannot serve 3 worker processes"):
        check_production(config, workers=3)
    postgres = load_config(
        {**PRODUCTION, "CONNECTOR_DATABASE_URL": "postgresql+psycopg://db/connector"}, tmp_path
    )
    check_production(postgres, workers=9)


def test_development_keeps_its_generated_secret(tmp_path: Path) -> None:
    first = load_config({}, tmp_path)["SECRET_KEY"]
    assert len(first) >= 32
    assert load_config({}, tmp_path)["SECRET_KEY"] == first


@pytest.mark.parametrize(("raw", "hops"), [(None, 0), ("", 0), ("0", 0), ("2", 2)])
def test_trusted_proxies(tmp_path: Path, raw: str | None, hops: int) -> None:
    environ = {} if raw is None else {"CONNECTOR_TRUSTED_PROXIES": raw}
    assert load_config(environ, tmp_path)["TRUSTED_PROXIES"] == hops


@pytest.mark.parametrize("raw", ["-1", "one", "1.5"])
def test_trusted_proxies_must_be_a_count(tmp_path: Path, raw: str) -> None:
    with pytest.raises(ConfigError, match="CONNECTOR_TRUSTED_PROXIES"):
        load_config({"CONNECTOR_TRUSTED_PROXIES": raw}, tmp_path)


def test_page_links_default_to_none_and_read_the_environment(tmp_path: Path) -> None:
    assert load_config({}, tmp_path)["PRIVACY_URL"] is None
    config = load_config(
        {
            "CONNECTOR_PRIVACY_URL": "https://acme.test/privacy",
            "CONNECTOR_TERMS_URL": "https://acme.test/terms",
            "CONNECTOR_SUPPORT_URL": "https://acme.test/help",
        },
        tmp_path,
    )
    assert (config["PRIVACY_URL"], config["TERMS_URL"], config["SUPPORT_URL"]) == (
        "https://acme.test/privacy",
        "https://acme.test/terms",
        "https://acme.test/help",
    )


def test_office_frame_ancestors_read_the_environment(tmp_path: Path) -> None:
    assert load_config({}, tmp_path)["OFFICE_FRAME_ANCESTORS"] == ""
    hosts = "https://outlook.example.test https://*.office.example.test"
    environ = {"CONNECTOR_OFFICE_FRAME_ANCESTORS": hosts}
    assert load_config(environ, tmp_path)["OFFICE_FRAME_ANCESTORS"] == hosts


@pytest.mark.parametrize(("raw", "seconds"), [(None, 5.0), ("", 5.0), ("2.5", 2.5), ("30", 30.0)])
def test_db_timeout(tmp_path: Path, raw: str | None, seconds: float) -> None:
    environ = {} if raw is None else {"CONNECTOR_DB_TIMEOUT_SECONDS": raw}
    assert load_config(environ, tmp_path)["DB_TIMEOUT_SECONDS"] == seconds


@pytest.mark.parametrize("raw", ["soon", "0", "0.5", "601", "-3"])
def test_db_timeout_must_be_a_sensible_number_of_seconds(tmp_path: Path, raw: str) -> None:
    with pytest.raises(ConfigError, match="CONNECTOR_DB_TIMEOUT_SECONDS"):
        load_config({"CONNECTOR_DB_TIMEOUT_SECONDS": raw}, tmp_path)
