"""A warehouse written by an older version keeps working when a stage's table gains a
column: real Dagster materializations through the project's DuckDB IO manager."""

import duckdb
import pandas as pd
from dagster import DagsterInstance, DynamicPartitionsDefinition, asset, materialize

from webr_dagster.resources.storage import SCHEMA, WebRHome, warehouse_io_manager

parts = DynamicPartitionsDefinition(name="domain")


def _stage(columns: dict):
    @asset(name="stage_rows", partitions_def=parts, metadata={"partition_expr": "domain"})
    def stage_rows(context) -> pd.DataFrame:
        return pd.DataFrame({"domain": [context.partition_key], **columns})

    return stage_rows


def test_a_new_column_is_added_and_rows_are_inserted_by_name(tmp_path):
    home = WebRHome(tmp_path).ensure()
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("domain", ["old.example", "new.example"])
    resources = {"io_manager": warehouse_io_manager(home)}

    old = _stage({"page": ["p1"], "words": [10]})
    assert materialize([old], partition_key="old.example", instance=instance,
                       resources=resources).success
    # The newer stage adds a column in the middle: inserting by position would put the
    # score under "words" (or fail on the column count).
    new = _stage({"page": ["p2"], "score": [0.75], "words": [20]})
    assert materialize([new], partition_key="new.example", instance=instance,
                       resources=resources).success
    # And an older writer again, after the column exists.
    assert materialize([old], partition_key="old.example", instance=instance,
                       resources=resources).success

    with duckdb.connect(str(home.warehouse), read_only=True) as db:
        rows = db.execute(f"SELECT domain, page, words, score FROM {SCHEMA}.stage_rows "
                          "ORDER BY domain").fetchall()
    assert rows == [("new.example", "p2", 20, 0.75), ("old.example", "p1", 10, None)]
