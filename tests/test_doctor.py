"""`webr doctor` says what a run needs and what is wrong, in plain words."""

import socket
import subprocess
import sys

from webr_dagster.cli import main


def test_doctor_passes_against_a_working_model(webr_env, capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "ok    model openai/loopback answers" in out
    assert "FAIL" not in out and "everything a run needs is in place" in out


def test_doctor_names_a_model_that_does_not_answer(webr_env, monkeypatch, capsys):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("WEBR_API_BASE", f"http://127.0.0.1:{port}/v1")
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  model openai/loopback answers: APIConnectionError" in out
    assert "WEBR_API_BASE" in out and "1 problem(s) found" in out


def test_doctor_names_the_process_that_locks_the_ledger(webr_env, capsys):
    ledger = webr_env / "llm_calls.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; con = duckdb.connect(sys.argv[1]); "
         "print('holding', flush=True); sys.stdin.read()", str(ledger)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        assert main(["doctor"]) == 1
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    out = capsys.readouterr().out
    assert "FAIL  llm_calls.duckdb is free to write: locked by another process" in out
    assert f"PID {holder.pid}" in out
