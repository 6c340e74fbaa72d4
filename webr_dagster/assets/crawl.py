"""Crawl sources -> crawl index: where every record is, which domain it belongs to, and
whether it is a page at all. Bodies are not stored here; a domain's run reads its own
records back by offset.

The index is written in batches straight to DuckDB, not returned as one frame, so
indexing a crawl file of any size takes the same memory."""

from collections import Counter
from pathlib import Path

import pandas as pd
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset
from dagster_duckdb import DuckDBResource

from ..instance import WAREHOUSE_POOL
from ..partitions import crawl_source_partitions
from ..resources.settings import WebRSettings
from ..resources.storage import SCHEMA, WebRHome
from ..webr.domains import registrable_domain
from ..webr.readers import iter_records
from .metadata import preview
from .tables import conform, create_table_sql

BATCH_ROWS = 5000
PREVIEW_ROWS = 5


def _insert(con, rows: list[dict]) -> None:
    if rows:
        con.register("index_batch", conform(rows, "crawl_index"))
        con.execute(f"INSERT INTO {SCHEMA}.crawl_index SELECT * FROM index_batch")
        con.unregister("index_batch")


@asset(
    pool=WAREHOUSE_POOL,
    partitions_def=crawl_source_partitions,
    group_name="crawl",
    description="One row per record of a crawl source (WARC, WET, JSONL, JSON list, HTML "
    "folder): location, URL, domain, and 'kept' or the reason it is not a page.",
)
def crawl_index(
    context: AssetExecutionContext, settings: WebRSettings, warehouse: DuckDBResource
) -> MaterializeResult:
    source = context.partition_key
    path = WebRHome(Path(settings.webr_home)).source_path(source)
    by_registrable = settings.domain_grouping == "registrable"
    pages_per_domain: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    first_rows: list[dict] = []
    with warehouse.get_connection() as con:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        con.execute(create_table_sql(SCHEMA, "crawl_index"))
        # Each batch commits on its own so memory does not grow with the file; a crash
        # mid-file leaves a partial index that the next run of this partition replaces.
        con.execute(f"DELETE FROM {SCHEMA}.crawl_index WHERE crawl_source = ?", [source])
        batch: list[dict] = []
        for record in iter_records(path):
            domain = record.domain
            if by_registrable and record.url:  # pages without a URL keep their file's name
                domain = registrable_domain(domain)
            status = "kept" if record.kept else record.reject_reason
            row = {
                "crawl_source": source,
                "crawl_file": record.crawl_file,
                "record_offset": record.record_offset,
                "url": record.url,
                "domain": domain,
                "content_type": record.content_type,
                "fetched_at": record.fetched_at,
                "status": status,
                "detail": record.reject_detail,
            }
            statuses[status] += 1
            if record.kept:
                pages_per_domain[domain] += 1
            if len(first_rows) < PREVIEW_ROWS:
                first_rows.append(row)
            batch.append(row)
            if len(batch) >= BATCH_ROWS:
                _insert(con, batch)
                batch = []
        _insert(con, batch)
    records = sum(statuses.values())
    context.log.info(f"{source}: {statuses['kept']} pages in {len(pages_per_domain)} domains")
    return MaterializeResult(
        metadata={
            "records": records,
            "pages": statuses["kept"],
            # The domain sensor reads this to register partitions and request their runs.
            "domains": MetadataValue.json(dict(pages_per_domain)),
            "status_counts": MetadataValue.json(dict(statuses)),
            "preview": preview(pd.DataFrame(first_rows),
                               ["domain", "url", "content_type", "status"]),
        },
    )
