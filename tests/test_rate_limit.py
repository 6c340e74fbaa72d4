"""WEBR_RPM and WEBR_TPM hold back a real session's calls to the loopback server, timed on
a clock the test moves (the limiter's own arithmetic: tests/test_shared_rate_limit.py)."""

import asyncio
import functools

import pytest
from dagster import build_resources

from webr_dagster.resources import llm
from webr_dagster.resources.environment import resources_from_env
from webr_dagster.resources.shared_rate_limit import SharedRateLimiter


class FakeClock:
    """Time moves only when the limiter waits, by exactly what it asked for."""

    def __init__(self):
        self.time = 1000.0
        self.waits: list[float] = []

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        if len(self.waits) > 10_000:  # a limiter that never gets enough fails, not hangs
            raise RuntimeError("the limiter keeps waiting")
        self.waits.append(seconds)
        self.time += seconds
        await asyncio.sleep(0)

    @property
    def elapsed(self) -> float:
        return self.time - 1000.0


@pytest.fixture
def fake_clock(monkeypatch):
    clock = FakeClock()
    # The session makes its limiter when a stage starts: hand it this clock.
    monkeypatch.setattr(llm, "SharedRateLimiter", functools.partial(SharedRateLimiter, clock=clock))
    return clock


def _messages(i):
    return [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": f"page {i}: a short page about rate limits"}]


def _run_session(count):
    # The resource as a run gets it from WEBR_* (build_resources resolves the EnvVar key).
    with build_resources({"llm": resources_from_env()["llm"]}) as resources:
        resource = resources.llm
        with resource.open_session("rate") as session:
            async def one(i):
                return await session.call(_messages(i), stage="t", page_id=str(i), template="t@v1")
            results = session.run((lambda i=i: one(i)) for i in range(count))
    assert all(not isinstance(r, BaseException) and r.ok for r in results), results
    return resource


def test_webr_rpm_holds_back_a_sessions_calls(webr_env, loopback, fake_clock, monkeypatch):
    monkeypatch.setenv("WEBR_RPM", "6")
    resource = _run_session(10)
    assert resource.requests_per_minute == 6 and loopback.requests_total == 10
    # At 6 a minute, 10 calls take at least (10 - 6) x 10 s even if a whole minute's
    # budget could go at once, and never more than one interval each.
    assert 40.0 - 0.5 <= fake_clock.elapsed <= 100.0 + 0.5


def test_webr_tpm_holds_back_a_sessions_calls(webr_env, loopback, fake_clock, monkeypatch):
    monkeypatch.setenv("WEBR_TPM", "1000")
    monkeypatch.setenv("WEBR_MAX_TOKENS", "200")
    resource = _run_session(10)
    assert resource.tokens_per_minute == 1000 and resource.requests_per_minute is None
    assert loopback.requests_total == 10
    # Each call reserves at least its 200 completion tokens: at most 5 fit in a minute.
    assert fake_clock.elapsed >= (10 - 5) * 12.0 - 0.5


def test_no_limits_set_means_no_waiting(webr_env, loopback, fake_clock, monkeypatch):
    monkeypatch.delenv("WEBR_RPM", raising=False)
    monkeypatch.delenv("WEBR_TPM", raising=False)
    _run_session(10)
    assert fake_clock.waits == [] and loopback.requests_total == 10
