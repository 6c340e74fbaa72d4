"""The filtered_pairs, decontaminated_pairs, sft_splits and sft_export assets, invoked as
Dagster runs them, on a few pairs each: near-duplicates dropped per domain and across
domains, the WI : WR mix, splits by page and by domain, the exported files."""

import json
import re
from collections import Counter

from dagster import DagsterInstance, build_asset_context
from dagster_duckdb import DuckDBResource

from webr_dagster.assets.decontaminated import decontaminated_pairs
from webr_dagster.assets.export import sft_export
from webr_dagster.assets.filtered import apply_rules, filtered_pairs
from webr_dagster.assets.splits import sft_splits
from webr_dagster.assets.tables import conform
from webr_dagster.resources.settings import WebRSettings
from webr_dagster.webr.splits import TEST_SPLIT, TRAIN_SPLIT

GUIDE = ("Write a detailed guide for first-time gardeners on planting tomatoes in spring, "
         "covering soil preparation, spacing, watering schedules and common pests in five "
         "short paragraphs with a friendly tone")
# GUIDE's words, reordered and three reworded: unigram Jaccard 0.83, word 3-gram Jaccard 0.24
GUIDE_REWORDED = ("In five short paragraphs and a friendly tone, compose a detailed guide for "
                  "first-time gardeners on growing tomatoes in spring, covering common pests, "
                  "watering schedules, spacing and soil preparation")


def _request(page: str) -> str:
    """A request sharing no word 3-gram with another page's request."""
    word = re.sub(r"\W", "", page)
    return f"Write about topic {word}: " + " ".join(f"{word}x{j}" for j in range(20))


def _pair(page, role="WI", scope="all", request=None, domain="a.example", offset=0,
          response=None, status="ok", crawl_file=None):
    return {
        "page_id": page, "domain": domain, "url": f"https://{domain}/{page}",
        "crawl_file": crawl_file or f"/crawl/{domain}.jsonl", "record_offset": offset,
        "role": role, "scope": scope, "seed": 42, "sections_total": 1, "sections_kept": 1,
        "truncated": False, "sampled_text": f"The text of page {page}.", "noun": "request",
        "word_limit": 100, "text_first": False, "profile": "a reader",
        "request": request if request is not None else _request(page),
        "first_answer": "A first answer." if role == "WR" else None,
        "response": response if response is not None else f"The answer for page {page}.",
        "status": status, "error": None if status == "ok" else "boom",
        "request_call_key": "k1", "answer_call_key": None, "response_call_key": "k2",
        "templates": "t@v1", "model": "openai/loopback",
    }


def _filtered(pairs, domain="a.example", **settings):
    """(the stored frame, the partition's metadata) of one domain's filtered_pairs."""
    frame = conform(pairs, "pairs")
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("domain", [domain])
    with build_asset_context(partition_key=domain, instance=instance) as context:
        output = filtered_pairs(context, instruction_side_pairs=frame[frame["role"] == "WI"],
                                response_side_pairs=frame[frame["role"] == "WR"],
                                settings=WebRSettings(**settings))
        return output.value, {**output.metadata, **(context.get_output_metadata("result") or {})}


def _kept(pairs):
    """Pairs as filtered_pairs stores them, all kept: the input of sft_splits."""
    rows = [{**p, "user_content": p["request"] + "\n\n" + p["sampled_text"], "kept": True,
             "drop_reason": None, "duplicate_of": None} for p in pairs]
    return conform(rows, "filtered_pairs")


def _settings(tmp_path, **settings):
    return WebRSettings(export_dir=str(tmp_path / "export"), webr_home=str(tmp_path / "home"),
                        **settings)


def _checked(pairs, tmp_path, **settings):
    """decontaminated_pairs' output for ``pairs``, all kept by their domain's filters."""
    with build_asset_context() as context:
        return decontaminated_pairs(context, filtered_pairs=_kept(pairs),
                                    settings=_settings(tmp_path, **settings))


def _splits(pairs, tmp_path, **settings):
    checked = _checked(pairs, tmp_path, **settings).value
    with build_asset_context() as context:
        return sft_splits(context, decontaminated_pairs=checked,
                          settings=_settings(tmp_path, **settings))


# ----------------------------------------------------------------------------- filtered_pairs


def test_filtered_pairs_drops_near_duplicate_requests_keeping_the_earliest_crawled():
    frame, metadata = _filtered([
        _pair("later", request=GUIDE, offset=9),
        _pair("earlier", request=GUIDE + " please", offset=2),
        _pair("other", offset=5),
        _pair("wr-copy", role="WR", request=GUIDE, offset=7),  # another role: not compared
    ])
    frame = frame.set_index("page_id")
    assert not frame.loc["later", "kept"]
    assert frame.loc["later", "drop_reason"] == "near_duplicate"
    assert frame.loc["later", "duplicate_of"] == "earlier"
    assert frame.loc[["earlier", "other", "wr-copy"], "kept"].all()
    assert metadata["drop_reasons"].data == {"near_duplicate": 1}


def test_filtered_pairs_applies_the_methods_rules():
    frame, _ = _filtered([
        _pair("failed", status="error"),
        _pair("empty", response="  "),
        _pair("refusal", response="I'm sorry, I cannot help with that."),
        _pair("refined", role="WR",
              response="Here is the improved answer:\n\nThe better answer itself."),
    ])
    frame = frame.set_index("page_id")
    assert frame["drop_reason"].to_dict() == {
        "failed": "generation_error", "empty": "empty_response", "refusal": "refusal",
        "refined": None}
    assert frame.loc["refined", "response"] == "The better answer itself."
    assert frame.loc["refined", "user_content"] == frame.loc["refined", "request"]  # WR


def test_filtered_pairs_drops_reworded_requests_unless_3grams_are_chosen():
    pairs = [_pair("first", request=GUIDE, offset=1),
             _pair("reworded", request=GUIDE_REWORDED, offset=2),
             _pair("other", offset=3)]
    frame = _filtered(pairs)[0].set_index("page_id")  # default: the request's set of words
    assert frame["drop_reason"].to_dict() == {
        "first": None, "reworded": "near_duplicate", "other": None}
    assert frame.loc["reworded", "duplicate_of"] == "first"
    by_3grams = _filtered(pairs, dedup_features="3gram")[0]
    assert by_3grams["kept"].all()


def test_apply_rules_drops_truncated_replies_under_their_own_reason():
    pairs = conform([_pair("cut", status="truncated"), _pair("failed", status="failed"),
                     _pair("budget", status="budget"), _pair("fine")], "pairs")
    ruled = apply_rules(pairs).set_index("page_id")
    assert ruled["drop_reason"].to_dict() == {
        "cut": "truncated", "failed": "generation_failed", "budget": "generation_budget",
        "fine": None}
    assert ruled["kept"].to_dict() == {"cut": False, "failed": False, "budget": False,
                                       "fine": True}


def test_filtered_pairs_strips_chatty_wrapping_and_records_it():
    frame, metadata = _filtered([
        _pair("wi", request='Here is a rewritten request:\n\n"Shorten the text to 50 words."',
              response="“The short text.”"),
        _pair("wr", role="WR", request="Here's the question:\nHow deep do I sow beans?",
              response="Here is the improved answer:\nSow them 3 cm deep.\n\nWater well."),
        _pair("wr-announced", role="WR",
              response="I checked the text. Improved answer below.\n\nSow them in May."),
        _pair("plain"),
    ])
    frame = frame.set_index("page_id")
    assert frame.loc["wi", "request"] == "Shorten the text to 50 words."
    assert frame.loc["wi", "response"] == "The short text."
    assert frame.loc["wi", "user_content"].startswith("Shorten the text to 50 words.\n\n")
    assert frame.loc["wr", "request"] == "How deep do I sow beans?"
    # the announcement line goes, not the first paragraph of the answer after it
    assert frame.loc["wr", "response"] == "Sow them 3 cm deep.\n\nWater well."
    assert frame.loc["wr-announced", "response"] == "Sow them in May."
    assert frame["stripped"].to_dict() == {
        "wi": "request:preamble,request:quotes,response:quotes",
        "wr": "request:preamble,response:preamble",
        "wr-announced": "response:improved_answer",
        "plain": None}
    assert frame["kept"].all()
    assert metadata["stripped"].data == {"request:preamble": 2, "request:quotes": 1,
                                         "response:quotes": 1, "response:preamble": 1,
                                         "response:improved_answer": 1}


# ----------------------------------------------------------------------------- sft_splits


def test_near_duplicates_across_domains_are_dropped_before_the_splits(tmp_path):
    pairs = [
        _pair("b-copy", request=GUIDE + " please", domain="b.example"),
        _pair("a-first", request=GUIDE, domain="a.example"),
        _pair("a-other", domain="a.example"),
    ]
    output = _checked(pairs, tmp_path)
    frame = output.value.set_index("page_id")
    assert set(frame.index[frame["kept"]]) == {"a-first", "a-other"}  # a.example crawled first
    assert frame.loc["b-copy", "drop_reason"] == "near_duplicate_across_domains"
    assert frame.loc["b-copy", "duplicate_of"] == "a-first"
    assert output.metadata["near_duplicates_across_domains"].value == 1
    assert set(_splits(pairs, tmp_path).value["page_id"]) == {"a-first", "a-other"}


def test_sft_splits_drops_reworded_copies_across_domains_by_default(tmp_path):
    pairs = [_pair("b-reworded", request=GUIDE_REWORDED, domain="b.example"),
             _pair("a-first", request=GUIDE, domain="a.example"),
             _pair("a-other", domain="a.example")]
    assert set(_splits(pairs, tmp_path).value["page_id"]) == {"a-first", "a-other"}
    by_3grams = _splits(pairs, tmp_path, dedup_features="3gram")
    assert set(by_3grams.value["page_id"]) == {"a-first", "a-other", "b-reworded"}


def test_sft_splits_mixes_wi_to_wr_two_to_one(tmp_path):
    pairs = [_pair(f"{role}-{scope}-{i}", role=role, scope=scope, offset=i)
             for role in ("WI", "WR") for scope in ("all", "part") for i in range(15)]
    output = _splits(pairs, tmp_path)
    roles = Counter(output.value["role"])
    assert roles == {"WI": 30, "WR": 15}  # only the over-represented role is trimmed
    scopes = Counter(output.value.loc[output.value["role"] == "WR", "scope"])
    assert abs(scopes["all"] - scopes["part"]) <= 1  # from both scopes evenly
    assert output.metadata["trimmed_by_mix"].value == 15


def _wi_pages(per_domain):
    return [_pair(f"{domain}-{i}", domain=domain, offset=i)
            for domain, n in per_domain.items() for i in range(n)]


DOMAIN_SIZES = {"a.example": 40, "b.example": 30, "c.example": 20, "d.example": 20,
                "e.example": 10}


def _test_pages(frame, domain=None):
    test = frame[frame["split"] == TEST_SPLIT]
    return set(test.loc[test["domain"] == domain, "page_id"]) if domain else test


def test_sft_splits_are_stratified_by_domain(tmp_path):
    frame = _splits(_wi_pages(DOMAIN_SIZES), tmp_path, test_share=0.1).value
    assert Counter(_test_pages(frame)["domain"]) == {d: n // 10 for d, n in DOMAIN_SIZES.items()}
    # Each domain is drawn on its own: another domain growing leaves its draw alone.
    grown = _splits(_wi_pages({**DOMAIN_SIZES, "b.example": 60}), tmp_path).value
    assert _test_pages(grown, "a.example") == _test_pages(frame, "a.example")


def test_a_page_keeps_its_split_when_its_example_is_regenerated(tmp_path):
    # The split belongs to the page, not to the text of its example: a new template or
    # model must not move a page's example from train to test.
    pages = _wi_pages({"a.example": 40, "b.example": 20})
    regenerated = [{**p, "request": p["request"] + " in French",
                    "response": p["response"] + " Encore."} for p in pages]
    first = _splits(pages, tmp_path).value.set_index("page_id")["split"]
    second = _splits(regenerated, tmp_path).value.set_index("page_id")["split"]
    assert len(first) == 60 and first.sort_index().equals(second.sort_index())


def test_the_splits_are_exported_with_their_messages_card_and_plots(tmp_path):
    frame = _splits(_wi_pages({"a.example": 10}), tmp_path).value
    with build_asset_context() as context:
        sft_export(context, sft_splits=frame, settings=_settings(tmp_path),
                   warehouse=DuckDBResource(database=str(tmp_path / "empty.duckdb")))
    for plot in ("user_tokens.png", "assistant_tokens.png"):
        assert (tmp_path / "export" / plot).read_bytes().startswith(b"\x89PNG")
        assert f"]({plot})" in (tmp_path / "export" / "README.md").read_text()
    exported = (tmp_path / "export" / "jsonl" / "train_sft.jsonl").read_text().splitlines()
    assert len(exported) == (frame["split"] == TRAIN_SPLIT).sum()
    row = json.loads(exported[0])
    assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
