"""Per-domain metadata tells what the data cost, from the ledger, even when a rerun paid
nothing; a model with no known price says so instead of $0."""

import duckdb
from dagster import AssetKey, AssetRecordsFilter, DagsterInstance

from webr_dagster.cli import main


def _latest(instance, asset, domain):
    [record] = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=[domain]), limit=1).records
    return record.asset_materialization.metadata


def test_a_rerun_shows_what_the_data_cost_not_zero(webr_env, monkeypatch, capsys):
    monkeypatch.setenv("WEBR_INPUT_USD_PER_MTOK", "1.0")
    monkeypatch.setenv("WEBR_OUTPUT_USD_PER_MTOK", "4.0")
    assert main(["run", "--sample"]) == 0
    assert main(["run", "--sample"]) == 0  # everything from the ledger
    assert "0 calls sent" in capsys.readouterr().out.split("stage counts:")[-1]
    instance = DagsterInstance.get()
    con = duckdb.connect(str(webr_env / "llm_calls.duckdb"), read_only=True)
    for domain in ("citycycling.example", "garden-notes.example"):
        profiles = _latest(instance, "author_profiles", domain)
        paid = con.execute("SELECT sum(cost_usd) FROM llm_calls WHERE status = 'ok' AND "
                           "stage = 'author_profile' AND page_id IN (SELECT unnest(?))",
                           [_page_ids(webr_env, domain)]).fetchone()[0]
        assert profiles["data_cost_usd"].value == paid > 0
        assert profiles["data_calls"].value == 2
    con.close()


def _page_ids(home, domain):
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return [r[0] for r in con.execute(
            "SELECT page_id FROM webr.cleaned_pages WHERE domain = ?", [domain]).fetchall()]
    finally:
        con.close()


def test_a_model_with_no_known_price_says_price_unknown(webr_env, monkeypatch, capsys):
    # A model name no earlier test gave a price to (litellm's price map is process-wide).
    monkeypatch.setenv("WEBR_MODEL", "openai/model-without-a-price")
    assert main(["run", "--sample"]) == 0
    assert "price unknown for 20 calls" in capsys.readouterr().out
    metadata = _latest(DagsterInstance.get(), "instruction_side_pairs", "garden-notes.example")
    assert metadata["data_cost_usd"].value.startswith("price unknown")
