"""A stop the user asked for (Ctrl-C, SIGTERM): set by the CLI's signal handler, read by
every LLM session of the process, which then starts no new call, keeps the replies that
come back within a short grace period, writes them to the ledger and stops its stage."""

from __future__ import annotations

import threading

_requested = threading.Event()
_reason = ""


def request_stop(reason: str) -> None:
    global _reason
    _reason = reason
    _requested.set()


def stop_reason() -> str | None:
    """Why the process is stopping, or None while nobody asked it to."""
    return _reason if _requested.is_set() else None


def clear_stop() -> None:
    _requested.clear()
