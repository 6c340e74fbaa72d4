"""The LLM stages through provider faults, a SIGKILL mid-stage, and a spending cap."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from tests.support.ledger import ledger_ok_wire_keys
from tests.support.loopback_openai import LoopbackOpenAI
from webr_dagster.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def web_en_1k(corpora):
    return str(corpora / "webr-sample" / "web_en_1k.json")


def _final_tables(home: Path):
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        cleaned = con.sql("SELECT page_id FROM webr.cleaned_pages").df()
        filtered = con.sql("SELECT page_id, status, drop_reason FROM webr.filtered_pairs").df()
        splits = con.sql("SELECT prompt_id, page_id FROM webr.sft_splits").df()
    finally:
        con.close()
    return cleaned, filtered, splits


def test_faults_on_a_fifth_of_calls_still_give_every_page_its_pair(
        webr_env, web_en_1k, monkeypatch, capsys):
    with LoopbackOpenAI(latency_s=0.01, fault_rate=0.2, hang_s=4, retry_after_s=0.05,
                        seed=11) as server:
        monkeypatch.setenv("WEBR_API_BASE", server.base_url)
        monkeypatch.setenv("WEBR_TIMEOUT_S", "1")
        monkeypatch.setenv("WEBR_MAX_ATTEMPTS", "12")
        assert main(["run", web_en_1k, "--limit", "120"]) == 0
        faults = server.faults_by_kind
        assert all(faults.get(kind, 0) > 0 for kind in ("429", "500", "hang", "malformed"))
        cleaned, filtered, _ = _final_tables(webr_env)
        assert len(filtered) == len(cleaned) > 100
        assert (filtered["status"] == "ok").all(), filtered["status"].value_counts()
        # Every distinct call was paid exactly once.
        assert server.paid_twice() == {}
        assert server.replies_ok == len(ledger_ok_wire_keys(webr_env))


def test_sigkill_mid_stage_then_rerun_pays_nothing_twice(webr_env, web_en_1k, tmp_path):
    concurrency = 8
    with LoopbackOpenAI(latency_s=0.05) as server:
        env = {**os.environ, "WEBR_API_BASE": server.base_url, "WEBR_CALL_PROCESSES": "0",
               "WEBR_CONCURRENCY": str(concurrency)}
        command = [sys.executable, "-m", "webr_dagster.cli", "run", web_en_1k, "--limit", "200"]
        log = open(tmp_path / "first.log", "w")
        first = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log,
                                 start_new_session=True)
        deadline = time.monotonic() + 240
        # 200 profiles, then the pairs stage: kill it part-way through the pairs.
        while server.requests_total < 400 and time.monotonic() < deadline:
            assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            time.sleep(0.05)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        # What the server answered before the kill, whether or not the client wrote it down.
        paid_before_kill = set(server.ok_reply_keys)
        assert len(paid_before_kill) >= 400 - concurrency

        server.reset_counters()
        second = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=600)
        assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
        paid_again = set(server.request_keys) & paid_before_kill
        # Only replies still on the wire when the process died can be lost: at most one per
        # call in flight. Without the journal, every reply of the last second was.
        assert len(paid_again) <= concurrency, f"{len(paid_again)} paid replies asked again"
        assert server.paid_twice() == {}
    assert not list((webr_env / "llm_calls-journal").glob("*.jsonl"))  # folded and removed

    cleaned, filtered, splits = _final_tables(webr_env)
    assert len(cleaned) == 200 and cleaned["page_id"].is_unique
    assert len(filtered) == 200 and filtered["page_id"].is_unique
    assert (filtered["status"] == "ok").all()
    assert splits["prompt_id"].is_unique and splits["page_id"].is_unique


def test_spending_cap_stops_at_the_cap_and_keeps_what_was_paid(
        webr_env, loopback, web_en_1k, monkeypatch, capsys):
    monkeypatch.setenv("WEBR_INPUT_USD_PER_MTOK", "1.0")
    monkeypatch.setenv("WEBR_OUTPUT_USD_PER_MTOK", "4.0")
    monkeypatch.setenv("WEBR_CONCURRENCY", "8")
    # Four domains, so the cap must hold across the runs of one invocation.
    assert main(["estimate", web_en_1k, "--sample", "--limit", "150"]) == 0
    estimate = float(re.search(r"cost\s+\$([\d.]+)", capsys.readouterr().out).group(1))
    cap = estimate / 4

    code = main(["run", web_en_1k, "--sample", "--limit", "150", "--max-cost", f"{cap:.6f}"])
    captured = capsys.readouterr()
    out = captured.out
    assert "STOPPED AT THE SPENDING CAP" in out
    # The partial set is exported only if it passes the quality gates (pages cut off by
    # the cap can leave it without WR pairs); if not, the run says so and exits 1.
    assert code == 0 or ("QUALITY GATES FAILED" in out and code == 1
                         and "stopped at the spending cap" in captured.err)
    con = duckdb.connect(str(webr_env / "llm_calls.duckdb"), read_only=True)
    spent, largest = con.execute(
        "SELECT sum(cost_usd), max(cost_usd) FROM llm_calls WHERE status = 'ok'").fetchone()
    con.close()
    assert cap * 0.5 < spent <= cap + 8 * largest  # within one concurrency window
    paid = ledger_ok_wire_keys(webr_env)

    loopback.reset_counters()
    assert main(["run", web_en_1k, "--sample", "--limit", "150"]) == 0
    assert not set(loopback.request_keys) & paid  # nothing paid for is asked again
    _, filtered, _ = _final_tables(webr_env)
    assert (filtered["status"] == "ok").all()
