"""The LLM call ledger: every call ever made, keyed by its content, in its own DuckDB file.

A call key is a hash of (model, messages, sampling parameters, sample index). A key with
an ``ok`` row is answered from here and never sent again; failed attempts are recorded
with their reason but never served as replies. An ``ok`` reply whose ``finish_reason`` is
"length" stopped at max_tokens: it is kept and served like any other (it was paid for), and
the stages that read it mark what they build from it as truncated.

Rows reach DuckDB in batches, but each is first appended to a journal file of its session
(one JSON line, flushed at once, so it survives a killed process). A batch written to
DuckDB empties the journal; a journal whose process is gone is folded into DuckDB by the
next ledger that opens, so no reply that came back is paid for twice.

Several processes share the file (a run in the UI, `webr run`, call workers of both), and
DuckDB admits one process at a time: every operation opens the file briefly and retries
while another process holds its lock. With WEBR_STORAGE=ducklake the tables are in the
lake's ``ledger`` schema instead, where processes on many machines write at once; a write
that conflicts is retried whole (lake.in_transaction). Journals stay on each machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from . import lake

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
    "finish_reason": "VARCHAR",  # "stop", "length" (cut at max_tokens), ...; NULL: not known
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
    "unpriced": "BIGINT",
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


LOCK_WAIT_S = 120.0  # how long to wait for another process to let go of the file


def _is_lock_conflict(error: Exception) -> bool:
    return "lock" in str(error).lower()


def process_alive(pid: int) -> bool:
    """Whether a process of this machine with ``pid`` still runs."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class CallLedger:
    """Reads and appends ledger rows of one file, for one process."""

    def __init__(self, path: str | Path, lake_location: lake.LakeLocation | None = None):
        """``path``: the DuckDB file (its folder also holds the journals); with
        ``lake_location`` the tables are in that lake and ``path`` names only the journals."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.journal_dir = self.path.parent / f"{self.path.stem}-journal"
        self.lake = lake_location
        self._lock = threading.Lock()
        self._journal = None
        self._write(self._create_tables)
        self.recover_journals()

    @staticmethod
    def _create_tables(con) -> None:
        for table, schema in (("llm_calls", LEDGER_COLUMNS), ("llm_sessions", SESSION_COLUMNS)):
            columns = ", ".join(f"{name} {kind}" for name, kind in schema.items())
            con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")
            # Ledgers written by older versions lack newer columns. Only a missing one is
            # added: in a lake every schema change conflicts with every concurrent writer.
            present = {row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()}
            for name, kind in schema.items():
                if name not in present:
                    con.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")

    def _write(self, work):
        """``work(con)`` as one write: retried whole on a lake's commit conflict."""
        if self.lake is not None:
            return lake.in_transaction(self.lake, work, schema="ledger")
        with self._connection() as con:
            return work(con)

    @contextmanager
    def _connection(self):
        """The file, opened for one operation; waits while another process holds it.

        Held only for the operation, so processes that share the file take turns call by
        call. (Keeping it open across operations saved the checkpoint each close costs,
        about 100 ms on a few thousand calls, but a second process then waited for the
        first one's whole stage: the two-process rate-limit test stopped overlapping.)"""
        if self.lake is not None:
            with lake.connection(self.lake, schema="ledger") as con:
                yield con
            return
        import duckdb

        deadline = time.monotonic() + LOCK_WAIT_S
        delay = 0.01
        with self._lock:
            while True:
                try:
                    con = duckdb.connect(str(self.path))
                    break
                except duckdb.IOException as error:
                    if not _is_lock_conflict(error) or time.monotonic() > deadline:
                        raise
                    time.sleep(random.uniform(0, delay))
                    delay = min(delay * 2, 0.5)
            try:
                yield con
            finally:
                con.close()

    # -- the journal -------------------------------------------------------------------
    def journal(self, row: dict) -> None:
        """Keep ``row`` on disk now; it reaches DuckDB with the next ``append``."""
        if self._journal is None:
            self.journal_dir.mkdir(exist_ok=True)
            name = f"{os.getpid()}-{uuid.uuid4().hex}.jsonl"
            self._journal = open(self.journal_dir / name, "a", encoding="utf-8")
        self._journal.write(json.dumps(row, default=str, ensure_ascii=False) + "\n")
        self._journal.flush()  # in the OS's hands: a killed process loses nothing

    def recover_journals(self) -> int:
        """Fold the journals of processes that are gone into DuckDB; returns rows added."""
        if not self.journal_dir.is_dir():
            return 0
        added = 0
        for journal in sorted(self.journal_dir.glob("*.jsonl")):
            pid = int(journal.name.split("-", 1)[0])
            if pid == os.getpid() or process_alive(pid):
                continue
            rows = []
            for line in journal.read_text(encoding="utf-8").splitlines():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:  # the line being written when it was killed
                    continue
            added += self._insert(rows, skip_present=True)
            journal.unlink(missing_ok=True)
        return added

    def _empty_journal(self) -> None:
        if self._journal is not None:
            self._journal.seek(0)
            self._journal.truncate()

    # -- reading and writing -----------------------------------------------------------
    def answered_keys(self) -> set[str]:
        with self._connection() as con:
            rows = con.execute(
                "SELECT DISTINCT call_key FROM llm_calls WHERE status = 'ok'"
            ).fetchall()
        return {row[0] for row in rows}

    def replies(self, keys: list[str]) -> dict[str, dict]:
        """The latest ok row for each of ``keys`` that has one."""
        return self._latest_ok(
            keys, "reply, finish_reason, prompt_tokens, completion_tokens, cost_usd")

    def finish_reasons(self, keys: list[str]) -> dict[str, str | None]:
        """Why the latest ok reply of each of ``keys`` ended ("stop", "length", ...)."""
        return {key: row["finish_reason"]
                for key, row in self._latest_ok(keys, "finish_reason").items()}

    def usage(self, keys: list[str]) -> dict[str, dict]:
        """Tokens and cost of the reply behind each of ``keys`` (cost None: price unknown)."""
        return self._latest_ok(keys, "prompt_tokens, completion_tokens, cost_usd")

    def _latest_ok(self, keys: list[str], columns: str) -> dict[str, dict]:
        if not keys:
            return {}
        with self._connection() as con:
            frame = con.execute(
                f"""
                SELECT call_key, {columns}
                FROM llm_calls
                WHERE status = 'ok' AND call_key IN (SELECT unnest(?))
                QUALIFY row_number() OVER (PARTITION BY call_key ORDER BY created_at DESC) = 1
                """,
                [keys],
            ).df()
        frame = frame.astype(object).where(frame.notna(), None)
        return {row["call_key"]: row for row in frame.to_dict("records")}

    def append(self, rows: list[dict]) -> None:
        """Write rows already in this ledger's journal; then the journal starts over."""
        if rows:
            self._insert(rows)
        self._empty_journal()

    def _insert(self, rows: list[dict], skip_present: bool = False) -> int:
        if not rows:
            return 0
        frame = pd.DataFrame(rows, columns=list(LEDGER_COLUMNS))
        frame["created_at"] = pd.to_datetime(frame["created_at"])
        names = ", ".join(LEDGER_COLUMNS)
        # A journal may hold rows that reached DuckDB just before its process died.
        present = (" WHERE NOT EXISTS (SELECT 1 FROM llm_calls l WHERE l.call_key = b.call_key"
                   " AND l.created_at = b.created_at AND l.attempts = b.attempts)"
                   if skip_present else "")

        def insert(con) -> int:
            con.register("ledger_batch", frame)
            before = con.execute("SELECT count(*) FROM llm_calls").fetchone()[0]
            con.execute(f"INSERT INTO llm_calls ({names}) SELECT {names} FROM ledger_batch b"
                        + present)
            return con.execute("SELECT count(*) FROM llm_calls").fetchone()[0] - before

        return self._write(insert)

    def spent(self, budget_id: str) -> float:
        """What calls recorded under ``budget_id`` have cost so far."""
        with self._connection() as con:
            row = con.execute(
                "SELECT coalesce(sum(cost_usd), 0) FROM llm_calls WHERE budget_id = ?",
                [budget_id],
            ).fetchone()
        return float(row[0])

    def record_session(self, row: dict) -> None:
        names = ", ".join(SESSION_COLUMNS)
        self._write(lambda con: con.execute(
            f"INSERT INTO llm_sessions ({names}) VALUES "
            f"({', '.join('?' for _ in SESSION_COLUMNS)})",
            [row.get(name) for name in SESSION_COLUMNS]))

    def session_totals(self, budget_id: str) -> dict:
        """Every session's counts under ``budget_id`` added up; errors by reason."""
        with self._connection() as con:
            rows = con.execute(
                "SELECT * FROM llm_sessions WHERE budget_id = ?", [budget_id]).df()
        totals = {name: int(rows[name].sum()) for name in
                  ("calls", "cached", "sent", "failed", "skipped_for_budget",
                   "prompt_tokens", "completion_tokens", "unpriced")}
        totals["cost_usd"] = float(rows["cost_usd"].sum())
        errors: dict[str, int] = {}
        for text in rows["errors"].dropna():
            for reason, count in json.loads(text).items():
                errors[reason] = errors.get(reason, 0) + count
        totals["errors"] = errors
        return totals

    def close(self) -> None:
        """Its journal is empty once everything is appended: remove it."""
        if self._journal is not None:
            self._journal.close()
            path = Path(self._journal.name)
            if path.stat().st_size == 0:
                path.unlink(missing_ok=True)
            self._journal = None
