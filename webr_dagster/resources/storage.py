"""Where data lives. Assets see only these factories, so moving storage (Parquet on object
storage, Postgres instance storage) changes this file, not the assets."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from dagster_duckdb import DuckDBIOManager, DuckDBResource
from dagster_duckdb_pandas import DuckDBPandasTypeHandler

# Not "warehouse": DuckDB finds a schema named like the database file's stem ambiguous.
SCHEMA = "webr"


@dataclass(frozen=True)
class WebRHome:
    root: Path

    @classmethod
    def from_env(cls) -> "WebRHome":
        return cls(Path(os.environ.get("WEBR_HOME", "webr_home")).resolve())

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def ledger(self) -> Path:
        return self.root / "llm_calls.duckdb"

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def exports(self) -> Path:
        return self.root / "exports"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster"

    def ensure(self) -> "WebRHome":
        for folder in (self.root, self.landing, self.exports):
            folder.mkdir(parents=True, exist_ok=True)
        return self


class EmptyTablesPandasTypeHandler(DuckDBPandasTypeHandler):
    """Like the stock handler, but an empty frame still creates its (typed) table.

    The stock handler skips empty frames, so a stage that kept nothing in its first
    partition leaves no table and every downstream read fails.
    """

    def handle_output(self, context, table_slice, obj: pd.DataFrame, connection):
        if obj.empty:
            connection.execute(
                f"CREATE TABLE IF NOT EXISTS {table_slice.schema}.{table_slice.table} "
                "AS SELECT * FROM obj"
            )
            return
        return super().handle_output(context, table_slice, obj, connection)


class WarehouseIOManager(DuckDBIOManager):
    """DuckDB IO manager for pandas frames; partitioned assets replace only their slice."""

    @staticmethod
    def type_handlers():
        return [EmptyTablesPandasTypeHandler()]

    @staticmethod
    def default_load_type():
        return pd.DataFrame


def warehouse_io_manager(home: WebRHome) -> WarehouseIOManager:
    return WarehouseIOManager(database=str(home.warehouse), schema=SCHEMA)


def warehouse_resource(home: WebRHome) -> DuckDBResource:
    return DuckDBResource(database=str(home.warehouse))
