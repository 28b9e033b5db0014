"""Secrets from files (deploy/: Docker secrets, Kubernetes Secrets mounted as files): every secret
setting takes ``<VARIABLE>_FILE``, a database password comes apart from its URL, and a file that
cannot be read is one line naming the variable and the path."""

from __future__ import annotations

import os

import pytest
from sqlalchemy.engine import make_url

from services.common.credentials import temporal_options
from services.common.settings import SecretFileError, Settings
from services.portal.config import PortalSettings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for variable in ("BFEST_TEMPORAL_API_KEY", "BFEST_PORTAL_SECRET", "BFEST_DATABASE_PASSWORD_FILE"):
        monkeypatch.delenv(variable, raising=False)
    for service in ("REGISTRATION", "SCORING"):
        for suffix in ("URL", "URL_FILE", "PASSWORD_FILE"):
            monkeypatch.delenv(f"BFEST_{service}_DATABASE_{suffix}", raising=False)


def secret(tmp_path, name: str, value: str):
    path = tmp_path / name
    path.write_text(value)
    return path


def test_a_secret_setting_is_read_from_its_file_without_the_trailing_newline(tmp_path, monkeypatch):
    monkeypatch.setenv("BFEST_TEMPORAL_API_KEY_FILE", str(secret(tmp_path, "api-key", "tk_live_123\n")))
    settings = Settings()
    assert settings.temporal_api_key is not None
    assert settings.temporal_api_key.get_secret_value() == "tk_live_123"
    assert temporal_options(settings)["api_key"] == "tk_live_123"
    assert "tk_live_123" not in repr(settings)  # still a SecretStr: never printed


def test_the_portal_secret_comes_from_its_file(tmp_path, monkeypatch):
    monkeypatch.setenv("BFEST_PORTAL_SECRET_FILE", str(secret(tmp_path, "portal", "s3cr3t-cookie-key\n")))
    portal = PortalSettings()
    assert portal.secret is not None and portal.secret.get_secret_value() == "s3cr3t-cookie-key"


def test_a_variable_and_its_file_together_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("BFEST_TEMPORAL_API_KEY", "one")
    monkeypatch.setenv("BFEST_TEMPORAL_API_KEY_FILE", str(secret(tmp_path, "api-key", "two")))
    with pytest.raises(SecretFileError, match="set BFEST_TEMPORAL_API_KEY or BFEST_TEMPORAL_API_KEY_FILE, not both"):
        Settings()


def test_a_missing_secret_file_names_the_variable_and_the_path(tmp_path, monkeypatch):
    missing = tmp_path / "nope"
    monkeypatch.setenv("BFEST_PORTAL_SECRET_FILE", str(missing))
    with pytest.raises(SecretFileError) as caught:
        PortalSettings()
    assert str(caught.value) == f"BFEST_PORTAL_SECRET_FILE: cannot read {missing} (No such file or directory)"


def test_the_database_password_file_replaces_the_urls_password_and_survives_url_quoting(tmp_path, monkeypatch):
    monkeypatch.setenv("BFEST_REGISTRATION_DATABASE_URL", "postgresql+asyncpg://bfest@postgres:5432/registration")
    monkeypatch.setenv("BFEST_REGISTRATION_DATABASE_PASSWORD_FILE", str(secret(tmp_path, "pw", "p@ss/w:rd%?\n")))
    url = make_url(Settings().database_url("registration"))
    assert (url.username, url.password, url.host, url.port, url.database) == ("bfest", "p@ss/w:rd%?", "postgres", 5432, "registration")
    assert url.drivername == "postgresql+asyncpg"


def test_one_password_file_serves_every_service_and_a_services_own_file_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("BFEST_DATABASE_PASSWORD_FILE", str(secret(tmp_path, "shared", "shared-pw")))
    monkeypatch.setenv("BFEST_REGISTRATION_DATABASE_URL", "postgresql+asyncpg://bfest:old@postgres/registration")
    monkeypatch.setenv("BFEST_SCORING_DATABASE_URL", "postgresql+asyncpg://bfest:old@postgres/scoring")
    monkeypatch.setenv("BFEST_SCORING_DATABASE_PASSWORD_FILE", str(secret(tmp_path, "own", "scoring-pw")))
    settings = Settings()
    assert make_url(settings.database_url("registration")).password == "shared-pw"
    assert make_url(settings.database_url("scoring")).password == "scoring-pw"


def test_the_whole_database_url_may_come_from_a_file(tmp_path, monkeypatch):
    monkeypatch.setenv("BFEST_SCORING_DATABASE_URL_FILE", str(secret(tmp_path, "url", "postgresql+asyncpg://u:pw@db/scoring\n")))
    assert Settings().database_url("scoring") == "postgresql+asyncpg://u:pw@db/scoring"


def test_without_a_url_the_password_file_changes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("BFEST_DATABASE_PASSWORD_FILE", str(secret(tmp_path, "shared", "pw")))
    settings = Settings(var_dir=tmp_path)
    assert settings.database_url("awards") == f"sqlite+aiosqlite:///{(tmp_path / 'awards.db').resolve()}"


@pytest.mark.postgres
async def test_a_password_from_a_file_reaches_postgresql(tmp_path, monkeypatch):
    """The URL the services get still connects (the test server trusts any password; what is
    proven is that the rewritten URL is one asyncpg accepts and sends)."""
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    postgres = os.environ.get("BFEST_TEST_POSTGRES_URL")
    if not postgres:
        pytest.skip("BFEST_TEST_POSTGRES_URL is not set (CI sets it to the local PostgreSQL)")
    base = make_url(postgres).set(password=None).render_as_string(hide_password=False)
    monkeypatch.setenv("BFEST_AWARDS_DATABASE_URL", base)
    monkeypatch.setenv("BFEST_AWARDS_DATABASE_PASSWORD_FILE", str(secret(tmp_path, "pw", "a:b@c/d\n")))
    url = Settings().database_url("awards")
    assert make_url(url).password == "a:b@c/d"
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(sa.text("SELECT 1"))).scalar() == 1
    finally:
        await engine.dispose()
