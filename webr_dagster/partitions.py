"""Dynamic partitions: one per crawl source (file or folder of HTML) and one per web domain.

A crawl has thousands of hosts with a page or two each, so domains are processed in
batches: one run materializes a contiguous range of up to ``DOMAINS_PER_RUN`` domain
partitions (each still gets its own materialization and metadata), paying Dagster's run
start-up and the LLM client's start-up once per batch instead of once per domain.
"""

import functools
import os
import warnings
from contextlib import contextmanager

from dagster import BackfillPolicy, DynamicPartitionsDefinition

# Dagster marks `backfill_policy` as beta; it is what lets a UI backfill run domains in
# batches, and the warning would otherwise print on every load of the definitions.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`")

crawl_source_partitions = DynamicPartitionsDefinition(name="crawl_source")
domain_partitions = DynamicPartitionsDefinition(name="domain")

# A run costs about 2.5 s of its own (Dagster's run, each LLM stage filling and draining
# its concurrency pool) against ~20 ms per domain; 1,000 two-page domains are 2,000 pages,
# small for memory, and a failed run loses nothing paid for (the ledger has the replies).
# bench/many_domains.py: 300 hosts in two runs of 200 took 1.44x the one-host time, in
# one run 1.25x.
# WEBR_DOMAINS_PER_RUN: smaller in a multi-worker deployment, where a backfill's runs are
# what the workers share out.
DOMAINS_PER_RUN = int(os.environ.get("WEBR_DOMAINS_PER_RUN") or 1000)
# UI backfills of domain assets launch one run per range of this many domains.
domain_backfill_policy = BackfillPolicy.multi_run(max_partitions_per_run=DOMAINS_PER_RUN)
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def domain_batches(targets: list[str], ordered_keys: list[str],
                   size: int = DOMAINS_PER_RUN) -> list[list[str]]:
    """Split ``targets`` into runs: contiguous stretches of the partitions' own order (a run
    covers a key range, and must not sweep in domains that were not asked for), at most
    ``size`` domains each."""
    wanted = set(targets)
    batches: list[list[str]] = []
    current: list[str] = []
    for key in ordered_keys:
        if key in wanted and len(current) < size:
            current.append(key)
            continue
        if current:
            batches.append(current)
        current = [key] if key in wanted else []
    if current:
        batches.append(current)
    return batches


def range_tags(batch: list[str]) -> dict[str, str]:
    return {RANGE_START_TAG: batch[0], RANGE_END_TAG: batch[-1]}


def domains_of(context) -> list[str]:
    """The domains an asset's run covers. A one-domain run answers without listing the
    partitions (which also lets a test invoke an asset on a key no instance knows)."""
    key_range = context.partition_key_range
    if key_range.start == key_range.end:
        return [key_range.start]
    return list(context.partition_keys)


@contextmanager
def partitions_read_once(instance):
    """Answer the instance's dynamic-partition lookups from memory for a moment.

    ``add_asset_metadata(partition_key=...)`` checks the key against the run's range by
    listing every partition of the definition from storage, twice per call: with 200
    domains per run and 10,000 known, that listing was the largest per-domain cost after
    the event writes. Nothing adds partitions while a step records its metadata.
    """
    listed = functools.lru_cache(maxsize=None)(instance.get_dynamic_partitions)
    members: dict[str, frozenset[str]] = {}

    def has_partition(partitions_def_name: str, partition_key: str) -> bool:
        if partitions_def_name not in members:
            members[partitions_def_name] = frozenset(listed(partitions_def_name))
        return partition_key in members[partitions_def_name]

    instance.get_dynamic_partitions = listed
    instance.has_dynamic_partition = has_partition
    try:
        yield
    finally:
        del instance.get_dynamic_partitions, instance.has_dynamic_partition

