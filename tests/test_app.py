"""The app factory, settings from the environment, the secret key file, health and migrations."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from contactcenter.app import create_app
from contactcenter.config import Settings, SettingsError, ensure_secret_key
from contactcenter.db import Base, Database, import_models


def _dispose(app: Any) -> None:
    app.extensions["contactcenter"].db.dispose()


# --- the secret key ---------------------------------------------------------------------

def test_generates_and_keeps_a_secret_key_file(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "data"
    settings = Settings(data_dir=data, testing=True)
    app = create_app(settings)
    _dispose(app)
    key_file = data / "secret_key"
    assert key_file.is_file()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()
    assert len(key) >= 32
    assert app.config["SECRET_KEY"] == key

    again = create_app(settings)
    _dispose(again)
    assert again.config["SECRET_KEY"] == key
    assert key_file.read_text().strip() == key


def test_secret_key_file_mode_ignores_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        settings = ensure_secret_key(Settings(data_dir=tmp_path / "data"))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "data" / "secret_key").stat().st_mode) == 0o600
    assert settings.secret_key


def test_sessions_survive_a_restart(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", testing=True)
    first, second = create_app(settings), create_app(settings)
    try:
        interface: Any = first.session_interface
        cookie = interface.get_signing_serializer(first).dumps({"user_id": 7})
        reader = interface.get_signing_serializer(second)
        assert reader.loads(cookie) == {"user_id": 7}
    finally:
        _dispose(first)
        _dispose(second)


def test_configured_secret_key_wins_and_writes_no_file(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", secret_key="s" * 32, testing=True)
    app = create_app(settings)
    _dispose(app)
    assert app.config["SECRET_KEY"] == "s" * 32
    assert not (tmp_path / "data" / "secret_key").exists()


def test_redis_without_secret_key_is_refused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", redis_url="redis://127.0.0.1:6379/0")
    with pytest.raises(SettingsError, match="SECRET_KEY"):
        create_app(settings)
    assert not (tmp_path / "data" / "secret_key").exists()


def test_short_secret_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="at least 16"):
        create_app(Settings(data_dir=tmp_path / "data", secret_key="short"))


# --- settings from the environment ------------------------------------------------------

def test_from_env_parses_types() -> None:
    settings = Settings.from_env({
        "CONTACTCENTER_DATA_DIR": "~/cc-data",
        "CONTACTCENTER_PORT": " 8080 ",
        "CONTACTCENTER_SMTP_PORT": "2526",
        "CONTACTCENTER_SESSION_COOKIE_SECURE": "yes",
        "CONTACTCENTER_DEMO": "On",
        "CONTACTCENTER_TESTING": "0",
        "CONTACTCENTER_PUBLIC_URL": " https://desk.example.test ",
        "CONTACTCENTER_REOPEN_WINDOW_DAYS": "30",
        "PATH": "/usr/bin",
        "OTHER_PREFIX_PORT": "x",
    })
    assert settings.data_dir == Path("~/cc-data").expanduser()
    assert isinstance(settings.data_dir, Path)
    assert settings.port == 8080 and isinstance(settings.port, int)
    assert settings.smtp_port == 2526
    assert settings.session_cookie_secure is True
    assert settings.demo is True
    assert settings.testing is False
    assert settings.public_url == "https://desk.example.test"
    assert settings.reopen_window_days == 30
    assert settings.extra_warnings == ()


def test_from_env_defaults() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.effective_database_url.startswith("sqlite:///")
    assert settings.effective_database_url.endswith("/data/contactcenter.db")
    assert not settings.scaled


@pytest.mark.parametrize("raw,expected", [("1", True), ("true", True), ("TRUE", True),
                                          ("yes", True), ("on", True), ("0", False),
                                          ("false", False), ("no", False), ("off", False),
                                          ("", False)])
def test_from_env_bools(raw: str, expected: bool) -> None:
    assert Settings.from_env({"CONTACTCENTER_DEMO": raw}).demo is expected


def test_from_env_warns_on_unknown_keys(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="contactcenter.config"):
        settings = Settings.from_env({"CONTACTCENTER_DATABSE_URL": "postgresql://x",
                                      "CONTACTCENTER_PORT": "5001"})
    assert settings.port == 5001
    assert settings.database_url == ""
    assert settings.extra_warnings == ("unknown setting CONTACTCENTER_DATABSE_URL ignored",)
    assert "CONTACTCENTER_DATABSE_URL" in caplog.text


@pytest.mark.parametrize("key,raw", [("CONTACTCENTER_PORT", "eighty"),
                                     ("CONTACTCENTER_PORT", "-1"),
                                     ("CONTACTCENTER_PORT", "80.5"),
                                     ("CONTACTCENTER_PORT", ""),
                                     ("CONTACTCENTER_EVENT_RETENTION", "10k")])
def test_from_env_rejects_bad_ints(key: str, raw: str) -> None:
    with pytest.raises(SettingsError, match=key):
        Settings.from_env({key: raw})


@pytest.mark.parametrize("raw", ["maybe", "2", "y"])
def test_from_env_rejects_bad_bools(raw: str) -> None:
    with pytest.raises(SettingsError, match="CONTACTCENTER_DEMO"):
        Settings.from_env({"CONTACTCENTER_DEMO": raw})


def test_settings_error_is_a_value_error() -> None:
    assert issubclass(SettingsError, ValueError)


# --- the running app --------------------------------------------------------------------

def test_healthz(client: Any) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_healthz_on_an_empty_data_dir(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path / "data", testing=True))
    try:
        assert app.test_client().get("/healthz").status_code == 200
    finally:
        _dispose(app)


def test_create_app_registers_everything(app: Any) -> None:
    services = app.extensions["contactcenter"]
    assert services.settings.testing is True
    assert services.registry.get("api").kind == "api"
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert {"healthz", "ui.login", "ui.desk", "api.show_ticket", "api.openapi"} <= endpoints
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


# --- migrations ---------------------------------------------------------------------------

def _schema_diff(database: Database) -> list[Any]:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import_models()
    with database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True,
                                                         "render_as_batch": True})
        return list(compare_metadata(context, Base.metadata))


def test_migrations_match_the_models(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'migrated.db'}")
    try:
        database.upgrade()
        assert _schema_diff(database) == []
    finally:
        database.dispose()


def test_migrations_downgrade_and_upgrade_again(tmp_path: Path) -> None:
    from sqlalchemy import inspect

    database = Database(f"sqlite:///{tmp_path / 'roundtrip.db'}")
    try:
        database.upgrade()
        tables = set(inspect(database.engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
        from alembic import command

        from contactcenter.db import alembic_config

        command.downgrade(alembic_config(database.url, database.engine), "base")
        assert set(inspect(database.engine).get_table_names()) <= {"alembic_version"}
        database.upgrade()
        assert _schema_diff(database) == []
    finally:
        database.dispose()


def test_upgrade_is_idempotent(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'twice.db'}")
    try:
        database.upgrade()
        database.upgrade()
        with database.engine.connect() as conn:
            from sqlalchemy import text

            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        database.dispose()


def test_the_phone_region_is_a_country_code() -> None:
    assert Settings.from_env({"CONTACTCENTER_PHONE_REGION": " ru "}).phone_region == "RU"
    assert Settings().phone_region == "US"
    for bad in ("", "XX", "Russia"):
        with pytest.raises(SettingsError, match="CONTACTCENTER_PHONE_REGION"):
            Settings.from_env({"CONTACTCENTER_PHONE_REGION": bad})
