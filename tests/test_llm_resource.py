"""The LLM resource against a real loopback HTTP server: ledger reuse, concurrency,
retries through faults, failures recorded but never served, spending cap."""

import time

import duckdb

from tests.support.loopback_openai import LoopbackOpenAI
from webr_dagster.resources.llm import BudgetExhausted, LLMResource, classify_failure


def _resource(server, tmp_path, **overrides):
    options = dict(model="openai/loopback", api_base=server.base_url, api_key="sk-test",
                   ledger_path=str(tmp_path / "ledger.duckdb"), concurrency=20,
                   timeout_s=5, backoff_base_s=0.05, backoff_cap_s=0.5)
    options.update(overrides)
    return LLMResource(**options)


def _messages(i):
    return [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": f"page {i}: " + " ".join(f"word{i}x{j}" for j in range(40))}]


def _run(resource, count, run_id="run"):
    with resource.open_session(run_id) as session:
        async def one(i):
            return await session.call(_messages(i), stage="test", page_id=str(i), template="t@v1")
        results = session.run((lambda i=i: one(i)) for i in range(count))
    return results, session.stats


def test_calls_are_concurrent_and_answered_from_ledger_on_rerun(tmp_path):
    with LoopbackOpenAI(latency_s=0.2) as server:
        resource = _resource(server, tmp_path)
        _run(_resource(server, tmp_path / "warm"), 1)  # litellm's one-time import and set-up
        server.reset_counters()
        started = time.monotonic()
        results, stats = _run(resource, 60)
        elapsed = time.monotonic() - started
        assert all(r.ok and r.content for r in results)
        assert stats.sent == 60 and server.requests_total == 60
        # 60 calls x 0.2 s one at a time take 12 s; 20 at a time about 0.6 s.
        assert elapsed < 4
        results2, stats2 = _run(resource, 60, run_id="again")
        assert server.requests_total == 60  # nothing sent again
        assert stats2.cached == 60 and [r.content for r in results2] == [r.content for r in results]


def test_identical_calls_in_flight_are_sent_once(tmp_path):
    with LoopbackOpenAI(latency_s=0.1) as server:
        resource = _resource(server, tmp_path)
        with resource.open_session("r") as session:
            async def same():
                return await session.call(_messages(1), stage="t", page_id="p", template="t@v1")
            results = session.run([same, same, same])
        assert len({r.content for r in results}) == 1
        assert server.requests_total == 1


def test_faults_are_retried_and_nothing_is_paid_twice(tmp_path):
    with LoopbackOpenAI(latency_s=0.01, fault_rate=0.3, hang_s=3, seed=3,
                        retry_after_s=0.05) as server:
        resource = _resource(server, tmp_path, timeout_s=1, max_attempts=8)
        results, stats = _run(resource, 40)
        assert all(r.ok for r in results), [r.error for r in results if not r.ok]
        assert stats.retries > 0
        assert server.replies_ok >= 40
        assert max(server.ok_reply_keys.values()) == 1  # no call answered twice
        con = duckdb.connect(str(tmp_path / "ledger.duckdb"), read_only=True)
        statuses = dict(con.sql("SELECT status, count(*) FROM llm_calls GROUP BY 1").fetchall())
        con.close()
        assert statuses["ok"] == 40 and statuses.get("error", 0) == stats.retries


def test_failed_calls_are_recorded_and_retried_next_run_never_served(tmp_path):
    with LoopbackOpenAI(fault_rate=1.0, faults=("500",)) as server:
        resource = _resource(server, tmp_path, max_attempts=2)
        results, stats = _run(resource, 3)
        assert not any(r.ok for r in results) and stats.failed == 3
        assert all("500" in r.error for r in results)
        server.fault_rate = 0.0
        results, stats = _run(resource, 3, run_id="second")
        assert all(r.ok for r in results) and stats.sent == 3 and stats.cached == 0


def test_malformed_and_final_errors_are_classified():
    class Status(Exception):
        def __init__(self, code):
            self.status_code = code
    assert classify_failure(Status(429))[0] and classify_failure(Status(503))[0]
    assert not classify_failure(Status(401))[0]
    assert not classify_failure(Status(400))[0]


def test_spending_cap_stops_new_calls_and_keeps_paid_ones(tmp_path):
    with LoopbackOpenAI(latency_s=0.01) as server:
        resource = _resource(server, tmp_path, concurrency=2, max_cost_usd=0.001,
                             input_usd_per_million_tokens=10.0,
                             output_usd_per_million_tokens=10.0)
        results, stats = _run(resource, 50)
        paid = [r for r in results if not isinstance(r, BaseException) and r.ok]
        stopped = [r for r in results if isinstance(r, BudgetExhausted)]
        assert paid and stopped and len(paid) + len(stopped) == 50
        assert stats.cost_usd <= 0.001 + 2 * max(r.cost_usd for r in paid)
        assert server.requests_total == len(paid)


def test_calls_run_in_process_when_workers_cannot_start(tmp_path, monkeypatch):
    from webr_dagster.resources import call_workers

    def broken_pool(*args, **kwargs):
        raise RuntimeError("a call worker process failed to start")

    monkeypatch.setattr(call_workers, "shared_pool", broken_pool)
    warnings = []

    class Log:
        def warning(self, message):
            warnings.append(message)

        def info(self, message):
            pass

    with LoopbackOpenAI() as server:
        resource = _resource(server, tmp_path, call_processes=2)
        with resource.open_session("r", Log()) as session:
            async def one():
                return await session.call(_messages(7), stage="t", page_id="p", template="t@v1")
            [result] = session.run([one])
        assert result.ok and server.replies_ok == 1
        assert warnings and "did not start" in warnings[0]
