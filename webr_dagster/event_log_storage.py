"""Dagster's SQLite event log, made cheap enough for one materialization per web domain.

A run over a batch of domain partitions writes about 14 events per domain (a planned event and a
materialization for each of its seven assets). The stock SQLite event log builds a new
SQLAlchemy engine and commits (an fsync) for every one of them, about 9 ms each on a quiet
machine: most of what a two-page domain costs. This storage keeps the same files and
schema (an existing Dagster home keeps its history) and changes three things:

- one engine per database file, reused (discarded without closing in a forked child,
  which must not touch its parent's SQLite connections);
- ``synchronous=NORMAL`` in the WAL journal the stock storage already uses: a commit no
  longer waits for the disk, a killed process loses nothing, and only a power cut can
  drop the last events (the database stays intact);
- events that Dagster sends as a batch (all planned events of a run; the per-partition
  materializations of one asset output) are written in one transaction per file.

``bench/many_domains.py`` measures what this buys on the whole `webr run`.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as db
from dagster._config import StringSource
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)

# Dagster buffers events sent as a batch only when this is set; the storage then gets
# them in one call (planned events of a run of 1,000 domains x 7 assets: 4 batches).
EVENT_BATCH_SIZE = "2000"
# Each run has its own database file: engines (each with an open connection) are kept for
# the index and the most recently used runs only, so a webserver that shows thousands of
# runs does not keep thousands of files open.
RUN_ENGINES_KEPT = 8


_OPEN_STORAGES: weakref.WeakSet = weakref.WeakSet()


def _forget_engines_in_child() -> None:
    for storage in list(_OPEN_STORAGES):
        storage._forget_engines_in_child()


os.register_at_fork(after_in_child=_forget_engines_in_child)


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` with reused engines, relaxed syncs and batched writes."""

    def __init__(self, base_dir: str, inst_data=None):
        os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", EVENT_BATCH_SIZE)
        self._engines: OrderedDict[str, db.engine.Engine] = OrderedDict()
        self._batch = threading.local()
        super().__init__(base_dir, inst_data=inst_data)
        _OPEN_STORAGES.add(self)

    @classmethod
    def config_type(cls):
        return {"base_dir": StringSource}

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(inst_data=inst_data, **config_value)

    def _forget_engines_in_child(self) -> None:
        for engine in self._engines.values():
            engine.dispose(close=False)
        self._engines = OrderedDict()

    def _engine(self, shard: str) -> db.engine.Engine:
        engine = self._engines.get(shard)
        if engine is not None:
            self._engines.move_to_end(shard)
        else:
            engine = db.create_engine(
                self.conn_string_for_shard(shard),
                poolclass=db.pool.QueuePool, pool_size=1, max_overflow=4,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS,
                              "check_same_thread": False},
            )
            db.event.listen(engine, "connect", _relax_syncs)
            if shard not in self._initialized_dbs:
                self._initdb(engine, for_index_shard=False)
                self._initialized_dbs.add(shard)
            self._engines[shard] = engine
            runs = [name for name in self._engines if name != INDEX_SHARD_NAME]
            for name in runs[:-RUN_ENGINES_KEPT]:
                # connections still checked out (an open batch) close when returned
                self._engines.pop(name).dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[db.engine.Connection]:
        open_batch = getattr(self._batch, "connections", None)
        if open_batch is not None:
            # Inside store_event_batch: every write to this file joins its transaction.
            if shard not in open_batch:
                with self._db_lock:
                    connection = self._engine(shard).connect()
                open_batch[shard] = connection
                connection.begin()
            yield open_batch[shard]
            return
        with self._db_lock:
            engine = self._engine(shard)
        with engine.connect() as connection, connection.begin():
            yield connection

    def store_event_batch(self, events: Sequence) -> None:
        """Store events one by one, in one transaction per database file. On an error
        nothing of the batch is kept, and Dagster stores the events one by one."""
        self._batch.connections = {}
        try:
            for event in events:
                self.store_event(event)
            for connection in self._batch.connections.values():
                connection.commit()
        finally:
            for connection in self._batch.connections.values():
                connection.close()  # rolls back what was not committed
            self._batch.connections = None

    def dispose(self) -> None:
        super().dispose()
        for engine in self._engines.values():
            engine.dispose()
        self._engines = OrderedDict()


def _relax_syncs(dbapi_connection, _record) -> None:
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")
