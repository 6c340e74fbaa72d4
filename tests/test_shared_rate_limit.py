"""Rate limits hold across processes: one budget per provider key in a file under
WEBR_HOME, refilled smoothly, with a burst of two seconds at most."""

import asyncio
import subprocess
import sys
import time
from pathlib import Path

from tests.support.loopback_openai import LoopbackOpenAI, default_reply
from webr_dagster.resources.shared_rate_limit import SharedRateLimiter, budget_name

ROOT = Path(__file__).resolve().parents[1]

CALLER = """
import sys
from webr_dagster.resources.llm import LLMResource

base, ledger, name, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
resource = LLMResource(model="openai/loopback", api_base=base, api_key="sk-shared",
                       ledger_path=ledger, requests_per_minute=120, concurrency=8,
                       call_processes=0)
with resource.open_session(name) as session:
    def job(i):
        async def run():
            return await session.call([{"role": "user", "content": f"{name} question {i}"}],
                                      stage="t", page_id=f"{name}{i}", template="t")
        return run
    results = session.run(job(i) for i in range(count))
assert all(r.ok for r in results), [r.error for r in results if not r.ok]
"""


def test_two_processes_share_one_budget(tmp_path):
    ledger = tmp_path / "home" / "llm_calls.duckdb"
    seen: dict[str, list[float]] = {"first": [], "second": []}

    def reply(messages):
        seen[messages[-1]["content"].split()[0]].append(time.monotonic())
        return default_reply(messages)

    with LoopbackOpenAI(reply_fn=reply) as server:
        callers = [subprocess.Popen([sys.executable, "-c", CALLER, server.base_url,
                                     str(ledger), name, "25"], cwd=ROOT)
                   for name in ("first", "second")]
        for caller in callers:
            assert caller.wait(timeout=240) == 0
        arrivals = sorted(t for t, _, _ in server.arrivals)
    assert len(arrivals) == 50
    # 120 per minute is 2 a second: any 15 s window holds at most 30 plus the burst (4).
    busiest = max(sum(1 for t in arrivals if start <= t < start + 15) for start in arrivals)
    assert busiest <= 35, busiest
    # And the budget was used, not wasted: 50 calls in about 25 s, not 50 s.
    assert arrivals[-1] - arrivals[0] < 35
    # The two really ran at once (neither waited for the other's whole stage on the
    # ledger file), so they shared the budget rather than taking turns with it.
    assert max(min(times) for times in seen.values()) < min(max(times) for times in seen.values())


class FakeClock:
    def __init__(self):
        self.time = 1000.0

    def now(self):
        return self.time

    async def sleep(self, seconds):
        self.time += seconds


def test_a_new_budget_allows_a_burst_of_two_seconds_then_the_rate(tmp_path):
    clock = FakeClock()
    limiter = SharedRateLimiter(tmp_path / "b.json", 240, None, clock=clock)  # 4 a second

    async def calls(n):
        for _ in range(n):
            await limiter.acquire(10)

    asyncio.run(calls(8))
    assert clock.time == 1000.0  # the burst: 2 s x 4 per second, no wait
    asyncio.run(calls(4))
    assert abs(clock.time - 1001.0) < 1e-6  # then 4 a second


def test_tokens_per_minute_and_a_call_bigger_than_the_bucket(tmp_path):
    clock = FakeClock()
    limiter = SharedRateLimiter(tmp_path / "b.json", None, 6000, clock=clock)  # 100 a second
    asyncio.run(limiter.acquire(200))  # the whole bucket: goes at once
    asyncio.run(limiter.acquire(500))  # bigger than the bucket: waits for a full one ...
    assert abs(clock.time - 1002.0) < 1e-6
    asyncio.run(limiter.acquire(100))  # ... and leaves it 300 tokens in debt
    assert abs(clock.time - 1006.0) < 1e-6


def test_the_budget_is_per_key_and_keeps_no_secret():
    one = budget_name("openai/gpt-4o-mini", None, "sk-secret-1")
    assert one != budget_name("openai/gpt-4o-mini", None, "sk-secret-2")
    assert "secret" not in one and len(one) == 16
