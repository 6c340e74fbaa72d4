"""Work launched through the Dagster UI's own GraphQL API, against a real `dagster dev`,
is safe on the embedded DuckDB files: an asset-page backfill of three domains, two
Materialize clicks on different domains at the same moment, and `webr run` while the UI
is busy all end in SUCCESS, and no LLM call is answered twice.

One `dagster dev` (webserver + daemon + code server, its own process group) serves the
three scenarios; each works on domains of its own. The crawl is indexed before the UI
starts, by a separate process that has exited (DuckDB admits one writing process per
file). The two sensors are stopped before the UI starts: with them running, the domain
sensor would launch its own runs for the freshly indexed domains at its first tick, and
what each scenario launched would depend on tick timing (the sensors' launches are tested
in test_sensors.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.support.dagster_ui import (DOMAIN_ASSETS, DagsterDev, concurrently, wait_for,
                                      webr_ui, write_crawl)
from tests.support.loopback_openai import LoopbackOpenAI

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpora" / "webr-sample" / "web_en_1k.json"
# Hosts of the crawl indexed before the UI starts, by scenario (sorted = partition order).
BACKFILL_HOSTS = ["a1.example", "a2.example", "a3.example"]
CLICK_HOSTS = ["b1.example", "b2.example"]
BUSY_HOSTS = ["d1.example", "d2.example", "d3.example"]
LATE_HOSTS = ["e1.example"]
UI_HOSTS = BACKFILL_HOSTS + CLICK_HOSTS + BUSY_HOSTS + LATE_HOSTS
# Hosts of the crawl that `webr run` brings while the UI is busy.
CLI_HOSTS = ["c1.example", "c2.example"]
RUN_TIMEOUT_S = 300.0


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    assert CORPUS.is_file(), f"the shared corpora are expected at {CORPUS}"
    tmp = tmp_path_factory.mktemp("ui_launch_paths")
    documents = json.loads(CORPUS.read_text())
    ui_crawl, cli_crawl = tmp / "crawl_ui.jsonl", tmp / "crawl_cli.jsonl"
    next_doc = write_crawl(ui_crawl, UI_HOSTS, documents, 0)
    write_crawl(cli_crawl, CLI_HOSTS, documents, next_doc)

    with LoopbackOpenAI(latency_s=0.05) as server, \
            webr_ui(tmp, ui_crawl, server.base_url) as running:
        assert running.domains == UI_HOSTS
        dagster_yaml = (running.home / "dagster" / "dagster.yaml").read_text()
        assert "granularity: run" in dagster_yaml and "default_limit: 1" in dagster_yaml
        yield SimpleNamespace(dev=running.dev, server=server, env=running.env,
                              cli_crawl=cli_crawl, tmp=tmp)
        # Whatever ran, from the UI or the CLI, is in the instance: all of it succeeded.
        statuses = {run["id"]: run["status"] for run in running.dev.runs()}
        assert statuses and set(statuses.values()) == {"SUCCESS"}, statuses
        assert server.paid_twice() == {}, server.paid_twice()


def assert_success(dev: DagsterDev, runs: list[dict]) -> None:
    failed = {run["id"]: run["status"] for run in runs if run["status"] != "SUCCESS"}
    assert not failed, "\n".join(f"run {run_id} {status}:\n{dev.failure_report(run_id)}"
                                 for run_id, status in failed.items())


def assert_materialized(dev: DagsterDev, run_ids: list[str], domains: list[str]) -> None:
    done = {m for run_id in run_ids for m in dev.materializations(run_id)}
    missing = {(asset, domain) for asset in DOMAIN_ASSETS for domain in domains} - done
    assert not missing, sorted(missing)


def assert_nothing_paid_twice(server: LoopbackOpenAI, sent_before: int) -> int:
    assert server.paid_twice() == {}, server.paid_twice()
    sent = server.replies_ok - sent_before
    assert sent > 0, "the scenario made no LLM calls: nothing was tested"
    return sent


def test_asset_page_backfill_of_three_domains_is_one_run_that_succeeds(ui):
    """Catalog -> select the domain assets -> Materialize selected -> 3 partitions ->
    Launch backfill: one run over the partition range (BackfillPolicy.multi_run)."""
    dev, server = ui.dev, ui.server
    sent_before = server.replies_ok
    started = time.monotonic()
    backfill_id = dev.launch_asset_backfill(DOMAIN_ASSETS, BACKFILL_HOSTS)
    backfill, runs = dev.wait_backfill_finished(backfill_id, timeout_s=RUN_TIMEOUT_S)
    assert_success(dev, runs)
    assert backfill["status"] == "COMPLETED_SUCCESS", backfill
    assert len(runs) == 1, [(r["id"], r["tags"]) for r in runs]
    tags = {tag["key"]: tag["value"] for tag in runs[0]["tags"]}
    assert (tags.get("dagster/asset_partition_range_start"),
            tags.get("dagster/asset_partition_range_end")) == (BACKFILL_HOSTS[0], BACKFILL_HOSTS[-1])
    assert_materialized(dev, [runs[0]["id"]], BACKFILL_HOSTS)
    sent = assert_nothing_paid_twice(server, sent_before)
    print(f"backfill {backfill_id}: 1 run, {sent} LLM calls, "
          f"{time.monotonic() - started:.0f} s from launch to done")


def test_two_materializations_launched_at_once_queue_and_both_succeed(ui):
    """Two asset pages' Materialize -> one partition -> Launch 1 run, at the same moment,
    for two different domains: the pool queues the second behind the first."""
    dev, server = ui.dev, ui.server
    sent_before = server.replies_ok
    started = time.monotonic()
    run_ids = concurrently(*[
        (lambda domain=domain: dev.launch_asset_run(DOMAIN_ASSETS, domain))
        for domain in CLICK_HOSTS])
    runs = list(dev.wait_runs_finished(run_ids, timeout_s=2 * RUN_TIMEOUT_S).values())
    assert_success(dev, runs)
    for run_id, domain in zip(run_ids, CLICK_HOSTS):
        assert_materialized(dev, [run_id], [domain])
    # One at a time: the warehouse pool (limit 1, run granularity) kept them apart.
    first, second = sorted(runs, key=lambda run: run["startTime"])
    assert second["startTime"] >= first["endTime"], (first, second)
    sent = assert_nothing_paid_twice(server, sent_before)
    print(f"two materializations: 2 runs, {sent} LLM calls, "
          f"{time.monotonic() - started:.0f} s from launch to done")


def test_webr_run_while_the_ui_is_busy_queues_both_ways_and_everything_succeeds(ui):
    """`webr run` on a new crawl (same WEBR_HOME and DAGSTER_HOME) started while a run the UI
    launched is executing (Materialize of the domain assets over three domains -> Launch 1
    run), and a second Materialize clicked while the CLI's own run is executing. The CLI waits
    for the UI's run, the UI's queue waits for the CLI's run; every run succeeds and no
    call is paid twice."""
    dev, server = ui.dev, ui.server
    sent_before = server.replies_ok
    # Slower replies keep each run busy long enough for the other side to arrive meanwhile.
    server.latency_s = 2.0
    cli = cli_log = None
    try:
        ui_run_id = dev.launch_asset_run(DOMAIN_ASSETS,
                                         partition_range=(BUSY_HOSTS[0], BUSY_HOSTS[-1]))
        wait_for(lambda: dev.run(ui_run_id)["status"] == "STARTED", RUN_TIMEOUT_S,
                 "the UI's run to start")
        cli_started = time.time()
        cli_log = (ui.tmp / "webr_run.log").open("w+")
        cli = subprocess.Popen([sys.executable, "-m", "webr_dagster.cli", "run", str(ui.cli_crawl)],
                               cwd=ROOT, env=ui.env, stdout=cli_log, stderr=subprocess.STDOUT)

        def cli_run_executing():
            if cli.poll() is not None:
                raise AssertionError("webr run ended before any of its runs was seen executing")
            return [run for run in dev.runs() if run["creationTime"] >= cli_started
                    and run["id"] != ui_run_id and run["status"] == "STARTED"]

        cli_run = wait_for(cli_run_executing, RUN_TIMEOUT_S, "a run of webr run to execute",
                           interval_s=0.2)[0]
        late_run_id = dev.launch_asset_run(DOMAIN_ASSETS, LATE_HOSTS[0])
        cli.wait(timeout=RUN_TIMEOUT_S)
        cli_ended = time.time()
        finished = dev.wait_runs_finished([ui_run_id, late_run_id], timeout_s=RUN_TIMEOUT_S)
    finally:
        server.latency_s = 0.05
        if cli is not None and cli.poll() is None:
            cli.kill()
            cli.wait(timeout=30)
        if cli_log is not None:
            cli_log.flush()
    cli_log.seek(0)
    cli_output = cli_log.read()
    cli_log.close()
    assert cli.returncode == 0, cli_output[-6000:]
    assert "webr run FAILED" not in cli_output
    ui_run, late_run = finished[ui_run_id], finished[late_run_id]
    assert_success(dev, [ui_run, late_run])
    assert_materialized(dev, [ui_run_id], BUSY_HOSTS)
    assert_materialized(dev, [late_run_id], LATE_HOSTS)
    # The CLI's runs are in the same instance (the UI lists them), and they succeeded too.
    cli_runs = [run for run in dev.runs() if run["creationTime"] >= cli_started
                and run["id"] not in (ui_run_id, late_run_id)]
    assert cli_run["id"] in {run["id"] for run in cli_runs}
    assert_success(dev, cli_runs)
    assert_materialized(dev, [run["id"] for run in cli_runs], CLI_HOSTS)
    # The CLI was started while the UI's run was executing, and waited for it to end; the
    # Materialize clicked while the CLI's run was executing waited for that run to end.
    assert cli_started < ui_run["endTime"], (cli_started, ui_run)
    assert min(run["startTime"] for run in cli_runs) >= ui_run["endTime"], (ui_run, cli_runs)
    cli_run = next(run for run in cli_runs if run["id"] == cli_run["id"])
    assert late_run["startTime"] >= cli_run["endTime"], (cli_run, late_run)
    sent = assert_nothing_paid_twice(server, sent_before)
    print(f"webr run beside the UI: UI run {ui_run['endTime'] - ui_run['startTime']:.0f} s, "
          f"CLI {cli_ended - cli_started:.0f} s ({len(cli_runs)} runs, started "
          f"{ui_run['endTime'] - cli_started:.0f} s before the UI's run ended), "
          f"late Materialize {late_run['endTime'] - late_run['startTime']:.0f} s, "
          f"{sent} LLM calls")
