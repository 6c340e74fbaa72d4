"""Crawl readers on the real sample corpora (../shared/corpora) and on broken input."""

from __future__ import annotations

import gzip
import json
import os
import random
from collections import Counter
from pathlib import Path

import pytest
import zstandard

from webr_dagster.webr import domains, readers
from webr_dagster.webr.domains import registrable_domain
from webr_dagster.webr.readers import (
    decode_bytes,
    domain_of,
    find_crawl_sources,
    iter_records,
    read_records,
    source_signature,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORPORA = SHARED / "corpora"
WARCS = CORPORA / "warc-samples"



def records_of(path) -> list:
    return list(iter_records(str(path)))


def reasons(records) -> Counter:
    return Counter(r.reject_reason for r in records)


# --------------------------------------------------------------------------- domains


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://www.Example.COM:8080/a?b#c", "example.com"),
        ("http://user:pw@Sub.Example.org/", "sub.example.org"),
        ("https://example.com./", "example.com"),
        ("example.net/some/page", "example.net"),
        ("//cdn.example.io/x.js", "cdn.example.io"),
        ("https://bücher.de/", "xn--bcher-kva.de"),
        ("http://[::1]:8000/", "::1"),
        ("https://www./", "fallback"),
        ("mailto:someone@example.com", "fallback"),
        ("not a url", "fallback"),
        ("http://[broken/", "fallback"),
        ("", "fallback"),
        (None, "fallback"),
    ],
)
def test_domain_of(url, expected):
    assert domain_of(url, "fallback") == expected


def test_domain_of_sanitizes_the_fallback():
    key = domain_of(None, "my crawl\tfile...v2\n")
    assert key == "my_crawl_file.v2"
    assert not any(bad in key for bad in ("...", "\n", "\t", " "))
    assert domain_of(None, "\n\t") == "unknown"


def test_registrable_domains():
    assert registrable_domain("news.bbc.co.uk") == "bbc.co.uk"
    assert registrable_domain("a.b.example.com") == "example.com"
    assert registrable_domain("example.com") == "example.com"
    assert registrable_domain("WWW.Example.COM.") == "example.com"
    assert registrable_domain("shop.example.com:8080") == "example.com"
    for unchanged in ("127.0.0.1", "::1", "2001:db8::1", "localhost", "intranet", "co.uk", ""):
        assert registrable_domain(unchanged) == unchanged
    # wildcard and exception rules of the list
    assert registrable_domain("a.city.kawasaki.jp") == "city.kawasaki.jp"
    # punycode hosts, as readers.domain_of writes them
    assert registrable_domain("www.xn--bcher-kva.de") == "xn--bcher-kva.de"
    assert registrable_domain(domain_of("https://blog.bücher.de/x", "f")) == "xn--bcher-kva.de"
    # private suffixes: one user's blog is not the whole platform, unless asked
    assert registrable_domain("cempaka-tourist.blogspot.com") == "cempaka-tourist.blogspot.com"
    assert registrable_domain("alice.github.io") == "alice.github.io"
    assert registrable_domain("alice.github.io", private_suffixes=False) == "github.io"
    # a suffix the list does not know: its last two labels (the list's "*" rule)
    assert registrable_domain("printer.office.lan") == "office.lan"


def test_registrable_domain_makes_no_network_call(monkeypatch):
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("registrable_domain went to the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    registrable_domain.cache_clear()
    fresh = domains.tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    assert fresh("https://forums.news.example.co.uk/").suffix == "co.uk"
    assert registrable_domain("deep.sub.domain.example.org") == "example.org"
    assert registrable_domain("x.y.gov.uk") == "y.gov.uk"


# --------------------------------------------------------------------------- finding sources


def test_find_crawl_sources_on_the_corpora():
    sources = find_crawl_sources([CORPORA])
    assert sources == sorted(sources)
    assert all(os.path.isabs(s) for s in sources)
    names = {os.path.relpath(s, CORPORA) for s in sources}
    assert names == {
        "aeb-dev/ground-truth.json",
        "aeb-dev/html",  # a folder of .html.gz pages is one source
        "ccnet-jsonl/cc_en_head-0091.jsonl",
        "ccnet-jsonl/cc_en_head-0174.jsonl",
        "warc-samples/clueweb09-ja-quirk.warc.gz",
        "warc-samples/dolma-sample-0000.warc.gz",
        "warc-samples/dolma-sample-0001.warc.gz",
        "warc-samples/warcio-example.warc.gz",
        "warc-samples/whirlwind.warc.gz",
        "warc-samples/whirlwind.warc.wet.gz",  # WET kept, the .warc.wat.gz left out
        "webr-sample/web_en_1k.json",
    }


def test_find_crawl_sources_skips_hidden_partial_and_other_files(tmp_path):
    (tmp_path / "a.warc.gz").write_bytes(b"")
    (tmp_path / "b.WARC").write_bytes(b"")
    (tmp_path / "c.jsonl.gz").write_bytes(b"")
    (tmp_path / "c2.jsonl.zst").write_bytes(b"")
    (tmp_path / "d.wet").write_bytes(b"")
    (tmp_path / ".hidden.warc.gz").write_bytes(b"")
    (tmp_path / "e.warc.gz.part").write_bytes(b"")
    (tmp_path / "f.jsonl.tmp").write_bytes(b"")
    (tmp_path / "g.warc.wat.gz").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    pages = tmp_path / "site" / "pages"
    pages.mkdir(parents=True)
    (pages / "one.html").write_text("<p>x</p>")
    (pages / "two.htm.gz").write_bytes(gzip.compress(b"<p>y</p>"))
    (tmp_path / "site" / "nested.jsonl").write_text("")  # folder without html: not a source itself
    hidden = tmp_path / ".cache"
    hidden.mkdir()
    (hidden / "x.warc.gz").write_bytes(b"")

    found = find_crawl_sources([tmp_path, tmp_path / "a.warc.gz"])  # duplicates collapse
    assert found == sorted(
        str(tmp_path / n)
        for n in ("a.warc.gz", "b.WARC", "c.jsonl.gz", "c2.jsonl.zst", "d.wet", "site/nested.jsonl", "site/pages")
    )
    # A lone HTML file named explicitly is a source of its own.
    assert find_crawl_sources([pages / "one.html"]) == [str(pages / "one.html")]
    with pytest.raises(FileNotFoundError):
        find_crawl_sources([tmp_path / "missing"])


def test_source_signature_follows_size_mtime_and_folder_content(tmp_path):
    crawl = tmp_path / "x.jsonl"
    crawl.write_text('{"text": "a"}\n')
    first = source_signature(str(crawl))
    assert source_signature(str(crawl)) == first
    crawl.write_text('{"text": "a"}\n{"text": "b"}\n')
    assert source_signature(str(crawl)) != first

    folder = tmp_path / "pages"
    folder.mkdir()
    (folder / "a.html").write_text("<p>a</p>")
    before = source_signature(str(folder))
    (folder / "notes.txt").write_text("not html: ignored")
    assert source_signature(str(folder)) == before
    (folder / "b.html").write_text("<p>b</p>")
    assert source_signature(str(folder)) != before


# --------------------------------------------------------------------------- WARC samples


def test_warc_samples_counts_hosts_and_rejections():
    per_file = {}
    kept = []
    rejected = []
    for source in find_crawl_sources([WARCS]):
        records = records_of(source)
        per_file[os.path.basename(source)] = Counter((r.content_type, r.reject_reason) for r in records)
        kept += [r for r in records if r.kept]
        rejected += [r for r in records if not r.kept]

    assert per_file == {
        "clueweb09-ja-quirk.warc.gz": {("html", None): 29},
        "dolma-sample-0000.warc.gz": {("html", None): 22},
        "dolma-sample-0001.warc.gz": {("html", None): 15},
        "warcio-example.warc.gz": {("html", None): 1, ("html", "revisit"): 1},
        "whirlwind.warc.gz": {("html", None): 1},
        "whirlwind.warc.wet.gz": {("text", None): 1},
    }
    # 68 HTML 200 responses (the corpus README's "84 from 35 hosts" does not
    # match the files), from 20 hosts, 9 of them with 2+ pages ...
    html_hosts = Counter(r.domain for r in kept if r.content_type == "html")
    assert sum(html_hosts.values()) == 68
    assert len(html_hosts) == 20
    multi = {h for h, n in html_hosts.items() if n >= 2}
    assert multi == {
        "uraharajuku.st", "maria-antoniak.github.io", "commoncrawl.org", "creativecommons.org",
        "allenai.org", "soldaini.net", "semanticscholar.org", "kyleclo.com", "tomhoper.github.io",
    }
    assert html_hosts["uraharajuku.st"] == 29  # "www." dropped
    # ... and 10 domains with 2+ kept records once the WET text of the Wikipedia page counts.
    all_domains = Counter(r.domain for r in kept)
    assert sum(1 for n in all_domains.values() if n >= 2) == 10
    assert all_domains["an.wikipedia.org"] == 2

    assert [(r.domain, r.reject_reason) for r in rejected] == [("example.com", "revisit")]
    assert all(r.body and r.fetched_at for r in kept)
    assert all(r.url.startswith("http") for r in kept)


def test_revisit_record_is_rejected_with_reason():
    records = records_of(WARCS / "warcio-example.warc.gz")
    response, revisit = records
    assert response.kept and "Example Domain" in response.body
    assert revisit.reject_reason == "revisit"
    assert revisit.body is None
    assert revisit.url == "http://example.com/"
    assert "revisit of http://example.com/" in revisit.reject_detail
    assert revisit.record_offset > response.record_offset


def test_clueweb_euc_jp_is_decoded_and_bad_dates_kept_as_text():
    records = records_of(WARCS / "clueweb09-ja-quirk.warc.gz")
    assert len(records) == 29 and all(r.kept for r in records)
    first = records[0]
    assert first.url == "http://www.uraharajuku.st/shopdetail/001005000005/019/000/order/"
    assert first.fetched_at == "2008-10-294T05:21:46-0700"  # malformed, passed through
    assert "吉田かばん" in first.body
    assert all("\ufffd" not in r.body for r in records)
    assert all(sum("\u3040" <= ch <= "\u30ff" for ch in r.body) > 100 for r in records)


def test_wet_conversion_record_is_text():
    (record,) = records_of(WARCS / "whirlwind.warc.wet.gz")
    assert record.content_type == "text"
    assert record.url == "https://an.wikipedia.org/wiki/Escopete"
    assert record.body.startswith("Escopete")
    assert "<" not in record.body[:200]


def test_read_records_gives_back_what_iter_records_gave():
    for source in find_crawl_sources([CORPORA]):
        everything = records_of(source)
        positions = [(r.crawl_file, r.record_offset) for r in everything]
        assert len(set(positions)) == len(positions), source  # positions identify records
        assert list(read_records(source, positions)) == everything, source
        # a sparse, shuffled subset: only those, in file order
        some = everything[1::3]
        wanted = [(r.crawl_file, r.record_offset) for r in reversed(some)]
        assert list(read_records(source, wanted)) == some, source


def test_read_records_reads_one_domain_only():
    source = str(WARCS / "dolma-sample-0001.warc.gz")
    everything = records_of(source)
    mine = [r for r in everything if r.domain == "commoncrawl.org"]
    assert len(mine) == 5
    got = list(read_records(source, [(r.crawl_file, r.record_offset) for r in mine]))
    assert got == mine


# --------------------------------------------------------------------------- JSONL and JSON


def test_ccnet_jsonl_text_records_with_metadata_urls():
    records = []
    for path in sorted((CORPORA / "ccnet-jsonl").glob("*.jsonl")):
        records += records_of(path)
        with open(path, "rb") as fh:
            lines = fh.readlines()
        objects = [json.loads(line) for line in lines]
        mine = [r for r in records if r.crawl_file == str(path)]
        assert [r.url for r in mine] == [o["metadata"]["url"] for o in objects]
        assert [r.body for r in mine] == [o["text"] for o in objects]
        # record_offset is the byte offset of the line
        offsets = [sum(len(x) for x in lines[:i]) for i in range(len(lines))]
        assert [r.record_offset for r in mine] == offsets
    assert len(records) == 20
    assert all(r.kept and r.content_type == "text" for r in records)
    assert all(r.domain == domain_of(r.url, "x") != "x" for r in records)
    domains = Counter(r.domain for r in records)
    assert len(domains) == 19 and domains["cempaka-tourist.blogspot.com"] == 2
    assert records[0].fetched_at == "2020-03-29T09:04:10Z"  # metadata.date_download


def test_webr_json_list():
    path = CORPORA / "webr-sample" / "web_en_1k.json"
    records = records_of(path)
    assert len(records) == 1000
    assert all(r.kept and r.content_type == "text" and r.url is None for r in records)
    assert {r.domain for r in records} == {"web_en_1k"}
    assert [r.record_offset for r in records] == list(range(1000))
    data = json.loads(path.read_text(encoding="utf-8"))
    assert [r.body for r in records] == [d["webpage"] for d in data]


def test_json_list_parser_streams_in_small_chunks():
    path = CORPORA / "webr-sample" / "web_en_1k.json"
    with open(path, encoding="utf-8") as fh:
        streamed = list(readers._json_list_items(fh, chunk=97))
    assert streamed == json.loads(path.read_text(encoding="utf-8"))


def test_json_list_variants(tmp_path):
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps([
        {"webpage": "WebR text"},
        {"url": "https://www.a.org/x", "html": "<p>hello</p>"},
        {"url": "https://b.org/", "text": "   "},
        {"title": "no body"},
        42,
        {"content": "last", "n": 1.5e10, "ok": True},
    ], indent=1))
    records = records_of(odd)
    assert [(r.record_offset, r.content_type, r.reject_reason) for r in records] == [
        (0, "text", None), (1, "html", None), (2, "text", "empty"), (3, "text", "no_content"),
        (4, "text", "malformed_json"), (5, "text", None),
    ]
    assert records[1].domain == "a.org" and records[0].domain == "odd"
    assert list(read_records(str(odd), [(str(odd), 5), (str(odd), 1)])) == [records[1], records[5]]

    not_list = tmp_path / "obj.json"
    not_list.write_text('{"webpage": "x"}')
    (only,) = records_of(not_list)
    assert only.reject_reason == "malformed_json" and "list" in only.reject_detail

    broken = tmp_path / "broken.json"
    broken.write_text('[{"webpage": "good one"}, {"webpage": "never closed')
    good, bad = records_of(broken)
    assert good.kept and bad.reject_reason == "malformed_json" and bad.record_offset == 1

    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    assert [r.reject_reason for r in records_of(empty)] == ["malformed_json"]
    (tmp_path / "none.json").write_text("  [ ]  ")
    assert records_of(tmp_path / "none.json") == []


def test_jsonl_with_broken_lines(tmp_path):
    lines = [
        json.dumps({"url": "https://www.good.com/1", "text": "first good page"}),
        '{"url": "https://bad.com/", "text": "no closing brace"',
        "",
        json.dumps({"url": "https://good.com/2", "html": "<html><body><p>second</p></body></html>"}),
        json.dumps({"metadata": {"url": "https://meta.org/p"}, "raw_content": "from raw_content"}),
        json.dumps({"url": "https://nobody.net/"}),
        json.dumps(["a", "list"]),
        json.dumps({"text": "lone surrogate \ud800 here"}),
        b"\xff\xfe not utf-8 {".decode("latin-1"),
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    records = records_of(path)
    assert [r.reject_reason for r in records] == [
        None, "malformed_json", None, None, "no_content", "malformed_json", None, "malformed_json",
    ]
    assert [r.domain for r in records[:5]] == ["good.com", "mixed", "good.com", "meta.org", "nobody.net"]
    assert records[2].content_type == "html" and records[3].content_type == "text"
    assert records[6].body.encode("utf-8")  # the surrogate was made encodable
    assert all(r.reject_detail for r in records if not r.kept)
    assert list(read_records(str(path), [(str(path), r.record_offset) for r in records])) == records

    # the same lines gzipped: offsets become line numbers (blank line 2 skipped)
    gz = tmp_path / "mixed.jsonl.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    gz_records = records_of(gz)
    assert [r.record_offset for r in gz_records] == [0, 1, 3, 4, 5, 6, 7, 8]
    assert [r.body for r in gz_records] == [r.body for r in records]
    assert [r.domain for r in gz_records][:1] == ["good.com"]
    wanted = [(str(gz), 4), (str(gz), 0)]
    assert list(read_records(str(gz), wanted)) == [gz_records[0], gz_records[3]]


def _zstd_frames(data: bytes, frames: int = 3) -> bytes:
    """``data`` as several zstd frames back to back (as parallel compressors write)."""
    step = max(1, len(data) // frames)
    return b"".join(zstandard.ZstdCompressor(level=3).compress(data[i:i + step])
                    for i in range(0, len(data), step))


def test_jsonl_zst_reads_like_plain_jsonl(tmp_path):
    lines = [json.dumps({"url": f"https://www.site{i % 3}.org/p/{i}", "text": f"page {i} " * 40}) for i in range(50)]
    lines[7] = '{"url": "https://bad.org/", "text": "never closed'
    lines[20] = ""
    data = ("\n".join(lines) + "\n").encode()
    plain = tmp_path / "dump.jsonl"
    plain.write_bytes(data)
    zst = tmp_path / "dump.jsonl.zst"
    zst.write_bytes(_zstd_frames(data, frames=4))  # frame borders fall inside lines

    expected = records_of(plain)
    got = records_of(zst)
    assert [(r.url, r.body, r.reject_reason) for r in got] == [(r.url, r.body, r.reject_reason) for r in expected]
    assert [r.record_offset for r in got] == [i for i in range(50) if i != 20]  # line numbers
    assert got[7].reject_reason == "malformed_json"
    assert {r.domain for r in got if r.kept} == {"site0.org", "site1.org", "site2.org"}
    assert readers._source_stem(str(zst)) == "dump"
    assert find_crawl_sources([tmp_path]) == [str(plain), str(zst)]
    wanted = [(str(zst), 40), (str(zst), 3)]
    assert list(read_records(str(zst), wanted)) == [got[3], got[39]]


def test_truncated_and_junk_jsonl_zst(tmp_path):
    data = b"".join(json.dumps({"text": f"line {i} " * 50}).encode() + b"\n" for i in range(400))
    whole = _zstd_frames(data, frames=2)
    cut = tmp_path / "cut.jsonl.zst"
    cut.write_bytes(whole[: len(whole) * 3 // 4])
    records = records_of(cut)
    assert records[-1].reject_reason == "corrupt_record"
    assert "truncated" in records[-1].reject_detail and "zstd" in records[-1].reject_detail
    assert len(records) > 200 and all(r.kept for r in records[:-2])

    junk = tmp_path / "junk.jsonl.zst"
    junk.write_bytes(os.urandom(4096))
    (record,) = records_of(junk)
    assert record.reject_reason == "corrupt_record" and record.record_offset == 0
    assert record.domain == "junk"

    empty = tmp_path / "empty.jsonl.zst"
    empty.write_bytes(b"")
    assert records_of(empty) == []


def test_truncated_jsonl_gz(tmp_path):
    data = gzip.compress(b"".join(json.dumps({"text": f"line {i} " * 50}).encode() + b"\n" for i in range(200)))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    records = records_of(path)
    assert records[-1].reject_reason == "corrupt_record"
    assert len(records) > 2 and all(r.kept for r in records[:-2])


# --------------------------------------------------------------------------- broken WARC input


def test_truncated_warc_gz_yields_records_then_one_corrupt_record(tmp_path):
    data = (WARCS / "dolma-sample-0000.warc.gz").read_bytes()
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(data[: len(data) // 2])
    records = records_of(cut)
    *good, last = records
    assert len(good) == 13 and all(r.kept for r in good)
    assert [r.body for r in good] == [r.body for r in records_of(WARCS / "dolma-sample-0000.warc.gz")[:13]]
    assert last.reject_reason == "corrupt_record"
    assert "truncated" in last.reject_detail
    assert 0 < last.record_offset < len(data) // 2
    assert list(read_records(str(cut), [(str(cut), last.record_offset)])) == [last]


def test_plain_warc_uses_byte_offsets(tmp_path):
    plain = tmp_path / "dolma.warc"
    plain.write_bytes(gzip.decompress((WARCS / "dolma-sample-0001.warc.gz").read_bytes()))
    records = records_of(plain)
    assert [r.body for r in records] == [r.body for r in records_of(WARCS / "dolma-sample-0001.warc.gz")]
    with open(plain, "rb") as fh:
        for r in records:
            fh.seek(r.record_offset)
            assert fh.read(9) == b"WARC/1.0\r"
    assert list(read_records(str(plain), [(str(plain), r.record_offset) for r in records[::4]])) == records[::4]

    half = tmp_path / "half.warc"
    half.write_bytes(plain.read_bytes()[: plain.stat().st_size // 2])
    assert records_of(half)[-1].reject_reason == "corrupt_record"


def test_random_bytes_and_empty_warc(tmp_path):
    junk = tmp_path / "junk.warc.gz"
    # Random bytes, and junk after a blank line (warcio hands that back as a record
    # without a WARC type, which the reader used to drop without a rejection).
    # Seeded: for about 7 % of random inputs warcio reads a "record" before giving up, and
    # the rejection then carries that later offset; a fixed junk keeps this test exact.
    for data in (random.Random(0).randbytes(4096), b"\n" + bytes(range(256)) * 8):
        junk.write_bytes(data)
        (record,) = records_of(junk)
        assert record.reject_reason == "corrupt_record" and record.record_offset == 0
        assert record.domain == "junk"

    empty = tmp_path / "empty.warc.gz"
    empty.write_bytes(b"")
    assert records_of(empty) == []
    (tmp_path / "empty.jsonl").write_bytes(b"")
    assert records_of(tmp_path / "empty.jsonl") == []


def _warc_response(url: str, status: str, content_type: str, payload: bytes) -> bytes:
    http = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
    block = http + payload
    head = (
        "WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: {url}\r\n"
        "WARC-Date: 2024-01-01T00:00:00Z\r\nWARC-Record-ID: <urn:uuid:{n}>\r\n"
        "Content-Type: application/http; msgtype=response\r\nContent-Length: {length}\r\n\r\n"
    ).format(url=url, n=abs(hash(url + status)), length=len(block))
    return gzip.compress(head.encode() + block + b"\r\n\r\n")


def test_warc_status_type_and_charset_handling(tmp_path):
    latin = "<html><head><title>Menu</title></head><body><p>Un café crème, très bon à Paris.</p></body></html>"
    parts = [
        _warc_response("https://a.com/ok", "200 OK", "text/html", latin.encode("cp1252")),
        _warc_response("https://a.com/missing", "404 Not Found", "text/html", b"<p>gone</p>"),
        _warc_response("https://a.com/logo.png", "200 OK", "image/png", b"\x89PNG\r\n\x1a\n" + os.urandom(64)),
        _warc_response("https://a.com/lying", "200 OK", "text/html; charset=utf-8", latin.encode("cp1252")),
        _warc_response("https://a.com/meta", "200 OK", "text/html",
                       '<meta charset="windows-1251"><p>Привет, мир</p>'.encode("cp1251")),
        _warc_response("https://a.com/blank", "200 OK", "text/html", b"  \r\n "),
        _warc_response("https://a.com/bin", "200 OK", "text/html", b"\x00\x01\x02" * 200),
    ]
    path = tmp_path / "made.warc.gz"
    path.write_bytes(b"".join(parts))
    records = records_of(path)
    assert [(r.url.rsplit("/", 1)[1], r.reject_reason) for r in records] == [
        ("ok", None), ("missing", "http_status"), ("logo.png", "not_html"), ("lying", None),
        ("meta", None), ("blank", "empty"), ("bin", "binary"),
    ]
    assert "café crème, très bon à Paris" in records[0].body
    assert records[1].reject_detail == "HTTP 404"
    assert "image/png" in records[2].reject_detail
    assert "café crème" in records[3].body  # declared utf-8 did not decode: not trusted
    assert "Привет, мир" in records[4].body
    assert list(read_records(str(path), [(str(path), r.record_offset) for r in records])) == records


def test_decode_bytes_order():
    assert decode_bytes("café".encode("utf-8")) == "café"
    assert decode_bytes("<p>café</p>".encode("latin-1")) == "<p>café</p>"
    assert decode_bytes("Größe".encode("utf-16")) == "Größe"  # BOM wins
    sjis = "<meta http-equiv='Content-Type' content='text/html; charset=Shift_JIS'><p>日本語</p>"
    assert "日本語" in decode_bytes(sjis.encode("shift_jis"))
    assert decode_bytes(b"\xff\xfe\xfd" * 10, declared="no-such-charset")  # never raises


# --------------------------------------------------------------------------- HTML folders


def test_html_folder_with_bad_files(tmp_path):
    folder = tmp_path / "saved pages"
    folder.mkdir()
    (folder / "a.html").write_bytes(
        b'<html><head><link rel="canonical" href="https://www.News.example/story-1">'
        b"</head><body><p>Story one.</p></body></html>"
    )
    (folder / "b.htm").write_bytes(
        "<html><head><title>Café</title></head>"
        "<body><p>Le café est très bon.</p></body></html>".encode("latin-1")
    )
    (folder / "c.html").write_bytes(os.urandom(2048).replace(b"\x00", b"") + b"\x00" * 64)
    (folder / "d.html.gz").write_bytes(
        gzip.compress(
            b"<html><head><meta property='og:url' content='https://og.example/p'></head>"
            b"<body>x</body></html>"
        )
    )
    (folder / "e.html.gz").write_bytes(b"not gzip at all")
    (folder / "f.html").write_bytes(b"")
    (folder / ".hidden.html").write_bytes(b"<p>skip me</p>")

    (source,) = find_crawl_sources([tmp_path])
    assert source == str(folder)
    records = records_of(source)
    names = [os.path.basename(r.crawl_file) for r in records]
    assert names == ["a.html", "b.htm", "c.html", "d.html.gz", "e.html.gz", "f.html"]
    assert [r.reject_reason for r in records] == [None, None, "binary", None, "corrupt_record", "empty"]
    assert all(r.record_offset == 0 for r in records)
    a, b, *_ = records
    assert (a.url, a.domain) == ("https://www.News.example/story-1", "news.example")
    assert b.url is None and b.domain == "saved_pages"  # folder name as the fallback key
    assert "café est très bon" in b.body
    assert records[3].domain == "og.example"
    wanted = [(r.crawl_file, 0) for r in (records[3], records[0])]
    assert list(read_records(source, wanted)) == [records[0], records[3]]


def test_aeb_html_folder():
    source = str(CORPORA / "aeb-dev" / "html")
    records = records_of(source)
    assert len(records) == 121 and all(r.kept and r.content_type == "html" for r in records)
    gold = json.loads((CORPORA / "aeb-dev" / "ground-truth.json").read_text())
    with_url = [r for r in records if r.url]
    assert len(with_url) >= 100  # most pages name their canonical URL
    same_host = sum(
        domain_of(r.url, "?") == domain_of(gold[Path(r.crawl_file).name.split(".")[0]]["url"], "!")
        for r in with_url
    )
    assert same_host >= 0.9 * len(with_url)


def test_unknown_suffix_is_an_error(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("x")
    with pytest.raises(ValueError):
        list(iter_records(str(path)))


# --------------------------------------------------------------------------- streaming


def _noise_doc(i: int) -> str:
    return f"doc {i} " + os.urandom(400).hex()  # incompressible: the head stays large


def _zstd_frame(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=1).compress(data)


def _jsonl(docs) -> bytes:
    return "".join(json.dumps({"url": f"https://s.example/{d.split()[1]}", "text": d}) + "\n"
                   for d in docs).encode()


def _warc(docs) -> bytes:
    return b"".join(_warc_response(f"https://s.example/{d.split()[1]}", "200 OK", "text/html",
                                   f"<html><body><p>{d}</p></body></html>".encode())
                    for d in docs)


# name -> (bytes of the first documents, bytes of the rest): the two parts concatenated
# are one valid file (gzip and zstd members, WARC records, a JSON list cut after a comma).
STREAMED_FORMATS = {
    "crawl.jsonl": lambda head, tail: (_jsonl(head), _jsonl(tail)),
    "crawl.jsonl.gz": lambda head, tail: (gzip.compress(_jsonl(head)), gzip.compress(_jsonl(tail))),
    "crawl.jsonl.zst": lambda head, tail: (_zstd_frame(_jsonl(head)), _zstd_frame(_jsonl(tail))),
    "crawl.json": lambda head, tail: (
        ("[" + ", ".join(json.dumps({"webpage": d}) for d in head) + ", ").encode(),
        (", ".join(json.dumps({"webpage": d}) for d in tail) + "]").encode()),
    "crawl.warc.gz": lambda head, tail: (_warc(head), _warc(tail)),
}


@pytest.mark.parametrize("name", list(STREAMED_FORMATS))
def test_first_record_arrives_before_the_rest_of_the_file_exists(tmp_path, name):
    # The file holds its first 2,500 documents (a few MB, far more than any read buffer)
    # when the first record is asked for; the rest is appended only after it came out.
    # A reader that read its whole input before yielding would never see the rest.
    head_docs = [_noise_doc(i) for i in range(2500)]
    tail_docs = [_noise_doc(i) for i in range(2500, 2600)]
    head, tail = STREAMED_FORMATS[name](head_docs, tail_docs)
    path = tmp_path / name
    path.write_bytes(head)
    stream = iter_records(str(path))
    first = next(stream)
    with open(path, "ab") as growing:
        growing.write(tail)
    rest = list(stream)
    assert first.kept and head_docs[0] in first.body
    assert all(r.kept for r in rest) and len(rest) == len(head_docs) + len(tail_docs) - 1
    assert tail_docs[-1].split()[-1] in rest[-1].body
