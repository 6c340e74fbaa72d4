"""Every way of launching a write queues on one pool instead of failing on DuckDB's file
lock: each warehouse-writing asset is in the pool, and any persistent Dagster home gets the
dagster.yaml that limits the pool to one run at a time as soon as the definitions load."""

import os
import time
import subprocess
import sys
from pathlib import Path

from dagster import DagsterInstance
from dagster._core.instance.config import PoolGranularity

from webr_dagster.assets import ALL_ASSETS
from webr_dagster.instance import WAREHOUSE_POOL

ROOT = Path(__file__).resolve().parents[1]


def test_every_asset_that_writes_the_warehouse_is_in_the_pool():
    pools = {asset.node_def.name: asset.node_def.pool for asset in ALL_ASSETS}
    assert pools and set(pools.values()) == {WAREHOUSE_POOL}, pools


def test_loading_the_definitions_writes_a_dagster_yaml_that_queues_writers(tmp_path):
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "WEBR_HOME": str(tmp_path / "w")}
    subprocess.run([sys.executable, "-c", "import webr_dagster.definitions"], cwd=ROOT,
                   env=env, check=True, timeout=120)
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        pools = instance.get_concurrency_config().pool_config
        # A UI already running on this home read no dagster.yaml: the limit is in storage.
        stored = instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).slot_count
    assert pools.pool_granularity == PoolGranularity.RUN and pools.default_pool_limit == 1
    assert stored == 1


def test_a_dagster_yaml_of_an_older_version_is_replaced_but_a_users_is_kept(tmp_path, monkeypatch):
    from webr_dagster.instance import ensure_dagster_home
    from webr_dagster.resources.storage import WebRHome

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    config = tmp_path / "dagster" / "dagster.yaml"
    config.parent.mkdir()
    config.write_text("concurrency:\n  runs:\n    tag_concurrency_limits:\n"
                      "      - key: webr/writes\n        limit: 1\n")
    ensure_dagster_home(WebRHome(tmp_path / "w"))
    assert "granularity: run" in config.read_text()
    config.write_text("telemetry:\n  enabled: false\n")  # the user's own
    ensure_dagster_home(WebRHome(tmp_path / "w"))
    assert config.read_text() == "telemetry:\n  enabled: false\n"


def _in_progress_copy(run, tags):
    """A copy of ``run``, in progress, with ``tags`` for the webr/pid tag: another
    process's run."""
    import uuid

    from dagster import DagsterRunStatus
    from dagster._record import copy

    from webr_dagster.runner import PID_TAG

    kept = {k: v for k, v in run.tags.items() if k != PID_TAG}
    return copy(run, run_id=str(uuid.uuid4()), status=DagsterRunStatus.STARTED,
                tags={**kept, **tags})


def test_webr_run_waits_for_a_run_that_holds_the_pool_and_frees_a_killed_ones(webr_env, capsys):
    import threading

    from dagster import DagsterRunStatus

    from webr_dagster.cli import main
    from webr_dagster.runner import PID_TAG

    assert main(["run", "--sample"]) == 0
    instance = DagsterInstance.get()
    gone = subprocess.Popen(["true"])
    gone.wait()
    last = instance.get_runs(limit=1)[0]
    killed = _in_progress_copy(last, {PID_TAG: str(gone.pid)})  # a killed `webr run`
    holder = _in_progress_copy(last, {})  # a run the UI launched, still writing
    for run in (killed, holder):
        instance.run_storage.add_run(run)
    killed, holder = killed.run_id, holder.run_id
    waited = []

    def finish_the_holder_once_waited_for():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if f"waiting for Dagster run {holder}" in capsys.readouterr().out:
                waited.append(holder)
                break
            time.sleep(0.1)
        # Done either way, so a webr run that waits without saying so does not hang.
        instance.report_run_failed(instance.get_run_by_id(holder), "done elsewhere")

    finisher = threading.Thread(target=finish_the_holder_once_waited_for, daemon=True)
    finisher.start()
    assert main(["run", "--sample"]) == 0  # waited for the holder, then ran
    finisher.join(timeout=5)
    assert waited == [holder]
    assert instance.get_run_by_id(killed).status == DagsterRunStatus.FAILURE
