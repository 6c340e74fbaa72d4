"""`webr explain`: an example's whole story from the stored tables, after a loopback run."""

import json

import duckdb

from webr_dagster.cli import main


def _export_ids(home):
    rows = (home / "exports" / "webr-sft" / "jsonl" / "train_sft.jsonl").read_text()
    return [json.loads(line) for line in rows.splitlines()]


def test_explain_an_example_and_a_page(webr_env, capsys):
    assert main(["run", "--sample"]) == 0
    capsys.readouterr()
    example = _export_ids(webr_env)[0]

    assert main(["explain", example["prompt_id"], "--json"]) == 0
    story = json.loads(capsys.readouterr().out)
    assert story["example"]["prompt_id"] == example["prompt_id"]
    assert story["example"]["messages"] == example["messages"]
    assert story["verdict"].startswith("in the splits")
    assert story["pair"]["kept"] and story["author_profile"]["status"] == "ok"

    # Every call it names is in the ledger, with its reply; they are the pair's calls.
    keys = {call["call_key"] for call in story["llm_calls"]}
    expected = {story["author_profile"]["call_key"]} | {
        story["pair"][c] for c in ("request_call_key", "answer_call_key", "response_call_key")
        if story["pair"][c]}
    assert keys == expected and len(keys) == (4 if example["role"] == "WR" else 3)
    with duckdb.connect(str(webr_env / "llm_calls.duckdb"), read_only=True) as con:
        ledger = dict(con.execute("SELECT call_key, reply FROM llm_calls WHERE status = 'ok' "
                                  "AND call_key IN (SELECT unnest(?))", [list(keys)]).fetchall())
    assert ledger == {call["call_key"]: call["reply"] for call in story["llm_calls"]}
    assert example["messages"][1]["content"].strip() in {r.strip() for r in ledger.values()}

    # The crawl file and byte offset read the page back.
    crawl = story["crawl"]
    with open(crawl["crawl_file"], "rb") as handle:
        handle.seek(crawl["record_offset"])
        record = json.loads(handle.readline())
    assert record["url"] == example["source_url"]
    assert story["cleaned_page"]["title"] in record["html"]

    # The same page by URL, for a person.
    assert main(["explain", "--url", example["source_url"]]) == 0
    text = capsys.readouterr().out
    assert text.startswith("verdict: in the splits")
    assert "== LLM call request" in text and "== author profile" in text

    assert main(["explain", "no-such-id"]) == 1
    assert main(["explain", "--url", "https://nowhere.example/"]) == 1
