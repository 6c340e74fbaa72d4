"""WEBR_STORAGE=ducklake: the same assets, the same SQL and the same data as the embedded
DuckDB file, with the catalog in a real PostgreSQL and the data in Parquet files; domain
runs write at once (`webr run --workers`) and the ledger never pays twice."""

import json
import os

import pandas as pd

from webr_dagster.cli import main
from webr_dagster.resources.storage import WebRHome

CRAWL_LIMIT = ["--limit", "2"]


def _tables(home: WebRHome) -> dict[str, pd.DataFrame]:
    with home.warehouse_connection() as con:
        return {
            "splits": con.execute("SELECT prompt_id, split, page_id, domain FROM "
                                  "webr.sft_splits ORDER BY prompt_id").fetchdf(),
            "filtered": con.execute("SELECT page_id, domain, kept, drop_reason, request, "
                                    "response FROM webr.filtered_pairs "
                                    "ORDER BY page_id").fetchdf(),
        }


def _use_home(monkeypatch, path) -> WebRHome:
    monkeypatch.setenv("WEBR_HOME", str(path))
    monkeypatch.setenv("DAGSTER_HOME", str(path / "dagster"))
    return WebRHome.from_env()


def test_the_lake_holds_what_the_file_holds(lake_env, loopback, corpora, monkeypatch,
                                            tmp_path, capsys):
    crawl = str(corpora / "warc-samples")
    lake_home = WebRHome.from_env()
    assert lake_home.lake is not None
    assert main(["run", crawl, *CRAWL_LIMIT, "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "2 domain runs at once" in out
    in_lake = _tables(lake_home)
    sent = loopback.requests_total
    assert sent > 0 and max(loopback.request_keys.values()) == 1  # no call sent twice
    # Nothing went to the files: the warehouse and the ledger are in the lake.
    assert not (lake_home.root / "warehouse.duckdb").exists()
    assert not (lake_home.root / "llm_calls.duckdb").exists()
    assert any((lake_home.root / "lake_data").rglob("*.parquet"))

    # The embedded file, from scratch (its own ledger): the same examples, split the same.
    lake_vars = {name: os.environ.pop(name) for name in
                 ("WEBR_STORAGE", "WEBR_LAKE_CATALOG", "WEBR_LAKE_DATA")}
    file_home = _use_home(monkeypatch, tmp_path / "file_home")
    assert main(["run", crawl, *CRAWL_LIMIT]) == 0
    in_file = _tables(file_home)
    assert len(in_file["splits"]) > 10
    for name in in_file:
        pd.testing.assert_frame_equal(in_lake[name], in_file[name], check_dtype=False)
    # The exports too, file for file (the card's table of counts included).
    for split in ("train_sft", "test_sft"):
        name = f"exports/webr-sft/jsonl/{split}.jsonl"
        assert (lake_home.root / name).read_text() == (file_home.root / name).read_text()
    lake_card = (lake_home.root / "exports/webr-sft/README.md").read_text()
    assert lake_card.split("## Pipeline")[1].split("## Mix")[0] == \
        (file_home.root / "exports/webr-sft/README.md").read_text().split(
            "## Pipeline")[1].split("## Mix")[0]

    # Again on the lake, one writer: every call from the lake's ledger, nothing changes.
    for name, value in lake_vars.items():
        monkeypatch.setenv(name, value)
    _use_home(monkeypatch, lake_home.root)
    loopback.reset_counters()
    capsys.readouterr()
    assert main(["run", crawl, *CRAWL_LIMIT]) == 0
    assert loopback.requests_total == 0
    assert "0 calls sent" in capsys.readouterr().out
    pd.testing.assert_frame_equal(_tables(lake_home)["splits"], in_lake["splits"])

    # webr explain reads the lake and its ledger.
    prompt_id = in_lake["splits"]["prompt_id"].iloc[0]
    assert main(["explain", prompt_id, "--json"]) == 0
    story = json.loads(capsys.readouterr().out)
    assert story["example"]["prompt_id"] == prompt_id
    assert story["llm_calls"] and all(call["status"] == "ok" for call in story["llm_calls"])
