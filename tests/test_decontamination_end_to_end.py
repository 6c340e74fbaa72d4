"""Pages that quote real benchmark prompts, end to end through `webr run` against a
loopback model that lifts quotes from what it reads (as real models do): no quoting
example reaches the splits, each is in decontaminated_pairs with its benchmark and prompt
id, and pages on the same topics that quote nothing are kept."""

import json
import re

import duckdb

from tests.support.loopback_openai import LoopbackOpenAI, default_reply
from webr_dagster.cli import main
from webr_dagster.webr.decontaminate import load_benchmarks

# (host, benchmark, prompt id, how the page quotes it)
QUOTING_PAGES = [
    ("kickball-club.example", "alpaca_eval", "2", "verbatim"),
    ("closet-corner.example", "alpaca_eval", "8", "edited"),
    ("pandas-notes.example", "arena_hard_v2", "28b81667160545a9", "verbatim"),
    ("date-columns.example", "arena_hard_v2", "dcac3317be714a64", "edited"),
    ("crusader-states.example", "ifeval", "1000", "verbatim"),
    ("kyoto-journeys.example", "ifeval", "1001", "edited"),
]
INTRO = ("Readers send us questions every week, and this month one of them stood out "
         "because it is the kind of request people type into chat assistants all the time. "
         "We reprint it here exactly as it reached our inbox, and our editors then discuss "
         "how a careful writer would approach it, what sources help, and which mistakes "
         "come up again and again when people try it for the first time.")
OUTRO = ("Our editors agreed that the best answers start by restating the goal, list what "
         "is known, and check the result against a second source before publishing.")
CLEAN_PAGES = {
    "kickball-rules.example": (
        "Kickball is played on a diamond much like softball. The pitcher rolls a large "
        "rubber ball toward home plate, the kicker boots it into the field, and runners "
        "advance around the bases. Outs come from catching a kicked ball in the air, "
        "tagging a runner, or forcing a runner at a base. Most recreational leagues play "
        "five or six innings, and a team bats until it makes three outs."),
    "groupby-guide.example": (
        "Grouping rows in pandas starts with the groupby method, which splits a frame by "
        "the values of one or more columns. After the split you can aggregate each group "
        "with sum, mean or count, transform the values while keeping the original shape, "
        "or filter whole groups out. Counting how often each value occurs inside a group "
        "is a common task, and value_counts after a groupby does it in one line."),
}


def edited(text: str) -> str:
    """A light edit: lower case and the last punctuation mark dropped; in a prompt of 20
    words or more, also one word in the middle changed. (A short prompt with a changed word
    is another question, and is not caught: README, Decontamination.)"""
    text = text.lower().rstrip(".?!")
    tokens = text.split(" ")
    if len(tokens) >= 20:
        tokens[len(tokens) // 2] = "WEBRTEST"
    return " ".join(tokens)


def page_html(host: str, body: str) -> str:
    title = host.split(".")[0].replace("-", " ").title()
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{title}"
            f"</title></head><body><article><h1>{title}</h1><p>{body}</p></article>"
            "</body></html>")


def words(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def test_quoted_benchmark_prompts_never_reach_the_splits(webr_env, tmp_path, monkeypatch,
                                                         capsys):
    prompts = {(p.benchmark, p.prompt_id): p.text
               for p in load_benchmarks(["alpaca_eval", "arena_hard_v2", "ifeval"])}
    quotes = {}
    lines = []
    for host, benchmark, prompt_id, how in QUOTING_PAGES:
        text = prompts[(benchmark, prompt_id)]
        quote = text if how == "verbatim" else edited(text)
        assert quote != text or how == "verbatim"
        quotes[host] = quote
        lines.append({"url": f"https://{host}/mailbag",
                      "html": page_html(host, f"{INTRO} \u201c{quote}\u201d {OUTRO}")})
    for host, body in CLEAN_PAGES.items():
        lines.append({"url": f"https://{host}/guide", "html": page_html(host, body)})
    crawl = tmp_path / "crawl.jsonl"
    crawl.write_text("\n".join(json.dumps(line) for line in lines) + "\n")

    def quoting_model(messages) -> str:
        """Lifts a quote it reads into its reply, as a request or an answer."""
        seen = words(" ".join(str(m.get("content")) for m in messages))
        for quote in quotes.values():
            if words(quote) in seen:
                return f"Here is what the reader asked: {quote}"
        return default_reply(messages)

    monkeypatch.setenv("WEBR_MIX_TOLERANCE", "10")  # no trimming: every kept pair is split
    with LoopbackOpenAI(reply_fn=quoting_model) as server:
        monkeypatch.setenv("WEBR_API_BASE", server.base_url)
        assert main(["run", str(crawl)]) == 0

    con = duckdb.connect(str(webr_env / "warehouse.duckdb"), read_only=True)
    checked = con.sql("SELECT * FROM webr.decontaminated_pairs").df()
    splits = con.sql("SELECT source_url, messages FROM webr.sft_splits").df()
    con.close()
    by_host = {url.split("/")[2]: row for url, row in zip(checked["url"],
                                                          checked.to_dict("records"))}
    for host, benchmark, prompt_id, _ in QUOTING_PAGES:
        row = by_host[host]
        assert not row["kept"] and row["drop_reason"] == "contaminated", host
        assert (row["benchmark"], row["benchmark_prompt_id"]) == (benchmark, prompt_id), host
        assert row["contaminated_turn"] in ("user", "assistant")
        assert row["match_kind"] in ("13-gram", "8-gram", "whole prompt")
    exported = " ".join(words(m) for m in splits["messages"])
    for quote in quotes.values():
        assert words(quote) not in exported
    kept_hosts = {url.split("/")[2] for url in splits["source_url"]}
    assert kept_hosts == set(CLEAN_PAGES)
    assert all(by_host[host]["kept"] for host in CLEAN_PAGES)

    # `webr explain` tells why a quoting page is not in the set.
    capsys.readouterr()
    assert main(["explain", "--url", "https://kickball-club.example/mailbag"]) == 0
    told = capsys.readouterr().out
    assert "contaminated" in told and "alpaca_eval prompt 2" in told

    card = (webr_env / "exports" / "webr-sft" / "README.md").read_text()
    decontamination = card.split("## Decontamination")[1].split("##")[0]
    for benchmark, count in (("alpaca_eval | 805", 2), ("arena_hard_v2 | 750", 2),
                             ("ifeval | 541", 2)):
        line = next(line for line in decontamination.splitlines()
                    if line.startswith(f"| {benchmark}"))
        assert line.rstrip(" |").endswith(f"| {count}"), line
