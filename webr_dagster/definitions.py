"""Everything Dagster loads: assets, jobs, sensors and the resources of this environment.

Runs execute in one process: the DuckDB file accepts one writing process at a time, and
the LLM stage gets its parallelism from async calls rather than from processes.
"""

import os
from pathlib import Path

from dagster import Definitions, in_process_executor

from .assets import ALL_ASSETS
from .checks import ALL_CHECKS
from .failures import failure_cause_sensor
from .instance import ensure_dagster_home, limit_warehouse_pool_in_storage
from .jobs import domain_pipeline_job, index_crawl_source_job, splits_job
from .maintenance import lake_maintenance, lake_maintenance_schedule
from .resources.environment import resources_from_env
from .resources.storage import WebRHome
from .sensors import crawl_landing_sensor, indexed_domains_sensor

# However the UI is started (`webr ui`, `dagster dev -w workspace.yaml`, `dg dev`), a
# persistent Dagster home gets the dagster.yaml that queues warehouse writers. It takes
# effect when the UI and daemon next start; a UI that started without one gets the
# pool's limit in its storage instead, so its runs wait for each other already.
if os.environ.get("DAGSTER_HOME"):
    first_load = not (Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml").exists()
    ensure_dagster_home(WebRHome.from_env())
    if first_load:
        limit_warehouse_pool_in_storage(WebRHome.from_env())

defs = Definitions(
    assets=ALL_ASSETS,
    asset_checks=ALL_CHECKS,
    jobs=[index_crawl_source_job, domain_pipeline_job, splits_job, lake_maintenance],
    schedules=[lake_maintenance_schedule],
    sensors=[crawl_landing_sensor, indexed_domains_sensor, failure_cause_sensor],
    resources=resources_from_env(),
    executor=in_process_executor,
)
