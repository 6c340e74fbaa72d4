"""The files of a multi-machine deployment: Dagster on PostgreSQL, runs on Celery workers
through a Redis broker, the warehouse and the ledger in a DuckLake every worker reaches.

`webr deploy print-config` writes them; README "Deployment" says how to start each part.
Secrets stay in the environment: the files name the variables, never their values.
"""

from __future__ import annotations

from pathlib import Path

DEPLOY_MARK = "# Written by `webr deploy print-config`"
DAGSTER_YAML = """\
{mark}: Dagster on PostgreSQL, each run on a Celery worker.
# Every process (webserver, daemon, workers) points DAGSTER_HOME at this folder.
telemetry:
  enabled: false
storage:
  postgres:
    postgres_url:
      env: DAGSTER_PG_URL
run_launcher:
  module: dagster_celery.launcher
  class: CeleryRunLauncher
  config:
    broker:
      env: WEBR_CELERY_BROKER
    backend:
      env: WEBR_CELERY_BROKER
concurrency:
  runs:
    max_concurrent_runs: {max_runs}
  pools:
    granularity: run
    default_limit: {writers}
"""
CELERY_YAML = """\
{mark}: the Celery workers' broker (dagster-celery worker start -y celery.yaml).
execution:
  config:
    broker:
      env: WEBR_CELERY_BROKER
    backend:
      env: WEBR_CELERY_BROKER
"""
ENV = """\
{mark}: the environment of every process (webserver, daemon, each worker).
# Add the secrets yourself: DAGSTER_PG_URL's password, PGPASSWORD for the lake's catalog,
# WEBR_API_KEY for the model.
export DAGSTER_HOME={dagster_home}
export DAGSTER_PG_URL={dagster_pg_url}
export WEBR_CELERY_BROKER={broker}
export WEBR_STORAGE=ducklake
export WEBR_LAKE_CATALOG='{lake_catalog}'
export WEBR_LAKE_DATA={lake_data}
export WEBR_LAKE_WRITERS={writers}
export WEBR_DOMAINS_PER_RUN={domains_per_run}
"""


def deployment_files(dagster_home: Path, dagster_pg_url: str, broker: str, lake_catalog: str,
                     lake_data: str, writers: int = 8, domains_per_run: int = 50
                     ) -> dict[str, str]:
    """file name -> text. ``domains_per_run`` is smaller than a single machine's 1,000:
    a backfill's runs are what the workers share out."""
    # dagster-postgres ships psycopg2; SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3.
    if dagster_pg_url.startswith("postgresql://"):
        dagster_pg_url = "postgresql+psycopg2://" + dagster_pg_url[len("postgresql://"):]
    values = {"mark": DEPLOY_MARK, "dagster_home": dagster_home,
              "dagster_pg_url": dagster_pg_url, "broker": broker, "lake_catalog": lake_catalog,
              "lake_data": lake_data, "writers": writers, "max_runs": max(4, writers),
              "domains_per_run": domains_per_run}
    return {"dagster.yaml": DAGSTER_YAML.format(**values),
            "celery.yaml": CELERY_YAML.format(**values),
            "webr.env": ENV.format(**values)}


def write_deployment(out_dir: Path, **options) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in deployment_files(out_dir.resolve(), **options).items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


START_COMMANDS = """\
Start each part with the environment of {env} (source it first):
  PostgreSQL and Redis    already running (the URLs above)
  each worker machine     dagster-celery worker start -A dagster_celery.app -y {celery} -- --pool solo
                          (one task at a time per worker process; start several for more)
  one machine             dagster-daemon run -m webr_dagster.definitions
  one machine             dagster-webserver -m webr_dagster.definitions -h 0.0.0.0
Every machine installs this project (pip install -e ".[deploy]") and reaches WEBR_LAKE_DATA."""
