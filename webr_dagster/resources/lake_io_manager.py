"""The assets' IO manager on a DuckLake: a partition is re-written in one transaction.

The stock DuckDB IO manager deletes a slice and inserts the new rows in two commits and
has no place for an ATTACH. Here DELETE and INSERT are one transaction, retried whole on a
write conflict (lake.in_transaction), so a reader sees the old rows or the new ones, never
none, and N domain runs can write one table at once.
"""

from __future__ import annotations

import pandas as pd
from dagster import ConfigurableIOManager, InputContext, OutputContext

from .lake import LakeLocation, connection, in_transaction


def _partition_keys(context) -> list[str] | None:
    return list(context.asset_partition_keys) if context.has_asset_partitions else None


class LakeIOManager(ConfigurableIOManager):
    catalog: str
    data_path: str
    extension_directory: str
    schema_: str = "webr"

    @property
    def location(self) -> LakeLocation:
        return LakeLocation(self.catalog, self.data_path, self.extension_directory)

    def _table(self, context) -> str:
        return f"{self.schema_}.{context.asset_key.path[-1]}"

    def handle_output(self, context: OutputContext, obj: pd.DataFrame) -> None:
        if obj is None:
            return
        table = self._table(context)
        keys = _partition_keys(context)
        column = (context.definition_metadata or {}).get("partition_expr")
        retries: list[int] = []

        def rewrite(con) -> None:
            con.register("frame", obj)
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema_}")
            con.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM frame LIMIT 0")
            existing = {row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()}
            for name, kind, *_ in con.execute("DESCRIBE SELECT * FROM frame").fetchall():
                if name not in existing:  # a column a newer version added
                    con.execute(f'ALTER TABLE {table} ADD COLUMN "{name}" {kind}')
            if keys is not None and column:
                con.execute(f"DELETE FROM {table} WHERE {column} IN (SELECT unnest(?))",
                            [keys])
            else:
                con.execute(f"DELETE FROM {table}")
            if not obj.empty:
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM frame")

        in_transaction(self.location, rewrite,
                       on_retry=lambda attempt, error: retries.append(attempt))
        count = "run_rows" if keys is not None and len(keys) > 1 else (
            "dagster/partition_row_count" if keys else "dagster/row_count")
        context.add_output_metadata({count: len(obj), "dagster/storage_kind": "ducklake",
                                     "commit_retries": len(retries)})

    def load_input(self, context: InputContext) -> pd.DataFrame:
        upstream = context.upstream_output
        table = self._table(context)
        column = ((upstream.definition_metadata if upstream else None) or {}).get(
            "partition_expr")
        keys = _partition_keys(context)
        with connection(self.location) as con:
            if keys is not None and column:
                if not keys:
                    return pd.DataFrame()
                return con.execute(f"SELECT * FROM {table} WHERE {column} IN "
                                   "(SELECT unnest(?))", [keys]).fetchdf()
            return con.execute(f"SELECT * FROM {table}").fetchdf()
