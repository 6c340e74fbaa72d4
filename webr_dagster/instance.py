"""A persistent Dagster instance under $WEBR_HOME, so dynamic partitions, sensor cursors
and run history survive restarts."""

from __future__ import annotations

import os
from pathlib import Path

from .resources.storage import WebRHome

# Runs that write the DuckDB warehouse are queued one at a time: DuckDB admits a single
# writing process per file.
DAGSTER_YAML = """\
telemetry:
  enabled: false
concurrency:
  runs:
    max_concurrent_runs: 4
    tag_concurrency_limits:
      - key: webr/writes
        limit: 1
"""


def ensure_dagster_home(home: WebRHome) -> Path:
    """Point DAGSTER_HOME at $WEBR_HOME/dagster unless the user chose another."""
    dagster_home = Path(os.environ.setdefault("DAGSTER_HOME", str(home.dagster_home)))
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = dagster_home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)
    return dagster_home
