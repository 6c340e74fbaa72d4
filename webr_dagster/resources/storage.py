"""Where data lives. Assets see only these factories, so moving storage (Parquet on object
storage, Postgres instance storage) changes this file, not the assets."""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from dagster import EnvVar, MetadataValue, TableColumn, TableSchema
from dagster._core.storage.db_io_manager import DbIOManager
from dagster_duckdb import DuckDBIOManager, DuckDBResource
from dagster_duckdb.io_manager import DuckDbClient
from dagster_duckdb_pandas import DuckDBPandasTypeHandler

from ..webr.variants import DEFAULT
from . import lake

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
    def lake(self) -> lake.LakeLocation | None:
        """The DuckLake that holds the warehouse and the ledger when WEBR_STORAGE=ducklake
        (WEBR_LAKE_CATALOG: what follows "ducklake:", e.g. "postgres:dbname=webr
        host=db"; WEBR_LAKE_DATA: the Parquet folder or s3:// prefix); None: the file."""
        choice = os.environ.get("WEBR_STORAGE", "duckdb").strip().lower()
        if choice in ("", "duckdb", "file"):
            return None
        if choice != "ducklake":
            raise ValueError(f"WEBR_STORAGE={choice!r}: expected 'duckdb' or 'ducklake'")
        catalog = os.environ.get("WEBR_LAKE_CATALOG")
        if not catalog:
            raise ValueError("WEBR_STORAGE=ducklake needs WEBR_LAKE_CATALOG (e.g. "
                             "'postgres:dbname=webr host=127.0.0.1'; the password in "
                             "PGPASSWORD, not in the catalog string)")
        data = os.environ.get("WEBR_LAKE_DATA") or str(self.root / "lake_data")
        return lake.LakeLocation(catalog, data, str(self.root / "duckdb_extensions"))

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

    @property
    def source_registry(self) -> Path:
        return self.root / "crawl_sources.json"

    @contextmanager
    def warehouse_connection(self):
        """A connection for reading the warehouse outside a run, file or lake."""
        location = self.lake
        if location is None:
            import duckdb

            con = duckdb.connect(str(self.warehouse), read_only=True)
        else:
            con = lake.connect(location)
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def ledger_connection(self):
        """A connection for reading the call ledger outside a run; None when there is no
        ledger yet."""
        location = self.lake
        if location is not None:
            con = lake.connect(location, schema="ledger")
        elif self.ledger.exists():
            import duckdb

            con = duckdb.connect(str(self.ledger), read_only=True)
        else:
            yield None
            return
        try:
            yield con
        finally:
            con.close()

    # -- crawl sources: readable partition keys ------------------------------------------
    def source_key(self, path: str) -> str:
        """The ``crawl_source`` partition key of a crawl file or folder: its path inside
        the landing folder, or else its name and a short hash of its full path (an
        absolute path is long, and the UI cuts it in the middle)."""
        path = os.path.abspath(path)
        landing = str(self.landing.resolve())
        if path.startswith(landing + os.sep):
            return os.path.relpath(path, landing)
        return f"{os.path.basename(path)}~{hashlib.sha1(path.encode()).hexdigest()[:8]}"

    def register_sources(self, paths: list[str]) -> list[str]:
        """Keys of ``paths``; those outside the landing folder are remembered in the
        registry so a run can find them again by key."""
        keys = [self.source_key(p) for p in paths]
        registry = self._registry()
        registry.update({k: os.path.abspath(p) for k, p in zip(keys, paths)
                         if not self._in_landing(k)})
        scratch = self.source_registry.with_suffix(f".{os.getpid()}.tmp")
        scratch.write_text(json.dumps(registry, indent=1, sort_keys=True))
        scratch.replace(self.source_registry)  # readers never see half a file
        return keys

    def source_path(self, key: str) -> str:
        """The crawl file or folder behind a ``crawl_source`` key."""
        found = self._registry().get(key)
        if found:
            return found
        if self._in_landing(key):
            return str(self.landing / key)
        if os.path.isabs(key):  # keys written by earlier versions were absolute paths
            return key
        raise KeyError(f"unknown crawl source {key!r}: not in {self.landing} nor in "
                       f"{self.source_registry}")

    def _in_landing(self, key: str) -> bool:
        return not os.path.isabs(key) and (self.landing / key).exists()

    def _registry(self) -> dict[str, str]:
        try:
            return json.loads(self.source_registry.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def ensure(self) -> "WebRHome":
        for folder in (self.root, self.landing, self.exports):
            folder.mkdir(parents=True, exist_ok=True)
        return self


class EmptyTablesPandasTypeHandler(DuckDBPandasTypeHandler):
    """Like the stock handler, but an empty frame still creates its (typed) table, and a
    table made by an older version gets the columns it lacks.

    The stock handler skips empty frames, so a stage that kept nothing in its first
    partition leaves no table and every downstream read fails. It also inserts by
    position, so a column added to a stage's schema would break every existing warehouse
    (or, worse, shift values into the wrong columns); rows are inserted by name instead,
    and older rows read NULL in a new column.
    """

    def handle_output(self, context, table_slice, obj: pd.DataFrame, connection):
        table = f"{table_slice.schema}.{table_slice.table}"
        connection.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM obj")
        if not connection.fetchall():  # the table existed: add what it lacks, then insert
            existing = {row[0] for row in connection.execute(f"DESCRIBE {table}").fetchall()}
            for name, kind, *_ in connection.execute("DESCRIBE SELECT * FROM obj").fetchall():
                if name not in existing:
                    connection.execute(f'ALTER TABLE {table} ADD COLUMN "{name}" {kind}')
            if not obj.empty:
                connection.execute(f"INSERT INTO {table} BY NAME SELECT * FROM obj")
        many = _many_partitions(table_slice)
        if many:  # each domain's own count is in its metadata
            count = "run_rows"
        else:
            count = "dagster/partition_row_count" if context.has_partition_key \
                else "dagster/row_count"
        metadata = {count: len(obj), "dagster/storage_kind": "duckdb"}
        if not many:
            # Output metadata is copied into every partition's materialization: a run of
            # 1,000 domains would store the column list 1,000 times (5 KB each).
            metadata["dataframe_columns"] = MetadataValue.table_schema(TableSchema(columns=[
                TableColumn(name=str(name), type=str(dtype)) for name, dtype in obj.dtypes.items()]))
        context.add_output_metadata(metadata)


def _many_partitions(table_slice) -> bool:
    return any(len(dimension.partitions) > 1 for dimension in table_slice.partition_dimensions
               if isinstance(dimension.partitions, list))


class WarehouseDbClient(DuckDbClient):
    @staticmethod
    def get_select_statement(table_slice) -> str:
        """The output's "Query" metadata (reads use the stock statement). For a batch of
        domains it names the table and the partition column instead of listing every
        domain: the text is copied into each domain's materialization."""
        if _many_partitions(table_slice):
            [dimension] = table_slice.partition_dimensions
            return (f"SELECT * FROM {table_slice.schema}.{table_slice.table} "
                    f"WHERE {dimension.partition_expr} = '<this partition>'")
        return DuckDbClient.get_select_statement(table_slice)


class WarehouseIOManager(DuckDBIOManager):
    """DuckDB IO manager for pandas frames; partitioned assets replace only their slice."""

    @staticmethod
    def type_handlers():
        return [EmptyTablesPandasTypeHandler()]

    @staticmethod
    def default_load_type():
        return pd.DataFrame

    def create_io_manager(self, context) -> DbIOManager:
        return DbIOManager(db_client=WarehouseDbClient(), database=self.database,
                           schema=self.schema_, type_handlers=self.type_handlers(),
                           default_load_type=self.default_load_type(),
                           io_manager_name="DuckDBIOManager")


def variant_schema(variant: str) -> str:
    """The warehouse schema of a variant's tables: `webr` for the method as published,
    `webr_wi_only`, ... for the ablations (one file; the call ledger is shared)."""
    return SCHEMA if variant == DEFAULT else f"{SCHEMA}_{variant.replace('-', '_')}"


class Warehouse(DuckDBResource):
    """SQL on the warehouse wherever it lives: the DuckDB file ``database``, or, when
    ``lake_catalog`` is set, a DuckLake attached as the default catalog (the same SQL,
    ``webr.cleaned_pages``, reads either)."""

    lake_catalog: str | None = None
    lake_data: str | None = None
    extension_directory: str | None = None

    @property
    def lake_location(self) -> lake.LakeLocation | None:
        if not self.lake_catalog:
            return None
        return lake.LakeLocation(self.lake_catalog, self.lake_data or "",
                                 self.extension_directory or "")

    @contextmanager
    def get_connection(self):
        location = self.lake_location
        if location is None:
            with super().get_connection() as con:
                yield con
        else:
            with lake.connection(location) as con:
                yield con


def warehouse_io_manager(home: WebRHome, schema: str = SCHEMA):
    """``schema``: where the assets' tables go (a run variant's own, e.g. `webr_wi_only`)."""
    location = home.lake
    if location is None:
        return WarehouseIOManager(database=str(home.warehouse), schema=schema)
    from .lake_io_manager import LakeIOManager

    # The catalog string can carry a host and user: an EnvVar is read at run time and
    # never stored in run config.
    return LakeIOManager(catalog=EnvVar("WEBR_LAKE_CATALOG"), data_path=location.data_path,
                         extension_directory=location.extension_directory, schema_=schema)


def warehouse_resource(home: WebRHome, **lake_fields) -> Warehouse:
    """``lake_fields``: environment.lake_fields(home) when the warehouse is a lake."""
    return Warehouse(database=str(home.warehouse), **lake_fields)
