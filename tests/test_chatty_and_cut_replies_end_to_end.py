"""A model that wraps its replies ("Here is the request:" and quotes) and sometimes stops at
the token cap, end to end through `webr run` against a loopback server: nothing wrapped and
nothing cut reaches the export, and filtered_pairs says what was stripped and dropped."""

import json
import zlib

import duckdb
import pytest

from tests.support.loopback_openai import LoopbackOpenAI, default_reply
from webr_dagster.cli import main


def _fraction(messages, salt: str) -> float:
    return zlib.crc32((salt + json.dumps(messages, sort_keys=True)).encode()) / 2**32


PREAMBLES = ("Here is the rewritten request:", "Here's my answer:")
QUOTES = str.maketrans("", "", '"\u201c\u201d')


def chatty_reply(messages) -> str:
    # The loopback's reply is words of the prompt; without quote marks of its own, the
    # wrapping below is the only quoting, so a quoted example can only be a wrapper left.
    text = default_reply(messages).translate(QUOTES)
    draw = _fraction(messages, "chatty")
    if draw < 0.3:
        return f"{PREAMBLES[0]}\n\n{text}"
    if draw < 0.5:
        return f'"{text}"'
    if draw < 0.6:
        return f'{PREAMBLES[1]}\n\u201c{text}\u201d'
    return text


def cut_some(messages) -> bool:
    return _fraction(messages, "cut") < 0.15


@pytest.fixture
def web_en_1k(corpora):
    return str(corpora / "webr-sample" / "web_en_1k.json")


def test_wrapped_and_cut_replies_never_reach_the_export(webr_env, web_en_1k, monkeypatch):
    with LoopbackOpenAI(reply_fn=chatty_reply, length_fn=cut_some) as server:
        monkeypatch.setenv("WEBR_API_BASE", server.base_url)
        assert main(["run", web_en_1k, "--limit", "80"]) == 0
        assert server.length_reply_keys

    con = duckdb.connect(str(webr_env / "warehouse.duckdb"), read_only=True)
    filtered = con.sql("SELECT * FROM webr.filtered_pairs").df()
    con.close()
    reasons = filtered["drop_reason"].value_counts().to_dict()
    assert reasons.get("truncated", 0) > 0
    assert (filtered.loc[filtered["status"] == "truncated", "kept"] == False).all()  # noqa: E712
    stripped = filtered["stripped"].dropna()
    assert stripped.str.contains("preamble").any() and stripped.str.contains("quotes").any()

    export = webr_env / "exports" / "webr-sft" / "jsonl"
    examples = [json.loads(line) for split in ("train_sft", "test_sft")
                for line in (export / f"{split}.jsonl").read_text().splitlines()]
    assert examples
    kept_ids = set(filtered.loc[filtered["kept"], "page_id"])
    assert {e["page_id"] for e in examples} <= kept_ids
    for example in examples:
        user, assistant = (m["content"] for m in example["messages"])
        # generated text only: the WI user turn also holds the page, quotes and all
        generated = [assistant] if example["role"] == "WI" else [user, assistant]
        for turn in generated:
            assert not any(preamble in turn for preamble in PREAMBLES)
            assert turn == turn.translate(QUOTES)
        assert not any(preamble in user for preamble in PREAMBLES)
    # No example was built from a reply that stopped at the cap.
    truncated_pages = set(filtered.loc[filtered["status"] == "truncated", "page_id"])
    assert truncated_pages and not truncated_pages & {e["page_id"] for e in examples}
