"""Where data lives. Assets see only these factories, so moving storage (Parquet on object
storage, Postgres instance storage) changes this file, not the assets."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dagster_duckdb import DuckDBResource
from dagster_duckdb_pandas import DuckDBPandasIOManager

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


def warehouse_io_manager(home: WebRHome) -> DuckDBPandasIOManager:
    return DuckDBPandasIOManager(database=str(home.warehouse), schema=SCHEMA)


def warehouse_resource(home: WebRHome) -> DuckDBResource:
    return DuckDBResource(database=str(home.warehouse))
