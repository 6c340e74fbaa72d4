"""Main-text extraction against the aeb-dev gold article bodies, and text pass-through."""

from __future__ import annotations

import gzip
import json
import os
import re
from importlib.metadata import version
from pathlib import Path

import pytest

from webr_dagster.webr import extract
from webr_dagster.webr.extract import EXTRACTOR_VERSION, Extracted, extract_main_text, text_record
from webr_dagster.webr.readers import iter_records
from webr_dagster.webr.word_overlap import word_overlap_scores

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORPORA = SHARED / "corpora"
AEB = CORPORA / "aeb-dev"



word_scores = word_overlap_scores


@pytest.fixture(scope="module")
def aeb():
    """{id: (gold, Extracted | None)} for every aeb-dev page (about 5 s)."""
    assert AEB.is_dir(), f"the aeb-dev corpus is expected at {AEB}"
    gold = json.loads((AEB / "ground-truth.json").read_text(encoding="utf-8"))
    out = {}
    for page_id, item in sorted(gold.items()):
        html = gzip.decompress((AEB / "html" / f"{page_id}.html.gz").read_bytes()).decode("utf-8")
        out[page_id] = (item, extract_main_text(html, item["url"]))
    return out


def test_extractor_version_names_trafilatura():
    assert EXTRACTOR_VERSION.startswith(f"trafilatura-{version('trafilatura')}+webr")


def test_aeb_pages_share_most_words_with_the_gold_text(aeb):
    scores = []
    for page_id, (item, extracted) in aeb.items():
        assert extracted is not None, page_id
        assert extracted.text.strip() and extracted.words > 20, page_id
        scores.append(word_scores(extracted.text, item["articleBody"]))
    n = len(scores)
    assert n == 121
    mean_p, mean_r, mean_f1 = (sum(s[i] for s in scores) / n for i in range(3))
    # measured with trafilatura 2.3.1: P 0.975, R 0.985, F1 0.979, no page below 0.8
    # (bare trafilatura defaults: P 0.936, R 0.984, F1 0.953, 6 pages below 0.8)
    assert mean_f1 >= 0.965 and mean_r >= 0.97 and mean_p >= 0.96
    assert sum(f1 < 0.8 for _, _, f1 in scores) <= 2
    assert min(f1 for _, _, f1 in scores) > 0.6


def test_paragraphs_are_separated_by_blank_lines(aeb):
    def norm(s: str) -> str:
        return " ".join(s.split())

    found = total = 0
    for item, extracted in aeb.values():
        text = extracted.text
        assert "\n\n\n" not in text and text == text.strip()
        assert all(block.strip() == block and block for block in text.split("\n\n"))
        blocks = {norm(b) for b in text.split("\n\n")}
        long_gold = [norm(p) for p in item["articleBody"].split("\n") if len(p.strip()) > 80]
        found += sum(p in blocks for p in long_gold)
        total += len(long_gold)
    # gold paragraphs come out as whole blocks of their own (measured: 0.90)
    assert found / total >= 0.85


def test_metadata_of_a_known_page(aeb):
    by_url = {item["url"]: extracted for item, extracted in aeb.values()}
    (vw,) = [e for url, e in by_url.items() if "id-space-vizzion" in url]
    assert "VIZZION" in vw.title
    assert vw.author == "Chris Davies"
    assert vw.date == "2019-11-20"
    assert vw.language == "en"
    assert vw.words == len(vw.text.split())


def test_japanese_page_from_clueweb():
    record = next(iter_records(str(CORPORA / "warc-samples" / "clueweb09-ja-quirk.warc.gz")))
    extracted = extract_main_text(record.body, record.url)
    assert extracted is not None
    assert extracted.language == "ja"
    assert re.search(r"[\u3040-\u30ff]", extracted.text)
    # words counts CJK characters one by one, not space-separated chunks
    assert extracted.words > 2 * len(extracted.text.split())


def test_structure_lists_tables_and_breaks():
    html = """<html lang="en"><head><title>Guide</title></head><body><article>
      <h1>How to brew tea</h1>
      <p>Tea has been brewed for thousands of years, and every culture has its own
         way of doing it, from the simplest mug to long ceremonies.</p>
      <p>First line of an address<br>second line of the same paragraph<br><br>
         a new paragraph made with two breaks</p>
      <ul><li>Boil fresh water in a kettle.</li><li>Warm the pot with a little of it.</li>
          <li>Steep the leaves for three to five minutes.</li></ul>
      <table><tr><td>Green</td><td>2 min</td></tr><tr><td>Black</td><td>4 min</td></tr></table>
      <p>Serve it hot and enjoy the calm moment it brings to the afternoon with friends.</p>
    </article></body></html>"""
    extracted = extract_main_text(html)
    assert extracted is not None
    blocks = extracted.text.split("\n\n")
    assert "Tea has been brewed for thousands of years, and every culture has its own way" in blocks[1]
    # <br> is a line break inside the block (trafilatura merges <br><br> into one)
    assert "First line of an address\nsecond line of the same paragraph\n" \
           "a new paragraph made with two breaks" in blocks
    assert "- Boil fresh water in a kettle.\n- Warm the pot with a little of it.\n" \
           "- Steep the leaves for three to five minutes." in blocks
    assert "Green | 2 min\nBlack | 4 min" in blocks
    assert extracted.language == "en"


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "   \n ",
        "<<<>>>",
        "<html></html>",
        "<html><body><script>var x = 1;</script></body></html>",
        "\x00\x01\x02 binary \x00",
        os.urandom(4000).decode("latin-1"),
        "<html><body>" + "<div>" * 3000 + "x" + "</div>" * 3000 + "</body></html>",
        None,
        b"<html><body><p>bytes are not accepted</p></body></html>",
    ],
)
def test_junk_gives_none(junk):
    assert extract_main_text(junk) is None


def test_text_record_normalises_lightly():
    record = text_record(
        "  Title line  \r\n\r\n\r\n\r\nFirst   paragraph\tline one\n line two  \n\n\nLast\u00a0one "
    )
    assert isinstance(record, Extracted)
    assert record.text == "Title line\n\nFirst paragraph line one\nline two\n\nLast one"
    assert record.words == 10
    assert (record.title, record.author, record.date) == (None, None, None)
    assert text_record("").text == "" and text_record("").words == 0


def test_text_record_on_webr_sample():
    docs = json.loads((CORPORA / "webr-sample" / "web_en_1k.json").read_text(encoding="utf-8"))[:50]
    records = [text_record(d["webpage"]) for d in docs]
    assert all(r.words >= 100 for r in records)  # the sample's minimum is 144 words
    assert sum(r.language == "en" for r in records) >= 48
    assert all("\n\n\n" not in r.text for r in records)


# --------------------------------------------------------------------------- fallbacks and clean-up

_PROSE = (
    "The river rose for three days after the storm, and the people of the valley moved their animals "
    "to the high fields while the water covered the roads and the lower farms. {n}"
)


def _article(paragraphs: list[str], tail: str = "") -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (f"<html lang='en'><head><title>Flood</title></head><body><nav><a href='/'>Home</a></nav>"
            f"<article><h1>Flood</h1>{body}</article>{tail}<footer>Contact us</footer></body></html>")


def test_page_furniture_lines_are_dropped():
    paragraphs = [_PROSE.format(n=f"Part {i}.") for i in range(4)]
    furniture = ["Advertisement", "Share this article", "12 Comments", "Read more", "Print Article",
                 "© 2019 Example Media", "[button link=\"https://x.example/\" size=\"big\"]Send it[/button]"]
    mixed = paragraphs[:2] + furniture + paragraphs[2:]
    extracted = extract_main_text(_article(mixed))
    assert extracted is not None
    for part in paragraphs:
        assert part in extracted.text
    for line in ("Advertisement", "Share this article", "12 Comments", "Read more", "Print Article", "2019 Example"):
        assert line not in extracted.text
    assert "[button" not in extracted.text and "[/button]" not in extracted.text
    # only whole lines of that form go: a sentence that mentions them stays
    assert extract._drop_furniture(["Share this article with a friend who likes rivers."]) == [
        "Share this article with a friend who likes rivers."]
    # "Tags" and the list of tags under it
    assert extract._drop_furniture(["Text.", "Tags", "floods, rivers, valley farms, storms"]) == ["Text."]
    # indented lines (code, continued list items) are never touched
    code = "for item in items:\n    search\n\n    print(item)"
    assert extract._drop_furniture([code]) == [code]
    # editorial brackets are not shortcodes
    assert extract._drop_furniture(["\"[We] agreed,\" she said."]) == ["\"[We] agreed,\" she said."]


def test_continuation_of_a_split_article():
    first = [_PROSE.format(n=f"First part, paragraph {i}.") for i in range(4)]
    rest = [f"After the break the story goes on: paragraph {i} tells how the bridge at mile {i} was "
            f"rebuilt by the neighbours in the spring, with stone from the old mill." for i in range(5)]
    blocks = list(first)
    reference = ["Flood", *first, "Advertisement", "Subscribe", *rest, "More stories"]
    assert extract._continuation(blocks, reference) == rest
    # a single trailing paragraph (an author bio, a teaser) is not a continuation
    assert extract._continuation(blocks, ["Flood", *first, "Advertisement", rest[0]]) == []
    # too many other lines in between: the article has ended
    assert extract._continuation(blocks, [*first, "a", "b", "c", *rest]) == []


def test_works_without_the_reference_extractor(monkeypatch, aeb):
    item, _ = next(iter(aeb.values()))
    page_id = next(iter(aeb))
    html = gzip.decompress((AEB / "html" / f"{page_id}.html.gz").read_bytes()).decode("utf-8")
    with_reference = extract_main_text(html, item["url"])
    monkeypatch.setattr(extract, "_resiliparse_text", None)
    without = extract_main_text(html, item["url"])
    assert without is not None and without.words > 20

    def broken(*args, **kwargs):
        raise RuntimeError("parser bug")

    monkeypatch.setattr(extract, "_resiliparse_text", broken)
    assert extract_main_text(html, item["url"]).text == without.text
    assert with_reference.title == without.title


def test_short_precision_result_is_retried(monkeypatch):
    calls = []
    real = extract._trafilatura

    def spy(tree, url, options):
        calls.append(options)
        blocks = real(tree, url, options)
        return [] if options is extract._PRIMARY else blocks  # precision mode "finds nothing"

    monkeypatch.setattr(extract, "_trafilatura", spy)
    paragraphs = [_PROSE.format(n=f"Part {i}.") for i in range(5)]
    extracted = extract_main_text(_article(paragraphs))
    assert calls[0] is extract._PRIMARY and calls[1] is extract._RETRIES[0]
    assert extracted is not None and all(p in extracted.text for p in paragraphs)


def test_language_prefers_the_text_over_a_site_wide_lang():
    german = ("Die Stadt hat am Dienstag beschlossen, dass die Bibliothek länger geöffnet sein soll, und "
              "das Geld dafür kommt aus der Rücklage. Die Abstimmung ist für die nächste Sitzung geplant, "
              "die im Rathaus stattfindet und zu der alle Bürger eingeladen sind.")
    html = f"<html lang='en'><body><article><p>{german}</p><p>{german}</p></article></body></html>"
    extracted = extract_main_text(html)
    assert extracted is not None and extracted.language == "de"
    # too little text to tell: the page's lang is used
    assert extract.guess_language("Hi.", "<html lang='fr'><body>Hi.</body></html>") == "fr"


def test_author_search_only_when_the_markup_can_name_one(monkeypatch):
    calls = []
    real = extract.extract_author
    monkeypatch.setattr(extract, "extract_author", lambda tree: calls.append(1) or real(tree))
    paragraphs = [_PROSE.format(n=f"Part {i}.") for i in range(3)]
    byline = "<p class='article-byline'>By Ada Lovelace</p>"
    with_byline = _article(paragraphs).replace("<h1>Flood</h1>", "<h1>Flood</h1>" + byline)
    extracted = extract_main_text(with_byline)
    assert calls == [1] and extracted.author == "Ada Lovelace"
    calls.clear()
    plain = extract_main_text(_article(paragraphs))
    assert calls == [] and plain.author is None
    # an author in <meta> needs no search at all
    calls.clear()
    meta = _article(paragraphs).replace("<title>", "<meta name='author' content='Grace Hopper'><title>")
    assert extract_main_text(meta).author == "Grace Hopper" and calls == []
