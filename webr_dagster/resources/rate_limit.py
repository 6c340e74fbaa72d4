"""Client-side request and token rate limits, so a provider quota is met without 429 storms."""

from __future__ import annotations

import asyncio
import time


class RateLimiter:
    """Token buckets for requests per minute and tokens per minute (either may be off).

    Each bucket holds at most one minute of budget and refills continuously; a call
    waits until both buckets can pay for it.
    """

    def __init__(self, requests_per_minute: float | None, tokens_per_minute: float | None):
        self._limits = {"requests": requests_per_minute, "tokens": tokens_per_minute}
        self._levels = {name: limit for name, limit in self._limits.items() if limit}
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    @property
    def active(self) -> bool:
        return bool(self._levels)

    def _refill(self) -> None:
        now = time.monotonic()
        elapsed, self._stamp = now - self._stamp, now
        for name in self._levels:
            limit = self._limits[name]
            self._levels[name] = min(limit, self._levels[name] + elapsed * limit / 60.0)

    async def acquire(self, tokens: int) -> None:
        if not self._levels:
            return
        cost = {"requests": 1.0, "tokens": float(tokens)}
        async with self._lock:  # first come, first served
            while True:
                self._refill()
                waits = []
                for name, level in self._levels.items():
                    # A call larger than a whole minute's budget may go once the bucket is full.
                    need = min(cost[name], self._limits[name])
                    if level < need:
                        waits.append((need - level) * 60.0 / self._limits[name])
                if not waits:
                    for name in self._levels:
                        self._levels[name] -= cost[name]
                    return
                await asyncio.sleep(max(waits))
