"""The Dagster event log the generated dagster.yaml selects: every per-domain event of a
batched run stored (in batches), readable by Dagster's stock SQLite storage (the same
files, so an existing Dagster home keeps its history), nothing half-written when a batch
fails, and no SQLite connection carried into a forked child."""

import os

import pandas as pd
import pytest
from dagster import (
    AssetKey,
    BackfillPolicy,
    DagsterEventType,
    DagsterInstance,
    EventRecordsFilter,
    asset,
    materialize,
)
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from webr_dagster.assets.metadata import per_domain
from webr_dagster.event_log_storage import BatchedSqliteEventLogStorage
from webr_dagster.instance import DAGSTER_YAML, ensure_dagster_home
from webr_dagster.partitions import domain_partitions, range_tags
from webr_dagster.resources.storage import WebRHome

DOMAINS = [f"site{i:03d}.example" for i in range(60)]
batched = BackfillPolicy.multi_run(len(DOMAINS))


@asset(partitions_def=domain_partitions, backfill_policy=batched,
       io_manager_key="mem")
def first_stage(context) -> pd.DataFrame:
    frame = pd.DataFrame({"domain": context.partition_keys})
    per_domain(context, frame, lambda rows: {"rows": len(rows)})
    return frame


@asset(partitions_def=domain_partitions, backfill_policy=batched, io_manager_key="mem")
def second_stage(context, first_stage: pd.DataFrame) -> pd.DataFrame:
    per_domain(context, first_stage, lambda rows: {"rows": len(rows) * 10})
    return first_stage


@pytest.fixture
def instance(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE", raising=False)
    ensure_dagster_home(WebRHome(tmp_path / "webr"))
    with DagsterInstance.from_config(os.environ["DAGSTER_HOME"]) as instance:
        instance.add_dynamic_partitions(domain_partitions.name, DOMAINS)
        yield instance


def _run(instance):
    from dagster import InMemoryIOManager

    return materialize([first_stage, second_stage], instance=instance,
                       resources={"mem": InMemoryIOManager()}, tags=range_tags(DOMAINS))


def _events(storage, kind, key):
    return storage.get_event_records(EventRecordsFilter(event_type=kind, asset_key=key),
                                     limit=10_000)


def test_a_batched_run_stores_every_domains_events_in_a_few_batches(instance, monkeypatch):
    assert DAGSTER_YAML.startswith("# Written by webr-dagster")
    storage = instance.event_log_storage
    assert isinstance(storage, BatchedSqliteEventLogStorage)
    batches = []
    original = BatchedSqliteEventLogStorage.store_event_batch
    monkeypatch.setattr(BatchedSqliteEventLogStorage, "store_event_batch",
                        lambda self, events: (batches.append(len(events)), original(self, events)))

    assert _run(instance).success

    for name, factor in (("first_stage", 1), ("second_stage", 10)):
        key = AssetKey(name)
        done = _events(storage, DagsterEventType.ASSET_MATERIALIZATION, key)
        assert sorted(r.partition_key for r in done) == DOMAINS
        # each domain's own metadata, not the run's
        assert {r.asset_materialization.metadata["rows"].value for r in done} == {factor}
        planned = _events(storage, DagsterEventType.ASSET_MATERIALIZATION_PLANNED, key)
        assert sorted(r.partition_key for r in planned) == DOMAINS
    # 240 asset events (planned + done, 2 assets x 60 domains) went in 3 batches: the
    # planned events of the run, then each asset's materializations.
    assert sorted(batches) == [60, 60, 120]

    # Dagster's own SQLite storage reads the same files: the history survives a switch
    # either way.
    stock = SqliteEventLogStorage(storage._base_dir)
    assert (sorted(r.partition_key for r in _events(
        stock, DagsterEventType.ASSET_MATERIALIZATION, AssetKey("second_stage"))) == DOMAINS)
    assert instance.get_materialized_partitions(AssetKey("first_stage")) == set(DOMAINS)


def test_a_failing_batch_leaves_nothing_half_written(instance, monkeypatch):
    assert _run(instance).success
    storage = instance.event_log_storage
    records = _events(storage, DagsterEventType.ASSET_MATERIALIZATION, AssetKey("first_stage"))
    events = [record.event_log_entry for record in records][:10]
    stored = storage.get_event_records(EventRecordsFilter(
        event_type=DagsterEventType.ASSET_MATERIALIZATION), limit=10_000)

    seen = []
    original = SqliteEventLogStorage._store_asset_event

    def fail_on_the_fifth(self, conn, event, event_id):
        seen.append(event_id)
        if len(seen) == 5:
            raise RuntimeError("disk full")
        return original(self, conn, event, event_id)

    monkeypatch.setattr(SqliteEventLogStorage, "_store_asset_event", fail_on_the_fifth)
    with pytest.raises(RuntimeError, match="disk full"):
        storage.store_event_batch(events)
    monkeypatch.undo()
    assert len(storage.get_event_records(EventRecordsFilter(
        event_type=DagsterEventType.ASSET_MATERIALIZATION), limit=10_000)) == len(stored)
    # and the storage still writes afterwards
    storage.store_event_batch(events)
    assert len(storage.get_event_records(EventRecordsFilter(
        event_type=DagsterEventType.ASSET_MATERIALIZATION), limit=10_000)) == len(stored) + 10


def test_a_forked_child_does_not_reuse_the_parents_connections(instance):
    storage = instance.event_log_storage
    assert _run(instance).success
    assert storage._engines  # the parent holds open engines
    pid = os.fork()
    if pid == 0:  # the child: no engine inherited, and it can open its own
        inherited = len(storage._engines)
        fresh = len(_events(storage, DagsterEventType.ASSET_MATERIALIZATION,
                            AssetKey("first_stage")))
        os._exit(0 if inherited == 0 and fresh == len(DOMAINS) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert storage._engines  # the parent's are untouched
    assert len(_events(storage, DagsterEventType.ASSET_MATERIALIZATION,
                       AssetKey("second_stage"))) == len(DOMAINS)


def test_only_the_index_and_recent_runs_keep_an_open_engine(instance):
    from webr_dagster.event_log_storage import RUN_ENGINES_KEPT

    storage = instance.event_log_storage
    runs = [_run(instance).run_id for _ in range(RUN_ENGINES_KEPT + 3)]
    assert "index" in storage._engines
    assert len(storage._engines) == RUN_ENGINES_KEPT + 1
    assert runs[-1] in storage._engines and runs[0] not in storage._engines
    # an evicted run's log still reads (with a fresh engine)
    assert storage.get_logs_for_run(runs[0])
