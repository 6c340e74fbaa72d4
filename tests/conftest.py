"""Shared fixtures: the real corpora beside the checkout, an isolated WEBR_HOME and
DAGSTER_HOME per test, and the loopback OpenAI-compatible server."""

import os
from pathlib import Path

import pytest

# litellm must never fetch its price map from the network.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

from tests.support.loopback_openai import LoopbackOpenAI  # noqa: E402
from tests.support.postgres import new_database  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORPORA = SHARED / "corpora"


@pytest.fixture
def corpora() -> Path:
    assert CORPORA.is_dir(), f"the shared corpora are expected at {CORPORA}"
    return CORPORA


@pytest.fixture
def loopback():
    with LoopbackOpenAI(latency_s=0.0) as server:
        yield server


@pytest.fixture
def webr_env(tmp_path, monkeypatch, loopback):
    """WEBR_* variables pointing at a fresh home and at the loopback server."""
    home = tmp_path / "webr_home"
    monkeypatch.setenv("WEBR_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    monkeypatch.setenv("WEBR_MODEL", "openai/loopback")
    monkeypatch.setenv("WEBR_API_BASE", loopback.base_url)
    monkeypatch.setenv("WEBR_API_KEY", "sk-loopback-secret-value")
    monkeypatch.setenv("WEBR_CONCURRENCY", "32")
    for name in ("WEBR_MAX_COST_USD", "WEBR_SEED", "WEBR_TEST_SHARE"):
        monkeypatch.delenv(name, raising=False)
    from webr_dagster.instance import ensure_dagster_home
    from webr_dagster.resources.storage import WebRHome

    ensure_dagster_home(WebRHome(home).ensure())
    return home


# ----------------------------------------------------------------------------- services
# PostgreSQL and Redis for the DuckLake and Celery tests, started by .ci/start-services
# (which .ci/run calls). Absent, those tests skip, unless WEBR_REQUIRE_SERVICES is set (CI
# sets it): then a missing service fails them, so nothing broken hides behind a skip.


def _service(variable: str, what: str) -> str:
    value = os.environ.get(variable)
    if not value:
        message = f"{what} is not running: eval \"$(.ci/start-services)\" starts it"
        if os.environ.get("WEBR_REQUIRE_SERVICES"):
            pytest.fail(message)
        pytest.skip(message)
    return value


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    return _service("WEBR_TEST_POSTGRES", "PostgreSQL")


@pytest.fixture(scope="session")
def redis_url() -> str:
    return _service("WEBR_TEST_REDIS", "Redis")


@pytest.fixture
def lake_env(webr_env, postgres_dsn, monkeypatch):
    """webr_env with WEBR_STORAGE=ducklake: a fresh catalog database, data under the home."""
    catalog = f"postgres:dbname={new_database(postgres_dsn, 'webr_lake')} {postgres_dsn}"
    monkeypatch.setenv("WEBR_STORAGE", "ducklake")
    monkeypatch.setenv("WEBR_LAKE_CATALOG", catalog)
    monkeypatch.setenv("WEBR_LAKE_DATA", str(webr_env / "lake_data"))
    return webr_env
