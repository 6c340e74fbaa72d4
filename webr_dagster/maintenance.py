"""DuckLake upkeep as a job: expire old snapshots, merge small files, delete unused ones.

Every re-materialized partition writes new Parquet files and leaves the old ones to
time travel; without this job the data folder only grows. It runs daily once its
schedule is turned on (UI: Automation), or on demand (`lake_maintenance` job)."""

from dagster import (
    Config,
    DefaultScheduleStatus,
    Nothing,
    OpExecutionContext,
    Out,
    Output,
    ScheduleDefinition,
    job,
    op,
)

from .resources import lake
from .resources.storage import Warehouse


class MaintenanceConfig(Config):
    keep_snapshots_s: int = 86400  # a day of time travel; longer than any query


@op(out=Out(Nothing), description="Flush inlined rows, expire snapshots older than "
    "keep_snapshots_s, merge adjacent files, delete files no snapshot uses.")
def maintain_lake(context: OpExecutionContext, config: MaintenanceConfig,
                  warehouse: Warehouse):
    location = warehouse.lake_location
    if location is None:
        context.log.info("the warehouse is the DuckDB file: nothing to maintain")
        return Output(None)
    done = lake.maintain(location, config.keep_snapshots_s)
    context.log.info(f"lake maintenance: {done}")
    return Output(None, metadata=done)  # shown on the run's step


@job(description="DuckLake upkeep (WEBR_STORAGE=ducklake): expire snapshots, merge and "
     "delete old data files.")
def lake_maintenance():
    maintain_lake()


lake_maintenance_schedule = ScheduleDefinition(
    job=lake_maintenance, cron_schedule="0 3 * * *",
    default_status=DefaultScheduleStatus.STOPPED)
