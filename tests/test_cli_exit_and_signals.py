"""`webr run`'s exit status tells the truth, and Ctrl-C / SIGTERM stop the whole command
within seconds, keeping what came back, so a rerun pays nothing twice."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from tests.support.ledger import ledger_ok_wire_keys
from tests.support.loopback_openai import LoopbackOpenAI
from webr_dagster.cli import main
from webr_dagster.failures import FAILURE_TAG

ROOT = Path(__file__).resolve().parents[1]


def _failure_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("webr run FAILED:")]
    assert len(lines) == 1, err
    return lines[0]


def test_endpoint_down_exits_non_zero_with_the_reason(webr_env, monkeypatch, capsys):
    with socket.socket() as probe:  # a port on which nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("WEBR_API_BASE", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("WEBR_MAX_ATTEMPTS", "2")
    assert main(["run", "--sample"]) == 1
    captured = capsys.readouterr()
    line = _failure_line(captured.err)
    assert "6 of 6 LLM calls failed" in line and "APIConnectionError" in line
    assert "webr doctor" in line
    assert "0 calls sent, 0 answered from the ledger, 6 failed" in captured.out


def test_every_call_failing_on_many_domains_stops_early(webr_env, monkeypatch, tmp_path,
                                                        corpora, capsys):
    crawl = _many_domain_crawl(corpora, tmp_path, hosts=40)
    with LoopbackOpenAI(fault_rate=1.0, faults=("500",)) as server:
        monkeypatch.setenv("WEBR_API_BASE", server.base_url)
        monkeypatch.setenv("WEBR_MAX_ATTEMPTS", "1")
        assert main(["run", str(crawl)]) == 1
        # 80 pages: it gave up after the first 20 failures (and the calls then in flight).
        assert server.requests_total < 20 + 32
    captured = capsys.readouterr()
    assert "answered none of the first 20 calls" in _failure_line(captured.err)
    # The failed Dagster run names its cause in a tag the runs list shows.
    [failed] = DagsterInstance.get().get_runs(RunsFilter(statuses=[DagsterRunStatus.FAILURE]))
    assert failed.tags[FAILURE_TAG].startswith("ModelNotAnswering: ")
    assert "answered none of the first 20 calls" in failed.tags[FAILURE_TAG]


def test_pages_kept_but_no_example_exits_non_zero(webr_env, monkeypatch, capsys):
    refusal = "I'm sorry, but I cannot help with that request."
    with LoopbackOpenAI(reply_fn=lambda messages: refusal) as server:
        monkeypatch.setenv("WEBR_API_BASE", server.base_url)
        assert main(["run", "--sample"]) == 1
    line = _failure_line(capsys.readouterr().err)
    assert "6 pages were cleaned but no example reached the splits" in line


def test_a_good_run_exits_zero(webr_env, capsys):
    assert main(["run", "--sample"]) == 0
    assert "webr run FAILED" not in capsys.readouterr().err


def _many_domain_crawl(corpora, tmp_path, hosts: int, pages_per_host: int = 2) -> Path:
    texts = [r["webpage"] for r in
             json.loads((corpora / "webr-sample" / "web_en_1k.json").read_text())]
    crawl = tmp_path / "crawl.jsonl"
    with crawl.open("w") as out:
        for i in range(hosts * pages_per_host):
            url = f"https://site{i // pages_per_host}.example/page{i}"
            out.write(json.dumps({"url": url, "text": texts[i]}) + "\n")
    return crawl


def _stop_mid_run(command, env, server, signum, log_path, after_requests=15):
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 240
        while server.requests_total < after_requests:  # domains in, calls in flight
            assert process.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        process.send_signal(signum)
        signalled = time.monotonic()
        code = process.wait(timeout=60)
        return code, time.monotonic() - signalled, log_path.read_text()


def test_sigterm_stops_a_many_domain_run_and_a_rerun_pays_nothing_twice(
        webr_env, corpora, tmp_path):
    crawl = _many_domain_crawl(corpora, tmp_path, hosts=10)
    command = [sys.executable, "-m", "webr_dagster.cli", "run", str(crawl)]
    with LoopbackOpenAI(latency_s=0.3) as server:
        env = {**os.environ, "WEBR_API_BASE": server.base_url, "WEBR_CONCURRENCY": "8"}
        code, took, log = _stop_mid_run(command, env, server, signal.SIGTERM,
                                        tmp_path / "first.log")
        assert code == 128 + signal.SIGTERM, log[-3000:]
        assert took < 15, f"{took:.1f} s from SIGTERM to exit"
        assert "STOPPED by SIGTERM" in log and "run the same command again" in log
        assert log.count("[domain ") < 10
        sent_before = server.replies_ok
        answered_before = ledger_ok_wire_keys(webr_env)
        # Every reply the server sent before the stop reached the ledger.
        assert len(answered_before) == sent_before > 0

        instance = DagsterInstance.from_config(str(webr_env / "dagster"))
        canceled = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.CANCELED]))
        assert len(canceled) == 1, [r.status for r in instance.get_runs()]

        server.reset_counters()
        rerun = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                               timeout=600)
        assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
        assert not set(server.request_keys) & answered_before
        assert server.paid_twice() == {}


def test_ctrl_c_exits_130(webr_env, corpora, tmp_path):
    crawl = _many_domain_crawl(corpora, tmp_path, hosts=6)
    command = [sys.executable, "-m", "webr_dagster.cli", "run", str(crawl)]
    with LoopbackOpenAI(latency_s=0.3) as server:
        env = {**os.environ, "WEBR_API_BASE": server.base_url, "WEBR_CONCURRENCY": "8"}
        code, took, log = _stop_mid_run(command, env, server, signal.SIGINT,
                                        tmp_path / "run.log", after_requests=4)
    assert code == 130 and took < 15, log[-3000:]
    assert "STOPPED by SIGINT" in log and "CANCELED" in log  # not run to its end
