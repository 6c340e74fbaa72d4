"""A persistent Dagster instance under $WEBR_HOME, so dynamic partitions, sensor cursors
and run history survive restarts."""

from __future__ import annotations

import os
from pathlib import Path

from .resources.storage import WebRHome

# Every asset that writes the DuckDB warehouse is in this pool, limited to one run at a
# time (DuckDB admits a single writing process per file). The limit is per run, so every
# way of launching work (a job, an asset page's Materialize, a backfill, automation)
# queues behind the run that holds it instead of failing on the file lock.
WAREHOUSE_POOL = "webr_warehouse"
DAGSTER_YAML = """\
telemetry:
  enabled: false
concurrency:
  runs:
    max_concurrent_runs: 4
  pools:
    granularity: run
    default_limit: 1
"""


def ensure_dagster_home(home: WebRHome) -> Path:
    """Point DAGSTER_HOME at $WEBR_HOME/dagster unless the user chose another."""
    dagster_home = Path(os.environ.setdefault("DAGSTER_HOME", str(home.dagster_home)))
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = dagster_home / "dagster.yaml"
    # Write it if missing, or replace the one older versions wrote (a run-tag limit that
    # asset-page launches and backfills did not carry); a user's own file is left alone.
    if not config.exists() or "key: webr/writes" in config.read_text():
        config.write_text(DAGSTER_YAML)
    return dagster_home


def limit_warehouse_pool_in_storage() -> None:
    """Limit the warehouse pool to one in the Dagster home's own storage: what a UI that
    was started before its dagster.yaml existed reads (with per-step slots)."""
    from dagster import DagsterInstance

    with DagsterInstance.get() as instance:
        instance.event_log_storage.set_concurrency_slots(WAREHOUSE_POOL, 1)
