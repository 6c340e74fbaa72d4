"""A DuckLake: the warehouse and the call ledger for many writers on many machines.

DuckDB stays the query engine; the catalog lives in PostgreSQL (or any catalog DuckLake
accepts) and the data in Parquet files under a path every worker reaches. A connection
is a cursor on one in-memory DuckDB per process that has ATTACHed the lake as ``lake``, and
makes the lake the default catalog, so ``webr.cleaned_pages`` means the lake's table and
the project's SQL runs unchanged. (Reconnecting to a ``ducklake:`` path itself, after a
failed commit, can hang in DuckDB's instance cache; the in-memory database stays open.)

DuckLake checks write conflicts per table, not per partition. Writing new partitions
(a crawl's first pass) did not conflict here, but re-writing existing ones did: at 8
writers 8-9 % of commits lost at least once (bench/lake_conflicts.py). A write is
therefore one transaction, retried whole with jittered backoff.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import duckdb

T = TypeVar("T")
LAKE = "lake"
# Extensions come from the duckdb-extension-* wheels, installed into a folder of the
# project's own: no network, and no dependence on a writable $HOME.
EXTENSIONS = ("ducklake", "postgres")
RETRY_ATTEMPTS = 12
RETRY_BASE_S = 0.05
RETRY_CAP_S = 2.0


@dataclass(frozen=True)
class LakeLocation:
    catalog: str  # what follows "ducklake:", e.g. "postgres:dbname=webr host=10.0.0.5"
    data_path: str  # a folder or an s3:// prefix every worker reaches
    extension_directory: str

    @property
    def data_folder(self) -> Path | None:
        return None if "://" in self.data_path else Path(self.data_path)


class CommitConflict(RuntimeError):
    """A write still conflicted after every retry."""


def is_conflict(error: Exception) -> bool:
    text = str(error).lower()
    return (isinstance(error, duckdb.TransactionException) or "transaction conflict" in text
            or ("conflict" in text and "commit" in text))


def _load_extensions(con: duckdb.DuckDBPyConnection) -> None:
    try:
        for name in EXTENSIONS:
            con.execute(f"LOAD {name}")
    except duckdb.Error:
        import duckdb_extensions  # the wheel's installer; imported only when needed

        for name in EXTENSIONS:
            duckdb_extensions.import_extension(name, con=con)
            con.execute(f"LOAD {name}")


_attached: dict[tuple[int, LakeLocation], duckdb.DuckDBPyConnection] = {}
_schemas: set[tuple[int, LakeLocation, str]] = set()
_attach_lock = threading.Lock()


def _database(location: LakeLocation) -> duckdb.DuckDBPyConnection:
    """This process's in-memory DuckDB with the lake attached, made once: loading the
    extensions and attaching cost about 0.2 s, which every small write would pay again."""
    key = (os.getpid(), location)
    with _attach_lock:
        if key not in _attached:
            Path(location.extension_directory).mkdir(parents=True, exist_ok=True)
            if location.data_folder is not None:
                location.data_folder.mkdir(parents=True, exist_ok=True)
            con = duckdb.connect(":memory:", config={
                "extension_directory": location.extension_directory,
                "autoinstall_known_extensions": False,
            })
            try:
                _load_extensions(con)
                _attach(con, location)
            except BaseException:
                con.close()
                raise
            _attached[key] = con
        return _attached[key]


def _attach(con: duckdb.DuckDBPyConnection, location: LakeLocation, attempts: int = 4) -> None:
    """ATTACH the lake. The first attach of a new catalog creates its tables; processes
    starting together race for that, and the losers see an error once: try again."""
    data_path = location.data_path.rstrip("/") + "/"
    for attempt in range(1, attempts + 1):
        try:
            con.execute(f"ATTACH 'ducklake:{location.catalog}' AS {LAKE} "
                        f"(DATA_PATH '{data_path}')")
            return
        except duckdb.Error as error:
            text = str(error).lower()
            racing = is_conflict(error) or "already exists" in text or "duplicate" in text
            if not racing or attempt == attempts:
                raise
            _pause(attempt + 2)


def connect(location: LakeLocation, schema: str | None = None) -> duckdb.DuckDBPyConnection:
    """A connection of its own (its own transaction) to this process's attached lake,
    using the lake (and ``schema`` in it, created if missing) by default."""
    con = _database(location).cursor()
    try:
        if schema:
            key = (os.getpid(), location, schema)
            if key not in _schemas:
                # Two processes creating it at once conflict: the loser tries again and
                # finds it there.
                _retried(lambda: con.execute(f"CREATE SCHEMA IF NOT EXISTS {LAKE}.{schema}"))
                _schemas.add(key)
            con.execute(f"USE {LAKE}.{schema}")
        else:
            con.execute(f"USE {LAKE}")
    except BaseException:
        con.close()
        raise
    return con


@contextmanager
def connection(location: LakeLocation, schema: str | None = None
               ) -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect(location, schema)
    try:
        yield con
    finally:
        con.close()


def _pause(attempt: int) -> None:
    """Full jitter: writers that collided spread out instead of colliding again."""
    time.sleep(random.uniform(0, min(RETRY_CAP_S, RETRY_BASE_S * 2 ** (attempt - 1))))


def _retried(statement: Callable[[], T], attempts: int = RETRY_ATTEMPTS) -> T:
    for attempt in range(1, attempts + 1):
        try:
            return statement()
        except duckdb.Error as error:
            if not is_conflict(error) or attempt == attempts:
                raise
            _pause(attempt)
    raise AssertionError("unreachable")


def in_transaction(location: LakeLocation, work: Callable[[duckdb.DuckDBPyConnection], T],
                   schema: str | None = None, attempts: int = RETRY_ATTEMPTS,
                   on_retry: Callable[[int, Exception], None] | None = None) -> T:
    """Run ``work(con)`` in one transaction and commit; on a write conflict roll back and
    run all of it again, after a jittered exponential pause. Nothing is half-written: a
    transaction that does not commit leaves no trace."""
    with connection(location, schema) as con:
        for attempt in range(1, attempts + 1):
            con.execute("BEGIN TRANSACTION")
            try:
                result = work(con)
                con.execute("COMMIT")
                return result
            except Exception as error:  # noqa: BLE001 - anything else is re-raised below
                try:
                    con.execute("ROLLBACK")
                except duckdb.Error:
                    pass  # a failed commit has already ended the transaction
                if not is_conflict(error):
                    raise
                if attempt == attempts:
                    raise CommitConflict(f"still conflicting after {attempts} attempts: "
                                         f"{error}") from error
                if on_retry:
                    on_retry(attempt, error)
                _pause(attempt)
    raise AssertionError("unreachable")


def maintain(location: LakeLocation, older_than_s: int = 3600) -> dict[str, int]:
    """Expire snapshots older than ``older_than_s`` seconds (time travel to them ends),
    merge small adjacent data files, and delete the files no snapshot uses any more: a
    re-materialized partition leaves its old Parquet files behind until then. Readers of
    an expired snapshot older than that would lose their files, so keep it above the
    longest query."""
    with connection(location) as con:
        # Small writes (a domain of a page or two) sit inline in the catalog: write them
        # out as Parquet, so the catalog database stays small.
        con.execute(f"CALL ducklake_flush_inlined_data('{LAKE}')").fetchall()
        expired = con.execute(
            f"CALL ducklake_expire_snapshots('{LAKE}', older_than => now() - "
            f"to_seconds({int(older_than_s)}))").fetchall()
        merged = con.execute(f"CALL ducklake_merge_adjacent_files('{LAKE}')").fetchall()
        # Merging schedules the merged files too; they go with the rest.
        deleted = con.execute(
            f"CALL ducklake_cleanup_old_files('{LAKE}', cleanup_all => true)").fetchall()
    return {"snapshots_expired": len(expired), "files_merged": len(merged),
            "files_deleted": len(deleted)}
