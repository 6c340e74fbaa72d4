"""Sensors: new crawl sources in the landing folder -> index runs; freshly indexed domains
-> domain partitions and their runs.

Ticks stay cheap: the landing sensor only lists names, sizes and mtimes; records are read
by the index run. Neither sensor opens DuckDB (a run may hold its write lock): the domain
sensor learns the domains from the index materialization's metadata.
"""

import json
import time

from dagster import (
    AssetKey,
    DagsterEventType,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from .jobs import domain_pipeline_job, index_crawl_source_job
from .partitions import crawl_source_partitions, domain_batches, domain_partitions, range_tags
from .resources.storage import WebRHome
from .webr.readers import find_crawl_sources, source_signature

# A file modified more recently than this may still be being written: wait a tick.
SETTLE_SECONDS = 10.0
DOMAIN_EVENTS_PER_TICK = 200


def landing_changes(
    sources_and_signatures: dict[str, str], mtimes: dict[str, float], handled: dict[str, str],
    now: float, settle_seconds: float = SETTLE_SECONDS,
) -> dict[str, str]:
    """Sources that are new or changed since handled and have stopped changing."""
    return {
        source: signature
        for source, signature in sources_and_signatures.items()
        if handled.get(source) != signature and now - mtimes[source] >= settle_seconds
    }


def _mtime(signature: str) -> float:
    return float(signature.rsplit(":", 1)[-1]) / 1e9


@sensor(
    job=index_crawl_source_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Watches $WEBR_HOME/landing; each new or changed crawl file (or folder of "
    "HTML) becomes a crawl_source partition and gets one index run.",
)
def crawl_landing_sensor(context: SensorEvaluationContext):
    home = WebRHome.from_env()
    landing = home.landing
    if not landing.is_dir():
        return SkipReason(f"no landing folder at {landing}")
    handled: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    # Keyed by the path inside the landing folder: short, readable, and the same key as
    # `webr run` gives the same file.
    signatures = {home.source_key(source): source_signature(source)
                  for source in find_crawl_sources([landing])}
    mtimes = {source: _mtime(sig) for source, sig in signatures.items()}
    ready = landing_changes(signatures, mtimes, handled, time.time())
    if not ready:
        return SkipReason("no new or changed crawl files")
    known = set(context.instance.get_dynamic_partitions(crawl_source_partitions.name))
    handled.update(ready)
    return SensorResult(
        run_requests=[
            RunRequest(run_key=f"{source}@{signature}", partition_key=source)
            for source, signature in sorted(ready.items())
        ],
        dynamic_partitions_requests=[
            crawl_source_partitions.build_add_request(sorted(set(ready) - known))
        ],
        cursor=json.dumps(handled, sort_keys=True),
    )


@sensor(
    job=domain_pipeline_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="After a crawl source is indexed, registers its web domains as partitions "
    "and requests WebR runs for the new or grown domains, in batches of contiguous "
    "partitions; domains another run already built from that index are left alone.",
)
def indexed_domains_sensor(context: SensorEvaluationContext):
    batch = context.instance.fetch_materializations(
        AssetKey("crawl_index"), limit=DOMAIN_EVENTS_PER_TICK, cursor=context.cursor,
        ascending=True,
    )
    if not batch.records:
        return SkipReason("no newly indexed crawl sources")
    # One run per domain per tick, however many of this tick's sources it appears in.
    latest_event: dict[str, int] = {}
    for record in batch.records:
        domains = record.asset_materialization.metadata.get("domains")
        for domain in (domains.data if domains else None) or {}:
            latest_event[domain] = record.storage_id
    known = context.instance.get_dynamic_partitions(domain_partitions.name)
    new = sorted(set(latest_event) - set(known))
    # A domain whose last stage was materialized, or planned by a run that is queued or
    # in progress, after this index (by the CLI, a backfill, a Materialize click or a run
    # of an earlier tick) is taken care of.
    storage = context.instance.event_log_storage
    handled = {}
    for event_type in (DagsterEventType.ASSET_MATERIALIZATION,
                       DagsterEventType.ASSET_MATERIALIZATION_PLANNED):
        for domain, storage_id in storage.get_latest_storage_id_by_partition(
                AssetKey("filtered_pairs"), event_type, set(latest_event)).items():
            handled[domain] = max(handled.get(domain, -1), storage_id)
    stale = [d for d, storage_id in latest_event.items() if handled.get(d, -1) < storage_id]
    return SensorResult(
        run_requests=[
            RunRequest(run_key=f"{part[0]}..{part[-1]}@{max(latest_event[d] for d in part)}",
                       tags=range_tags(part))
            for part in domain_batches(stale, [*known, *new])
        ],
        dynamic_partitions_requests=[domain_partitions.build_add_request(new)],
        cursor=batch.cursor,
    )
