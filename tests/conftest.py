"""Shared fixtures: the real corpora beside the checkout, an isolated WEBR_HOME and
DAGSTER_HOME per test, and the loopback OpenAI-compatible server."""

import os
from pathlib import Path

import pytest

# litellm must never fetch its price map from the network.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

from tests.support.loopback_openai import LoopbackOpenAI  # noqa: E402

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
