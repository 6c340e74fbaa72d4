"""Everything Dagster loads: assets, jobs, sensors and the resources of this environment.

Runs execute in one process: the DuckDB file accepts one writing process at a time, and
the LLM stage gets its parallelism from async calls rather than from processes.
"""

from dagster import Definitions, in_process_executor

from .assets import ALL_ASSETS
from .checks import ALL_CHECKS
from .jobs import domain_pipeline_job, index_crawl_source_job, splits_job
from .resources.environment import resources_from_env
from .sensors import crawl_landing_sensor, indexed_domains_sensor

defs = Definitions(
    assets=ALL_ASSETS,
    asset_checks=ALL_CHECKS,
    jobs=[index_crawl_source_job, domain_pipeline_job, splits_job],
    sensors=[crawl_landing_sensor, indexed_domains_sensor],
    resources=resources_from_env(),
    executor=in_process_executor,
)
