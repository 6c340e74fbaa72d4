"""Sensor ticks: landing folder -> crawl_source partitions and index runs; indexed sources
-> domain partitions and domain runs. Each change is acted on once."""

import os
import shutil
import time

from dagster import DagsterInstance, SensorResult, SkipReason, build_sensor_context, materialize

from webr_dagster.assets import ALL_ASSETS
from webr_dagster.resources.environment import resources_from_env
from webr_dagster.sensors import crawl_landing_sensor, indexed_domains_sensor, landing_changes


def _settled(path):
    past = time.time() - 3600
    os.utime(path, (past, past))


def test_new_landing_file_gives_partition_and_run_once(webr_env, corpora):
    landing = webr_env / "landing"
    dropped = landing / "ccnet.jsonl"
    shutil.copy(corpora / "ccnet-jsonl" / "cc_en_head-0174.jsonl", dropped)
    _settled(dropped)
    instance = DagsterInstance.get()

    first = crawl_landing_sensor(build_sensor_context(instance=instance))
    assert isinstance(first, SensorResult)
    assert [r.partition_key for r in first.run_requests] == [str(dropped)]
    assert first.dynamic_partitions_requests[0].partition_keys == [str(dropped)]

    second = crawl_landing_sensor(build_sensor_context(instance=instance, cursor=first.cursor))
    assert isinstance(second, SkipReason)

    # A replaced file (new size and mtime) is handled again.
    with open(dropped, "a") as handle:
        handle.write('{"url": "https://new.example/x", "text": "one more page of text"}\n')
    _settled(dropped)
    os.utime(dropped, (time.time() - 1800, time.time() - 1800))
    third = crawl_landing_sensor(build_sensor_context(instance=instance, cursor=first.cursor))
    assert [r.partition_key for r in third.run_requests] == [str(dropped)]


def test_file_still_being_written_waits():
    changes = landing_changes({"/l/a.warc.gz": "10:1", "/l/b.jsonl": "20:2"},
                              {"/l/a.warc.gz": 100.0, "/l/b.jsonl": 195.0}, {}, now=200.0)
    assert list(changes) == ["/l/a.warc.gz"]


def test_indexed_domains_become_partitions_and_runs_once(webr_env, corpora):
    instance = DagsterInstance.get()
    source = str(corpora / "ccnet-jsonl" / "cc_en_head-0174.jsonl")
    instance.add_dynamic_partitions("crawl_source", [source])
    result = materialize(ALL_ASSETS, selection=["crawl_index"], partition_key=source,
                         instance=instance, resources=resources_from_env())
    assert result.success
    domains = result.asset_materializations_for_node("crawl_index")[0].metadata["domains"].data

    first = indexed_domains_sensor(build_sensor_context(instance=instance))
    assert isinstance(first, SensorResult)
    assert sorted(r.partition_key for r in first.run_requests) == sorted(domains)
    assert sorted(first.dynamic_partitions_requests[0].partition_keys) == sorted(domains)
    assert len(domains) >= 5

    second = indexed_domains_sensor(build_sensor_context(instance=instance, cursor=first.cursor))
    assert isinstance(second, SkipReason)
