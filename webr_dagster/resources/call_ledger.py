"""The LLM call ledger: every call ever made, keyed by its content, in its own DuckDB file.

A call key is a hash of (model, messages, sampling parameters, sample index). A key with
an ``ok`` row is answered from here and never sent again; failed attempts are recorded
with their reason but never served as replies. Rows are appended in batches, so a killed
process loses at most the batch it had not flushed.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pandas as pd

LEDGER_COLUMNS = {
    "call_key": "VARCHAR",
    "model": "VARCHAR",
    "params": "VARCHAR",
    "sample_index": "INTEGER",
    "stage": "VARCHAR",
    "page_id": "VARCHAR",
    "template": "VARCHAR",
    "messages": "VARCHAR",
    "status": "VARCHAR",
    "reply": "VARCHAR",
    "error": "VARCHAR",
    "prompt_tokens": "BIGINT",
    "completion_tokens": "BIGINT",
    "cost_usd": "DOUBLE",
    "latency_s": "DOUBLE",
    "attempts": "INTEGER",
    "run_id": "VARCHAR",
    "budget_id": "VARCHAR",
    "created_at": "TIMESTAMP",
}


# One row per LLM session (one stage of one run): what its calls came to, failures
# included, so a run that failed half-way still has true totals.
SESSION_COLUMNS = {
    "run_id": "VARCHAR",
    "budget_id": "VARCHAR",
    "calls": "BIGINT",
    "cached": "BIGINT",
    "sent": "BIGINT",
    "failed": "BIGINT",
    "skipped_for_budget": "BIGINT",
    "prompt_tokens": "BIGINT",
    "completion_tokens": "BIGINT",
    "cost_usd": "DOUBLE",
    "errors": "VARCHAR",
    "created_at": "TIMESTAMP",
}


def call_key(model: str, messages: list[dict], params: dict, sample_index: int = 0) -> str:
    payload = json.dumps(
        {"model": model, "messages": messages, "params": params, "sample": sample_index},
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class CallLedger:
    """Reads and appends ledger rows; one instance per process and file."""

    def __init__(self, path: str | Path):
        import duckdb

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._con = duckdb.connect(str(self.path))
        columns = ", ".join(f"{name} {kind}" for name, kind in LEDGER_COLUMNS.items())
        self._con.execute(f"CREATE TABLE IF NOT EXISTS llm_calls ({columns})")
        for name, kind in LEDGER_COLUMNS.items():  # ledgers written by older versions
            self._con.execute(f"ALTER TABLE llm_calls ADD COLUMN IF NOT EXISTS {name} {kind}")
        columns = ", ".join(f"{name} {kind}" for name, kind in SESSION_COLUMNS.items())
        self._con.execute(f"CREATE TABLE IF NOT EXISTS llm_sessions ({columns})")

    def answered_keys(self) -> set[str]:
        with self._lock:
            rows = self._con.execute(
                "SELECT DISTINCT call_key FROM llm_calls WHERE status = 'ok'"
            ).fetchall()
        return {row[0] for row in rows}

    def replies(self, keys: list[str]) -> dict[str, dict]:
        """The latest ok row for each of ``keys`` that has one."""
        if not keys:
            return {}
        with self._lock:
            frame = self._con.execute(
                """
                SELECT call_key, reply, prompt_tokens, completion_tokens, cost_usd
                FROM llm_calls
                WHERE status = 'ok' AND call_key IN (SELECT unnest(?))
                QUALIFY row_number() OVER (PARTITION BY call_key ORDER BY created_at DESC) = 1
                """,
                [keys],
            ).df()
        return {row["call_key"]: row for row in frame.to_dict("records")}

    def append(self, rows: list[dict]) -> None:
        if not rows:
            return
        frame = pd.DataFrame(rows, columns=list(LEDGER_COLUMNS))
        with self._lock:
            self._con.register("ledger_batch", frame)
            try:
                names = ", ".join(LEDGER_COLUMNS)
                self._con.execute(
                    f"INSERT INTO llm_calls ({names}) SELECT {names} FROM ledger_batch"
                )
            finally:
                self._con.unregister("ledger_batch")

    def spent(self, budget_id: str) -> float:
        """What calls recorded under ``budget_id`` have cost so far."""
        with self._lock:
            row = self._con.execute(
                "SELECT coalesce(sum(cost_usd), 0) FROM llm_calls WHERE budget_id = ?",
                [budget_id],
            ).fetchone()
        return float(row[0])

    def record_session(self, row: dict) -> None:
        names = ", ".join(SESSION_COLUMNS)
        with self._lock:
            self._con.execute(
                f"INSERT INTO llm_sessions ({names}) VALUES "
                f"({', '.join('?' for _ in SESSION_COLUMNS)})",
                [row.get(name) for name in SESSION_COLUMNS])

    def session_totals(self, budget_id: str) -> dict:
        """Every session's counts under ``budget_id`` added up; errors by reason."""
        with self._lock:
            rows = self._con.execute(
                "SELECT * FROM llm_sessions WHERE budget_id = ?", [budget_id]).df()
        totals = {name: int(rows[name].sum()) for name in
                  ("calls", "cached", "sent", "failed", "skipped_for_budget",
                   "prompt_tokens", "completion_tokens")}
        totals["cost_usd"] = float(rows["cost_usd"].sum())
        errors: dict[str, int] = {}
        for text in rows["errors"].dropna():
            for reason, count in json.loads(text).items():
                errors[reason] = errors.get(reason, 0) + count
        totals["errors"] = errors
        return totals

    def close(self) -> None:
        with self._lock:
            self._con.close()
