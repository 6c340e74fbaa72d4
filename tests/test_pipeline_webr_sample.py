"""End to end on the WebR paper's 1,000-page sample against a loopback OpenAI server."""

import json
import re

import datasets
import duckdb
import pytest
from dagster import AssetKey, DagsterInstance

from webr_dagster.checks import ALL_CHECKS, GATES
from webr_dagster.cli import main


@pytest.fixture
def web_en_1k(corpora):
    return str(corpora / "webr-sample" / "web_en_1k.json")


def _stage_counts(output: str) -> dict[str, int]:
    block = output.split("stage counts:")[1]
    return {m[0].strip(): int(m[1]) for m in re.findall(r"^  ([a-zA-Z_ ]+?)\s+(\d+)", block, re.M)}


def _check_results() -> dict[str, bool]:
    """The asset checks' verdicts, evaluated in the run that last built sft_splits."""
    instance = DagsterInstance.get()
    built_by = instance.get_latest_materialization_event(AssetKey("sft_splits")).run_id
    results = {}
    for key in (key for check in ALL_CHECKS for key in check.check_keys):
        record = instance.get_latest_asset_check_evaluation_record(key)
        assert record is not None and record.run_id == built_by, key
        results[key.name] = record.event.dagster_event.event_specific_data.passed
    return results


def test_web_en_1k_end_to_end_and_resume(webr_env, loopback, web_en_1k, capsys):
    assert main(["run", web_en_1k]) == 0
    first = capsys.readouterr().out
    counts = _stage_counts(first)
    assert counts["crawl records"] == 1000
    assert counts["raw pages"] >= 950  # the sample holds some exact duplicates
    assert counts["cleaned pages"] == counts["author profiles"] == counts["raw pages"]
    assert counts["WI pairs"] + counts["WR pairs"] == counts["cleaned pages"]
    assert counts["train_sft"] > 0 and counts["test_sft"] > 0
    sent = loopback.requests_total
    # profile + request + (WI response | WR answer + refine) per page
    assert sent == counts["cleaned pages"] * 2 + counts["WI pairs"] + 2 * counts["WR pairs"]
    assert f"{sent} calls sent" in first

    con = duckdb.connect(str(webr_env / "warehouse.duckdb"), read_only=True)
    final = con.sql("SELECT role, scope, split, page_id FROM webr.sft_splits").df()
    con.close()
    wi, wr = (final["role"] == "WI").sum(), (final["role"] == "WR").sum()
    assert 1.8 <= wi / wr <= 2.2
    all_, part = (final["scope"] == "all").sum(), (final["scope"] == "part").sum()
    assert 0.9 <= all_ / part <= 1.1
    assert final["page_id"].is_unique  # one example per page
    assert _check_results() == dict.fromkeys(GATES, True)

    # Running again answers every call from the ledger: nothing reaches the server.
    assert main(["run", web_en_1k]) == 0
    again = capsys.readouterr().out
    assert loopback.requests_total == sent
    assert "0 calls sent" in again
    assert _stage_counts(again) == counts


def test_export_loads_with_datasets_and_duckdb(webr_env, loopback, corpora, capsys):
    assert main(["run", "--sample"]) == 0
    export = webr_env / "exports" / "webr-sft"
    # A cache of its own: datasets may otherwise answer from an earlier load's cache.
    loaded = datasets.load_dataset(str(export), cache_dir=str(webr_env / "hf-cache"))
    assert set(loaded) == {"train_sft", "test_sft"}
    row = loaded["train_sft"][0]
    assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
    assert len(row["prompt_id"]) == 64
    for column in ("source_url", "domain", "page_id", "role", "scope", "model", "templates"):
        assert row[column]
    total = sum(len(split) for split in loaded.values())
    via_duckdb = duckdb.execute(
        f"SELECT count(*) FROM read_parquet('{export}/data/*.parquet')").fetchone()[0]
    assert via_duckdb == total
    jsonl = (export / "jsonl" / "test_sft.jsonl").read_text().splitlines()
    assert len(jsonl) == len(loaded["test_sft"])
    assert json.loads(jsonl[0])["messages"][1]["role"] == "assistant"
    assert "config_name: default" in (export / "README.md").read_text()


def test_secret_never_reaches_storage_or_logs(webr_env, loopback, capsys):
    assert main(["run", "--sample"]) == 0
    secret = "sk-loopback-secret-value"
    assert secret not in capsys.readouterr().out
    for path in webr_env.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
