"""The documented deployment, for real: Dagster's storage in PostgreSQL, the daemon, two
Celery worker processes behind a Redis broker, the warehouse and the ledger in a DuckLake
on PostgreSQL, the files written by `webr deploy print-config`. A backfill of a crawl's
13 domains runs on the workers against the loopback LLM server; the result equals the
embedded single-file run example for example, and no LLM call is sent twice."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from tests.support.postgres import new_database
from webr_dagster.cli import main
from webr_dagster.resources.storage import WebRHome

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
CRAWL = "warc-samples/dolma-sample-0000.warc.gz"  # 22 pages in 13 domains
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


def _splits(home: WebRHome) -> pd.DataFrame:
    with home.warehouse_connection() as con:
        return con.execute("SELECT prompt_id, split, page_id, domain FROM webr.sft_splits "
                           "ORDER BY prompt_id").fetchdf()


def _env_file(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        match = re.match(r"export (\w+)=(.*)", line)
        if match:
            found[match[1]] = match[2].strip("'")
    return found


def _start(command, env, log: Path) -> subprocess.Popen:
    return subprocess.Popen(command, env=env, cwd=ROOT, stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def test_a_backfill_on_two_celery_workers_equals_the_embedded_run(
        webr_env, loopback, corpora, postgres_dsn, redis_url, tmp_path, monkeypatch):
    crawl = str(corpora / CRAWL)
    # The embedded run: one DuckDB file, one process.
    assert main(["run", crawl]) == 0
    embedded = _splits(WebRHome.from_env())
    embedded_calls = loopback.requests_total
    assert len(embedded) >= 8 and embedded_calls > 0
    loopback.reset_counters()

    # The deployment's files, from the CLI.
    settings = dict(re.findall(r"(\w+)=(\S+)", postgres_dsn))
    dagster_db = new_database(postgres_dsn, "webr_dagster")
    lake_db = new_database(postgres_dsn, "webr_lake")
    deploy = tmp_path / "deploy"
    assert main(["deploy", "print-config", "--out", str(deploy),
                 "--dagster-postgres", f"postgresql://{settings['user']}@{settings['host']}:"
                                       f"{settings['port']}/{dagster_db}",
                 "--redis", f"{redis_url}/{os.getpid() % 16}",
                 "--lake-catalog", f"postgres:dbname={lake_db} {postgres_dsn}",
                 "--lake-data", str(tmp_path / "lake_data"), "--domains-per-run", "1"]) == 0
    deployed = _env_file(deploy / "webr.env")
    assert deployed["DAGSTER_HOME"] == str(deploy.resolve())
    home = tmp_path / "worker_home"
    for name, value in {**deployed, "WEBR_HOME": str(home)}.items():
        monkeypatch.setenv(name, value)
    # dagster-celery starts `celery` from PATH: this interpreter's.
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}

    # The crawl is indexed and its domains registered (the landing sensor's work).
    from webr_dagster.runner import Runner

    index = Runner().index([crawl])
    domains = sorted(index.pages_by_domain)
    assert len(domains) >= 8

    # The backfill queues one run per domain (QueuedRunCoordinator). Queued before the
    # daemon starts, they are what indexed_domains_sensor sees on its first tick: it
    # leaves those domains to them.
    backfill = subprocess.run(
        [str(BIN / "dagster"), "job", "backfill", "-m", "webr_dagster.definitions",
         "-j", "webr_domain", "--partitions", ",".join(domains), "--noprompt"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert backfill.returncode == 0, backfill.stdout + backfill.stderr
    logs = tmp_path / "logs"
    logs.mkdir()
    workers = [_start([str(BIN / "dagster-celery"), "worker", "start", "-A",
                       "dagster_celery.app", "-y", str(deploy / "celery.yaml"),
                       "-n", f"webr-worker-{i}", "--", "--pool", "solo"],
                      env, logs / f"worker-{i}.log") for i in range(2)]
    daemon = _start([str(BIN / "dagster-daemon"), "run", "-m", "webr_dagster.definitions"],
                    env, logs / "daemon.log")
    try:
        instance = DagsterInstance.get()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            runs = instance.get_runs(RunsFilter(job_name="webr_domain"))
            if len(runs) == len(domains) and all(r.status in FINISHED for r in runs):
                break
            time.sleep(2)
        statuses = [r.status for r in instance.get_runs(RunsFilter(job_name="webr_domain"))]
        assert statuses.count(DagsterRunStatus.SUCCESS) == len(domains), statuses
    finally:
        for process in (daemon, *workers):
            _stop(process)
    # Both workers executed runs.
    for i in range(2):
        log = (logs / f"worker-{i}.log").read_text()
        assert re.search(r"Task execute_job\[[\w-]+\] succeeded", log), log[-3000:]

    # Every call once: the workers shared one ledger in the lake.
    assert max(loopback.request_keys.values()) == 1
    assert loopback.requests_total == embedded_calls

    # The splits over the lake equal the embedded run's, example for example.
    result = Runner().build_splits()
    assert result.success
    pd.testing.assert_frame_equal(_splits(WebRHome.from_env()), embedded)
