"""A call worker that dies mid-stage: its in-flight calls fail with the cause, a fresh
worker finishes the rest, the counts match the ledger, and a pool whose workers keep
dying stops the stage with that reason instead of hanging."""

import asyncio
import os
import re
import signal
import threading
import time

import duckdb
import pytest

from tests.support.loopback_openai import LoopbackOpenAI
from webr_dagster.cli import main
from webr_dagster.resources import call_workers
from webr_dagster.resources.call_workers import CallWorkerPool, CallWorkersFailed

SETUP = {"local_model_threads": None, "prices": None}


def _request(server, i):
    return {"model": "openai/loopback", "api_base": server.base_url, "api_key": "sk-test",
            "messages": [{"role": "user", "content": f"question {i}"}], "max_retries": 0,
            "timeout": 30}


def _wait_for(condition, timeout_s=120):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def _kill_worker_when(pool_ready, server, requests_seen):
    """Kill, with SIGKILL, a call worker that has calls in flight, once the server has seen
    some requests."""
    killed = {}

    def busy_worker():
        pool = pool_ready()
        if pool is None or server.requests_total < requests_seen:
            return None
        return next((pid for pid, calls in pool.in_flight().items() if calls), None)

    def watch():
        deadline = time.monotonic() + 120
        while (pid := busy_worker()) is None:
            assert time.monotonic() < deadline, "no worker had calls in flight"
            time.sleep(0.02)
        killed["pid"] = pid
        os.kill(pid, signal.SIGKILL)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread, killed


def test_sigkilled_worker_fails_its_calls_with_the_cause_and_is_replaced(
        webr_env, corpora, monkeypatch, capsys):
    call_workers._pools.clear()
    monkeypatch.setenv("WEBR_CALL_PROCESSES", "2")
    with LoopbackOpenAI(latency_s=0.3) as server:
        monkeypatch.setenv("WEBR_API_BASE", server.base_url)
        pools = lambda: next(iter(call_workers._pools.values()), None)  # noqa: E731
        watcher, killed = _kill_worker_when(pools, server, requests_seen=60)
        code = main(["run", str(corpora / "webr-sample" / "web_en_1k.json"), "--limit", "80"])
        watcher.join(timeout=5)
        out = capsys.readouterr().out
        pool = pools()
    assert killed["pid"] and pool.restarts == 1 and pool.broken is None
    assert killed["pid"] not in pool.pids and len(pool.pids) == 2
    con = duckdb.connect(str(webr_env / "llm_calls.duckdb"), read_only=True)
    died = con.execute("SELECT count(DISTINCT call_key) FROM llm_calls "
                       "WHERE error LIKE 'worker died: SIGKILL%'").fetchone()[0]
    no_reply = con.execute("""SELECT count(*) FROM (SELECT call_key FROM llm_calls
                              GROUP BY call_key HAVING bool_or(status = 'ok') = false)""").fetchone()[0]
    answered_after_kill = con.execute("""SELECT count(*) FROM llm_calls WHERE status = 'ok'
        AND created_at > (SELECT min(created_at) FROM llm_calls WHERE error LIKE 'worker died%')""").fetchone()[0]
    con.close()
    assert died >= 1  # the calls in flight on the killed worker, recorded with the cause
    assert answered_after_kill > 50  # the replacement (and the other worker) went on
    failed = int(re.search(r"(\d+) failed;", out).group(1))
    assert failed == no_reply == died, out
    assert code == 0, out  # a few failed calls are under --max-failed-share


def test_pool_whose_workers_keep_dying_stops_with_the_cause():
    with LoopbackOpenAI(latency_s=5.0) as server:
        pool = CallWorkerPool(1, SETUP, max_restarts=1)
        try:
            async def first_call_then_kill():
                call = asyncio.ensure_future(pool.complete(_request(server, 1), route=0))
                await asyncio.to_thread(_wait_for, lambda: server.requests_total >= 1)
                os.kill(pool.pids[0], signal.SIGKILL)
                return await call

            started = time.monotonic()
            reply = asyncio.run(first_call_then_kill())
            assert not reply.ok and not reply.retry and reply.reason == "worker died: SIGKILL"
            assert time.monotonic() - started < 5.0  # not left waiting for the reply
            _wait_for(lambda: len(pool.pids) == 1 and pool.restarts == 1)

            os.kill(pool.pids[0], signal.SIGKILL)  # the replacement dies too: no restarts left
            _wait_for(lambda: pool.broken is not None)
            with pytest.raises(CallWorkersFailed, match="worker died: SIGKILL"):
                asyncio.run(pool.complete(_request(server, 2), route=0))
        finally:
            pool.close()


def test_workers_started_ahead_are_the_ones_the_stage_uses(tmp_path, monkeypatch):
    from webr_dagster.resources.llm import LLMResource

    monkeypatch.setattr(call_workers, "_pools", {})  # this test's pools only
    with LoopbackOpenAI() as server:
        resource = LLMResource(model="openai/loopback", api_base=server.base_url,
                               api_key="sk-test", ledger_path=str(tmp_path / "ledger.duckdb"),
                               call_processes=2)
        resource.start_call_workers(jobs=10)  # returns at once; workers start behind
        _wait_for(lambda: call_workers._pools)
        [early] = call_workers._pools.values()
        _wait_for(lambda: len(early.pids) == 2)
        started = set(early.pids)

        with resource.open_session("r") as session:
            async def one(i):
                return await session.call([{"role": "user", "content": f"q{i}"}],
                                          stage="t", page_id=str(i), template="t@v1")
            results = session.run((lambda i=i: one(i)) for i in range(10))
        assert all(r.ok for r in results)
        assert list(call_workers._pools.values()) == [early] and set(early.pids) == started
        early.close()
    # auto mode starts nothing for a stage too small to be worth workers
    assert LLMResource(model="openai/x", ledger_path=str(tmp_path / "l2.duckdb"))\
        .call_workers_for(10) == 0
