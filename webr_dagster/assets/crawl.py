"""Crawl sources -> crawl index: where every record is, which domain it belongs to, and
whether it is a page at all. Bodies are not stored here; a domain's run reads its own
records back by offset."""

import pandas as pd
from dagster import AssetExecutionContext, MetadataValue, Output, asset

from ..partitions import crawl_source_partitions
from ..resources.settings import WebRSettings
from ..webr.domains import registrable_domain
from ..webr.readers import iter_records
from .metadata import counts, preview
from .tables import conform



@asset(
    partitions_def=crawl_source_partitions,
    group_name="crawl",
    metadata={"partition_expr": "crawl_source"},
    description="One row per record of a crawl source (WARC, WET, JSONL, JSON list, HTML "
    "folder): location, URL, domain, and 'kept' or the reason it is not a page.",
)
def crawl_index(context: AssetExecutionContext, settings: WebRSettings) -> Output[pd.DataFrame]:
    source = context.partition_key
    by_registrable = settings.domain_grouping == "registrable"

    def domain_of(record):
        # Pages without a URL keep their source's name; the others may group subdomains.
        if by_registrable and record.url:
            return registrable_domain(record.domain)
        return record.domain

    rows = [
        {
            "crawl_source": source,
            "crawl_file": record.crawl_file,
            "record_offset": record.record_offset,
            "url": record.url,
            "domain": domain_of(record),
            "content_type": record.content_type,
            "fetched_at": record.fetched_at,
            "status": "kept" if record.kept else record.reject_reason,
            "detail": record.reject_detail,
        }
        for record in iter_records(source)
    ]
    frame = conform(rows, "crawl_index")
    kept = frame[frame["status"] == "kept"]
    pages_per_domain = {str(k): int(v) for k, v in kept["domain"].value_counts().items()}
    context.log.info(f"{source}: {len(kept)} pages in {len(pages_per_domain)} domains")
    return Output(
        frame,
        metadata={
            "records": len(frame),
            "pages": len(kept),
            # The domain sensor reads this to register partitions and request their runs.
            "domains": MetadataValue.json(pages_per_domain),
            "status_counts": counts(frame["status"]),
            "preview": preview(frame, ["domain", "url", "content_type", "status"]),
        },
    )
