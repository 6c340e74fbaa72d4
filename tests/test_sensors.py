"""Sensor ticks: landing folder -> crawl_source partitions and index runs; indexed sources
-> domain partitions and domain runs. Each change is acted on once."""

import os
import shutil
import time

from dagster import DagsterInstance, SensorResult, SkipReason, build_sensor_context, materialize

from webr_dagster.assets import ALL_ASSETS
from webr_dagster.partitions import RANGE_END_TAG, RANGE_START_TAG
from webr_dagster.resources.environment import resources_from_env
from webr_dagster.resources.storage import WebRHome
from webr_dagster.sensors import crawl_landing_sensor, indexed_domains_sensor, landing_changes
from webr_dagster.webr.readers import source_signature


def _settled(path):
    past = time.time() - 3600
    os.utime(path, (past, past))


def test_new_landing_file_gives_partition_and_run_once(webr_env, corpora):
    landing = webr_env / "landing"
    dropped = landing / "ccnet.jsonl"
    shutil.copy(corpora / "ccnet-jsonl" / "cc_en_head-0174.jsonl", dropped)
    _settled(dropped)
    instance = DagsterInstance.get()

    key = WebRHome.from_env().source_key(str(dropped))  # the file's crawl_source key

    first = crawl_landing_sensor(build_sensor_context(instance=instance))
    assert isinstance(first, SensorResult)
    assert [r.partition_key for r in first.run_requests] == [key]
    assert first.dynamic_partitions_requests[0].partition_keys == [key]
    first_key = first.run_requests[0].run_key
    assert source_signature(str(dropped)) in first_key

    second = crawl_landing_sensor(build_sensor_context(instance=instance, cursor=first.cursor))
    assert isinstance(second, SkipReason)

    # A replaced file (new size and mtime) is handled again.
    with open(dropped, "a") as handle:
        handle.write('{"url": "https://new.example/x", "text": "one more page of text"}\n')
    _settled(dropped)
    os.utime(dropped, (time.time() - 1800, time.time() - 1800))
    third = crawl_landing_sensor(build_sensor_context(instance=instance, cursor=first.cursor))
    assert [r.partition_key for r in third.run_requests] == [key]
    # Dagster starts one run per run key: the changed file needs a key of its own.
    assert third.run_requests[0].run_key != first_key
    assert source_signature(str(dropped)) in third.run_requests[0].run_key


def test_file_still_being_written_waits():
    changes = landing_changes({"/l/a.warc.gz": "10:1", "/l/b.jsonl": "20:2"},
                              {"/l/a.warc.gz": 100.0, "/l/b.jsonl": 195.0}, {}, now=200.0)
    assert list(changes) == ["/l/a.warc.gz"]


def _domains_requested(result, partition_order):
    """The domains the result's runs cover: each run names a range of domain partitions."""
    covered = []
    for request in result.run_requests:
        start = partition_order.index(request.tags[RANGE_START_TAG])
        covered += partition_order[start:partition_order.index(request.tags[RANGE_END_TAG]) + 1]
    return covered


def test_indexed_domains_become_partitions_and_runs_once(webr_env, corpora):
    instance = DagsterInstance.get()
    source = str(corpora / "ccnet-jsonl" / "cc_en_head-0174.jsonl")
    instance.add_dynamic_partitions("crawl_source", [source])
    result = materialize(ALL_ASSETS, selection=["crawl_index"], partition_key=source,
                         instance=instance, resources=resources_from_env())
    assert result.success
    domains = sorted(result.asset_materializations_for_node("crawl_index")[0]
                     .metadata["domains"].data)
    assert len(domains) >= 5

    first = indexed_domains_sensor(build_sensor_context(instance=instance))
    assert isinstance(first, SensorResult)
    assert first.dynamic_partitions_requests[0].partition_keys == domains  # added in order
    assert sorted(_domains_requested(first, domains)) == domains  # each domain once

    second = indexed_domains_sensor(build_sensor_context(instance=instance, cursor=first.cursor))
    assert isinstance(second, SkipReason)

    # The source indexed again (a grown file): its domains get runs with new run keys, as
    # Dagster starts no second run for a key it has seen.
    assert materialize(ALL_ASSETS, selection=["crawl_index"], partition_key=source,
                       instance=instance, resources=resources_from_env()).success
    third = indexed_domains_sensor(build_sensor_context(instance=instance, cursor=first.cursor))
    assert sorted(_domains_requested(third, domains)) == domains
    assert not {r.run_key for r in third.run_requests} & {r.run_key for r in first.run_requests}
