"""The LLM resource against a real loopback HTTP server: ledger reuse, concurrency,
retries with backoff and Retry-After, failures recorded but never served, the ledger
written while a stage runs, spending cap, and how real failures are classified."""

import asyncio
import random
import socket
import time
from collections import defaultdict

import duckdb
import litellm
import pytest

from tests.support.loopback_openai import LoopbackOpenAI
from webr_dagster.resources import llm
from webr_dagster.resources.completion import MalformedReply, classify_failure
from webr_dagster.resources.llm import BudgetExhausted, LLMResource, backoff_seconds


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


def _waits_by_call(server) -> list[list[float]]:
    """For each call, the gaps between its attempts as the server saw them arrive."""
    times = defaultdict(list)
    for arrived, key, _ in server.arrivals:
        times[key].append(arrived)
    return [[b - a for a, b in zip(t, t[1:])] for t in times.values()]


def test_calls_are_concurrent_and_answered_from_ledger_on_rerun(tmp_path):
    with LoopbackOpenAI(latency_s=1.0) as server:
        resource = _resource(server, tmp_path)
        results, stats = _run(resource, 60)
        assert all(r.ok and r.content for r in results)
        assert stats.sent == 60 and server.requests_total == 60
        # One at a time, the server would never hold two; 20 may be open at once (the
        # long latency leaves a loaded machine time to send ten before any returns).
        assert server.max_in_flight >= 10
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


def test_retry_after_is_waited_before_the_next_attempt(tmp_path):
    # Backoff alone would wait at most 1 ms; the server asks for 1.5 s.
    with LoopbackOpenAI(script=["429"] * 4, retry_after_s=1.5) as server:
        resource = _resource(server, tmp_path, backoff_base_s=0.001, backoff_cap_s=0.001)
        results, _ = _run(resource, 4)
        assert all(r.ok for r in results)
        waits = _waits_by_call(server)
    assert sorted(len(w) for w in waits) == [1, 1, 1, 1]
    assert min(w[0] for w in waits) >= 1.5  # a lower bound: a loaded machine only adds


def test_each_retry_waits_the_backoff_of_its_attempt(tmp_path, monkeypatch):
    drawn = []  # (attempt, seconds) of every backoff the session asks for, in order

    def recorded_backoff(attempt, base, cap, retry_after):
        seconds = backoff_seconds(attempt, base, cap, retry_after)
        drawn.append((attempt, seconds))
        return seconds

    monkeypatch.setattr(llm, "backoff_seconds", recorded_backoff)
    with LoopbackOpenAI(fault_rate=1.0, faults=("500",)) as server:
        # One call at a time, so the n-th wait drawn is the n-th gap between arrivals.
        resource = _resource(server, tmp_path, concurrency=1, max_attempts=4,
                             backoff_base_s=0.3, backoff_cap_s=30)
        results, _ = _run(resource, 4)
        assert not any(r.ok for r in results)
        waits = _waits_by_call(server)
    assert [attempt for attempt, _ in drawn] == [1, 2, 3] * 4  # the bound doubles per attempt
    gaps = [gap for call in waits for gap in call]
    assert len(gaps) == len(drawn) == 12
    # Every retry waited at least what was drawn for it (a loaded machine only adds).
    assert all(gap >= seconds for gap, (_, seconds) in zip(gaps, drawn))
    assert sum(seconds for _, seconds in drawn) > 0.5  # about 4.2 s expected: not all ~0


def test_backoff_grows_to_its_cap_with_full_jitter():
    rng_state = random.getstate()
    try:
        random.seed(1)
        for attempt in range(1, 8):
            bound = min(5.0, 0.5 * 2 ** (attempt - 1))
            draws = [backoff_seconds(attempt, 0.5, 5.0, None) for _ in range(400)]
            assert all(0 <= d <= bound for d in draws)
            assert max(draws) > 0.9 * bound and min(draws) < 0.1 * bound
    finally:
        random.setstate(rng_state)


def test_retry_after_is_a_floor_on_the_backoff():
    assert all(backoff_seconds(1, 0.5, 5.0, 3.0) >= 3.0 for _ in range(100))
    assert all(backoff_seconds(6, 0.5, 5.0, 0.1) <= 5.0 for _ in range(100))


def test_failed_calls_are_recorded_and_retried_next_run_never_served(tmp_path):
    with LoopbackOpenAI(fault_rate=1.0, faults=("500",)) as server:
        resource = _resource(server, tmp_path, max_attempts=2)
        results, stats = _run(resource, 3)
        assert not any(r.ok for r in results) and stats.failed == 3
        assert all("500" in r.error for r in results)
        server.fault_rate = 0.0
        results, stats = _run(resource, 3, run_id="second")
        assert all(r.ok for r in results) and stats.sent == 3 and stats.cached == 0


def test_replies_reach_the_ledger_file_while_the_stage_runs(tmp_path):
    ledger = tmp_path / "ledger.duckdb"
    with LoopbackOpenAI() as server:
        resource = _resource(server, tmp_path)
        with resource.open_session("r") as session:
            async def five_calls_then_watch_the_ledger():
                replies = await asyncio.gather(*(
                    session.call(_messages(i), stage="t", page_id=str(i), template="t@v1")
                    for i in range(5)))
                # Fewer replies than a write batch, and the stage is still running: only
                # the periodic flush can put them in the file. Watch from another connection.
                deadline = time.monotonic() + 30
                while True:
                    with duckdb.connect(str(ledger)) as watcher:
                        recorded = watcher.execute(
                            "SELECT count(*) FROM llm_calls WHERE status = 'ok'").fetchone()[0]
                    if recorded == 5 or time.monotonic() > deadline:
                        return [r.ok for r in replies], recorded
                    await asyncio.sleep(0.05)
            [(ok, recorded_while_running)] = session.run([five_calls_then_watch_the_ledger])
    assert ok == [True] * 5
    assert recorded_while_running == 5


def test_failures_from_a_real_server_are_classified():
    messages = [{"role": "user", "content": "hello"}]

    def failure(base_url, **options):
        with pytest.raises(Exception) as caught:
            litellm.completion(model="openai/loopback", api_base=base_url, api_key="sk-test",
                               messages=messages, max_retries=0, **options)
        return caught.value

    with LoopbackOpenAI(fault_rate=1.0, faults=("429",), retry_after_s=2.5) as server:
        assert classify_failure(failure(server.base_url)) == (True, "RateLimitError 429", 2.5)
    with LoopbackOpenAI(fault_rate=1.0, faults=("500",)) as server:
        assert classify_failure(failure(server.base_url))[0]
    with LoopbackOpenAI(fault_rate=1.0, faults=("malformed",)) as server:
        assert classify_failure(failure(server.base_url))[0]  # body that is not JSON
        assert classify_failure(failure(server.base_url))[0]  # JSON without choices
    with LoopbackOpenAI(fault_rate=1.0, faults=("hang",), hang_s=30) as server:
        retry, reason, _ = classify_failure(failure(server.base_url, timeout=0.5))
        assert retry and "Timeout" in reason
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    closed_port = listener.getsockname()[1]
    listener.close()  # nothing listens there now: the connection is refused
    assert classify_failure(failure(f"http://127.0.0.1:{closed_port}/v1", timeout=5))[0]
    assert classify_failure(MalformedReply("no content"))[:2] == (True, "malformed_reply")


def test_final_errors_are_not_retried():
    for error in (litellm.AuthenticationError(message="bad key", llm_provider="openai", model="m"),
                  litellm.BadRequestError(message="bad", model="m", llm_provider="openai"),
                  litellm.NotFoundError(message="no model", model="m", llm_provider="openai"),
                  litellm.ContextWindowExceededError(message="long", model="m",
                                                     llm_provider="openai")):
        assert classify_failure(error)[0] is False, error


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


def test_a_failed_ledger_write_is_retried_by_the_next_flush(tmp_path, monkeypatch):
    from webr_dagster.resources.call_ledger import CallLedger

    failures = []
    original = CallLedger.append

    def fail_once(self, rows):
        if rows and not failures:
            failures.append(len(rows))
            raise OSError("disk briefly full")
        return original(self, rows)

    monkeypatch.setattr(CallLedger, "append", fail_once)
    with LoopbackOpenAI(latency_s=0.05) as server:
        resource = _resource(server, tmp_path)
        results, stats = _run(resource, 45)  # more than one batch of rows
        assert failures and all(r.ok for r in results)
        monkeypatch.undo()
        _, again = _run(resource, 45, run_id="again")
        assert again.cached == 45 and server.requests_total == 45
