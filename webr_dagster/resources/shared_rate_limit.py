"""One request and token budget per provider key, shared by every process and run on the
machine (webr run, runs in the UI, call workers), refilled smoothly.

A provider's quota belongs to the API key, and providers enforce it over seconds, not
minutes (a 240 RPM quota may be checked as 4 per second). So the budget is a token bucket
that holds at most ``burst_s`` seconds of the rate and lives in a small file under
WEBR_HOME: each call takes the file's lock for a few microseconds, refills the bucket from
the wall clock, and pays for itself or learns how long to wait.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import time
from pathlib import Path

BURST_S = 2.0


def budget_name(model: str, api_base: str | None, api_key: str | None) -> str:
    """A file name for the quota of (provider, key, model); the key itself is not kept."""
    digest = hashlib.sha256(f"{api_base or ''}\0{api_key or ''}\0{model}".encode())
    return digest.hexdigest()[:16]


class SharedRateLimiter:
    """Requests per minute and tokens per minute (either may be off) for one budget file."""

    def __init__(self, state_file: Path, requests_per_minute: float | None,
                 tokens_per_minute: float | None, burst_s: float = BURST_S, clock=None):
        self._rates = {name: limit / 60.0 for name, limit in
                       (("requests", requests_per_minute), ("tokens", tokens_per_minute))
                       if limit}
        self._capacity = {name: rate * burst_s for name, rate in self._rates.items()}
        self._state_file = Path(state_file)
        self._queue = asyncio.Lock()  # this process's callers go first come, first served
        # Wall time, which every process reads alike; tests pass a clock of their own.
        self._now = clock.now if clock else time.time
        self._sleep = clock.sleep if clock else asyncio.sleep

    @property
    def active(self) -> bool:
        return bool(self._rates)

    async def acquire(self, tokens: int) -> None:
        if not self._rates:
            return
        cost = {"requests": 1.0, "tokens": float(tokens)}
        async with self._queue:
            while True:
                wait = self._try_pay(cost)
                if wait <= 0:
                    return
                await self._sleep(wait)

    def _try_pay(self, cost: dict[str, float]) -> float:
        """Pay ``cost`` if the bucket holds it (returns 0), else the seconds to wait."""
        self._state_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self._state_file, "a+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            try:
                state = json.loads(handle.read() or "{}")
            except json.JSONDecodeError:  # a file cut short by a crash: start full
                state = {}
            now = self._now()
            elapsed = max(0.0, now - state.get("stamp", now))
            levels = {name: min(self._capacity[name],
                                state.get(name, self._capacity[name]) + elapsed * rate)
                      for name, rate in self._rates.items()}
            # A call bigger than the whole bucket goes once the bucket is full, and leaves
            # it in debt, so the rate still holds over time.
            short = {name: min(cost[name], self._capacity[name]) - levels[name]
                     for name in self._rates}
            wait = max((need / self._rates[name] for name, need in short.items()
                        if need > 1e-9), default=0.0)
            if wait <= 0:
                for name in self._rates:
                    levels[name] -= cost[name]
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps({**levels, "stamp": now}))
            handle.flush()
            return wait
