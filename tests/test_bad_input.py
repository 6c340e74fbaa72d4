"""A crawl mixing good files with broken ones: the run succeeds, good pages are kept,
and every bad record has a rejection with its reason."""

import gzip
import json
import os
import shutil

import duckdb

from webr_dagster.cli import SAMPLE_CRAWL, main

ENGLISH = ("The committee met on Tuesday to review the budget for the new library. Members "
           "agreed that the reading room should stay open in the evening, and that the café "
           "near the entrance would be run by volunteers from the neighbourhood association. ")

OTHER = ("Volunteers planted forty young oak trees along the river path on Saturday morning. "
         "The council will water them through the summer, and a local school has offered to "
         "label each tree with the name of the pupil who looks after it during the year. ")


def _build_crawl(root, corpora):
    crawl = root / "crawl"
    pages = crawl / "pages"
    pages.mkdir(parents=True)
    shutil.copy(SAMPLE_CRAWL / "sample_pages.jsonl", crawl / "good.jsonl")
    warc = (corpora / "warc-samples" / "dolma-sample-0000.warc.gz").read_bytes()
    (crawl / "truncated.warc.gz").write_bytes(warc[: len(warc) // 2])
    (crawl / "random.warc.gz").write_bytes(os.urandom(50_000))
    (crawl / "empty.jsonl").write_bytes(b"")
    (pages / "binary.html").write_bytes(bytes(range(256)) * 200)
    latin1 = f"<html><head><title>Library news</title></head><body><article><p>{ENGLISH * 3}" \
             f"</p><p>{ENGLISH}</p></article></body></html>"
    (pages / "latin1.html").write_bytes(latin1.encode("latin-1"))
    huge = "<html><body>" + "<p>" + ENGLISH * 40 + "</p>\n" * 1 + \
           ("<div>" + "filler text " * 1000 + "</div>\n") * 1800 + "</body></html>"
    (pages / "huge.html").write_text(huge)
    assert (pages / "huge.html").stat().st_size > 20_000_000
    lines = [json.dumps({"url": "https://ok.example/a", "text": ENGLISH * 2}),
             '{"url": "https://broken.example/b", "text": "unterminated',
             "not json at all",
             json.dumps({"url": "https://ok.example/c",
                         "html": f"<html><body><p>{OTHER * 2}</p></body></html>"})]
    with gzip.open(crawl / "mixed.jsonl.gz", "wt") as handle:
        handle.write("\n".join(lines) + "\n")
    return crawl


def test_bad_input_is_rejected_with_reasons_and_good_pages_are_kept(
        webr_env, loopback, corpora, tmp_path, capsys):
    crawl = _build_crawl(tmp_path, corpora)
    assert main(["run", str(crawl)]) == 0
    out = capsys.readouterr().out
    assert "not kept, by reason:" in out

    con = duckdb.connect(str(webr_env / "warehouse.duckdb"), read_only=True)
    index = con.sql("SELECT crawl_file, url, domain, status, detail FROM webr.crawl_index").df()
    cleaned = con.sql("SELECT url, crawl_file, text FROM webr.cleaned_pages").df()
    rejections = con.sql("SELECT crawl_file, reason, detail FROM webr.page_rejections").df()
    con.close()

    def statuses(name):
        return set(index.loc[index["crawl_file"].str.endswith(name), "status"])

    assert "corrupt_record" in statuses("truncated.warc.gz")
    assert "kept" in statuses("truncated.warc.gz")  # records before the cut survive
    assert statuses("random.warc.gz") == {"corrupt_record"}
    assert statuses("binary.html") == {"binary"}
    assert statuses("mixed.jsonl.gz") == {"kept", "malformed_json"}
    assert (index["status"] == "malformed_json").sum() == 2
    assert all(index.loc[index["status"] != "kept", "detail"].str.len() > 0)

    # Every good page is kept: the six sample pages, the Latin-1 page, the JSONL pages.
    kept_urls = set(cleaned["url"].dropna())
    sample_urls = {json.loads(line)["url"] for line in
                   (SAMPLE_CRAWL / "sample_pages.jsonl").read_text().splitlines()}
    assert sample_urls <= kept_urls
    assert {"https://ok.example/a", "https://ok.example/c"} <= kept_urls
    latin = cleaned[cleaned["crawl_file"].str.endswith("latin1.html")]
    assert len(latin) == 1 and "café" in latin["text"].iloc[0]
    # The 20 MB page is refused before extraction, with its reason.
    huge = rejections[rejections["crawl_file"].str.endswith("huge.html")]
    assert list(huge["reason"]) == ["too_large"]


def test_webr_extract_prints_the_kept_main_text(corpora, capsys):
    from webr_dagster.webr.extract import extract_main_text
    from webr_dagster.webr.readers import decode_bytes

    page = sorted((corpora / "aeb-dev" / "html").glob("*.html.gz"))[0]
    assert main(["extract", str(page)]) == 0
    printed = capsys.readouterr().out.strip()
    expected = extract_main_text(decode_bytes(gzip.decompress(page.read_bytes())), None)
    assert expected.text.strip() in printed and len(expected.text.split()) > 40


def test_exact_duplicates_across_crawls_keep_the_first_page(webr_env, loopback, tmp_path):
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text(json.dumps({"url": "https://one.example/story", "text": OTHER * 2}) + "\n")
    # the same text on another site, with different case and spacing
    copy = "  ".join((OTHER * 2).upper().split())
    second.write_text(json.dumps({"url": "https://two.example/copy", "text": copy}) + "\n")
    assert main(["run", str(first)]) == 0
    assert main(["run", str(second)]) == 0
    con = duckdb.connect(str(webr_env / "warehouse.duckdb"), read_only=True)
    kept = con.sql("SELECT page_id, domain FROM webr.cleaned_pages").fetchall()
    rejected = con.sql("SELECT domain, reason, detail FROM webr.page_rejections").fetchall()
    con.close()
    assert [domain for _, domain in kept] == ["one.example"]
    [(domain, reason, detail)] = rejected
    assert (domain, reason) == ("two.example", "duplicate") and kept[0][0] in detail
