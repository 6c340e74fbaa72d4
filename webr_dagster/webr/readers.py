"""Crawl files -> :class:`CrawlRecord`, one record at a time.

Formats read (chosen by file suffix, see :func:`iter_records`):

* WARC (``.warc``, ``.warc.gz``) and WET (``.wet``, ``.warc.wet.gz``) through warcio;
* JSON Lines (``.jsonl``, ``.jsonl.gz``, ``.jsonl.zst``) with ``url``/``metadata.url`` plus
  ``html`` or ``text``/``raw_content``/``content``;
* a JSON list (``.json``), WebR's input format ``[{"webpage": text}, ...]``;
* a directory of ``.html``/``.htm`` files (gzipped or not), one page per file.

Every reader streams: memory stays flat in the file size (one record, or one
JSONL line, at a time). Bad content never raises: it becomes a rejected record
with a short ``reject_reason`` and a human ``reject_detail``, so the caller can
count and show what was dropped and why. Only an unreadable path raises.

``record_offset`` is chosen so that :func:`read_records` can get back to a record
cheaply: the gzip member offset in a ``.warc.gz`` (members can be seeked to), the
byte offset in plain ``.warc`` and ``.jsonl``, the line number in ``.jsonl.gz`` and ``.jsonl.zst``
and the element index in a JSON list (both need a re-scan), 0 for an HTML file.
"""

from __future__ import annotations

import codecs
import gzip
import html as html_lib
import io
import json
import os
import re
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

from warcio.archiveiterator import ArchiveIterator
from warcio.limitreader import LimitReader

from .records import CrawlRecord

# --------------------------------------------------------------------------- suffixes

# Longest first: the stem of "x.warc.wet.gz" must be "x", not "x.warc.wet".
_WARC_SUFFIXES = (".warc.wet.gz", ".warc.gz", ".wet.gz", ".warc", ".wet")
_JSONL_SUFFIXES = (".jsonl.zst", ".jsonl.gz", ".jsonl")
_COMPRESSED_JSONL = (".jsonl.zst", ".jsonl.gz")
_JSON_SUFFIXES = (".json",)
_HTML_SUFFIXES = (".html.gz", ".htm.gz", ".html", ".htm")
_CRAWL_FILE_SUFFIXES = _WARC_SUFFIXES + _JSONL_SUFFIXES + _JSON_SUFFIXES
_ALL_SUFFIXES = tuple(
    sorted(_CRAWL_FILE_SUFFIXES + _HTML_SUFFIXES + (".warc.wat.gz", ".wat.gz", ".wat"), key=len, reverse=True)
)
# Names that a download in progress typically has; such files are not read yet.
_PARTIAL_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".download", ".incomplete")


def _lower_name(path: str | Path) -> str:
    return os.path.basename(str(path)).lower()


def _is_hidden_or_partial(name: str) -> bool:
    lower = name.lower()
    return name.startswith(".") or lower.endswith(_PARTIAL_SUFFIXES)


def _is_crawl_file(name: str) -> bool:
    # WAT files (.wat, .warc.wat.gz) hold link/metadata JSON only: no page text.
    return not _is_hidden_or_partial(name) and name.lower().endswith(_CRAWL_FILE_SUFFIXES)


def _is_html_file(name: str) -> bool:
    return not _is_hidden_or_partial(name) and name.lower().endswith(_HTML_SUFFIXES)


# --------------------------------------------------------------------------- keys and domains

_UNSAFE_KEY_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_DOTS = re.compile(r"\.{2,}")
_HOST_OK = re.compile(r"^[a-z0-9_.:-]+$")
_HAS_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_BARE_HOST = re.compile(r"^[\w-]+(\.[\w-]+)+(:\d+)?([/?#]|$)")


def _safe_key(text: str) -> str:
    """``text`` made safe as a Dagster partition key (no control chars, no "...")."""
    key = _UNSAFE_KEY_CHARS.sub("_", text or "")
    key = _DOTS.sub(".", key).strip("._-")[:200]
    return key or "unknown"


def _host(url: str | None) -> str | None:
    if not url or not isinstance(url, str):
        return None
    url = url.strip()
    if not _HAS_SCHEME.match(url) and not url.startswith("//"):
        # "example.com/page" has no scheme, so urlsplit would see no host at all.
        if not _BARE_HOST.match(url):
            return None
        url = "//" + url
    try:
        host = urlsplit(url).hostname
    except ValueError:  # e.g. an unbalanced "[" of an IPv6 literal
        return None
    if not host:
        return None
    host = host.strip().lower()
    if host.startswith("www."):
        host = host[4:]
    host = host.rstrip(".")  # "example.com." is the same host as "example.com"
    if not host:
        return None
    if not host.isascii():
        try:  # internationalised names as punycode, so keys are plain ASCII
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    if not _HOST_OK.match(host) or ".." in host or len(host) > 253:
        return None
    return host


def domain_of(url: str | None, fallback: str) -> str:
    """The web domain a page is grouped under: the URL's host, lower-case, without
    port or leading ``www.``; ``fallback`` (made key-safe) when the URL has none."""
    return _host(url) or _safe_key(fallback)


def _source_stem(source: str | Path) -> str:
    """File name without its crawl suffixes (``foo.warc.gz`` -> ``foo``), or the
    directory name for a directory source."""
    name = os.path.basename(os.path.normpath(str(source)))
    if os.path.isdir(source):
        return name
    lower = name.lower()
    for suffix in _ALL_SUFFIXES:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


# --------------------------------------------------------------------------- finding sources


def _html_files_in(directory: str) -> list[str]:
    """HTML files directly inside ``directory`` (not in sub-folders), sorted."""
    with os.scandir(directory) as entries:
        return sorted(e.path for e in entries if e.is_file() and _is_html_file(e.name))


def find_crawl_sources(paths: Iterable[str | Path]) -> list[str]:
    """Expand files and folders (recursively) into crawl sources: sorted absolute paths.

    A crawl file is one source. A folder that directly holds HTML files is one
    source as a whole (its path). Hidden entries, partial downloads and WAT files
    are left out. A path that does not exist raises ``FileNotFoundError``.
    """
    found: set[str] = set()
    for given in paths:
        path = os.path.abspath(os.path.expanduser(str(given)))
        if os.path.isfile(path):
            name = os.path.basename(path)
            if _is_crawl_file(name) or _is_html_file(name):
                found.add(path)  # a lone HTML file named explicitly is its own source
            continue
        if not os.path.isdir(path):
            raise FileNotFoundError(f"no such crawl file or folder: {path}")
        for root, dirs, files in os.walk(path):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            found.update(os.path.join(root, f) for f in files if _is_crawl_file(f))
            if any(_is_html_file(f) for f in files):
                found.add(root)
    return sorted(found)


def source_signature(source: str) -> str:
    """A cheap change signature from ``stat`` only (never reads contents)."""
    if os.path.isdir(source):
        count = total = newest = 0
        for path in _html_files_in(source):
            st = os.stat(path)
            count, total, newest = count + 1, total + st.st_size, max(newest, st.st_mtime_ns)
        return f"dir:{count}:{total}:{newest}"
    st = os.stat(source)
    return f"file:{st.st_size}:{st.st_mtime_ns}"


# --------------------------------------------------------------------------- decoding bytes

# Labels that browsers read as a wider charset (WHATWG encoding standard), plus
# spellings Python's codec registry does not know.
_CHARSET_ALIASES = {
    "iso-8859-1": "cp1252", "iso8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252",
    "l1": "cp1252", "us-ascii": "cp1252", "ascii": "cp1252", "iso_8859-1": "cp1252",
    "x-sjis": "cp932", "sjis": "cp932", "shift_jis": "cp932", "shift-jis": "cp932",
    "ms_kanji": "cp932", "windows-31j": "cp932", "x-euc-jp": "euc_jp",
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "chinese": "gb18030",
    "euc-kr": "cp949", "ks_c_5601-1987": "cp949", "tis-620": "cp874", "iso-8859-11": "cp874",
    "iso-8859-9": "cp1254", "unicode": "utf-8", "utf8": "utf-8",
}
_CHARSET_PARAM = re.compile(rb"""charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]{1,40})""", re.I)
_META_TAG = re.compile(rb"<meta\b[^>]*>", re.I)
_META_SNIFF_BYTES = 8192
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def _codec(label: str | bytes | None) -> str | None:
    """A Python codec name for a charset label, or None if unknown."""
    if not label:
        return None
    if isinstance(label, bytes):
        label = label.decode("ascii", "ignore")
    label = label.strip().strip("\"'").lower()
    label = _CHARSET_ALIASES.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def charset_from_content_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    match = _CHARSET_PARAM.search(content_type.encode("latin-1", "replace"))
    return _codec(match.group(1)) if match else None


def _charset_from_meta(data: bytes) -> str | None:
    """``<meta charset=...>`` or ``<meta http-equiv content="...; charset=...">``."""
    for tag in _META_TAG.finditer(data[:_META_SNIFF_BYTES]):
        match = _CHARSET_PARAM.search(tag.group(0))
        if match and _codec(match.group(1)):
            return _codec(match.group(1))
    return None


def decode_bytes(data: bytes, declared: str | None = None, sniff_meta: bool = True) -> str:
    """Decode page bytes; never raises.

    Order: a byte-order mark; the declared (HTTP) charset; a ``<meta>`` charset
    in the first few KB; strict UTF-8; charset_normalizer's guess; the first
    declared charset or UTF-8 with replacement characters. A declared charset
    that does not decode cleanly is not trusted blindly (servers often lie).
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return data.decode(codec, errors="replace")
    candidates = [c for c in (_codec(declared), _charset_from_meta(data) if sniff_meta else None) if c]
    for codec in dict.fromkeys(candidates + ["utf-8"]):
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
    guess = _guess_charset(data)
    if guess:
        try:
            return data.decode(guess, errors="replace")
        except LookupError:
            pass
    return data.decode(candidates[0] if candidates else "utf-8", errors="replace")


_WESTERN = {"cp1252", "latin_1", "iso8859_15"}
_NEAR_TIE = 0.02
_COHERENCE_TIE = 0.1


def _guess_charset(data: bytes) -> str | None:
    # Imported here: only pages that are neither declared nor UTF-8 pay for it.
    from charset_normalizer import from_bytes

    try:
        matches = list(from_bytes(data[:200_000]))
    except Exception:  # a detector bug must not lose the page
        return None
    if not matches:
        return None
    best = matches[0]
    # On short Western pages the detector ranks cp1250/cp1257/... level with
    # cp1252 ("très" comes out as "trčs"); windows-1252 is by far the most common
    # legacy charset on the web (and the HTML default), so it wins a near tie.
    for match in matches:
        near_tie = match.chaos <= best.chaos + _NEAR_TIE and match.coherence >= best.coherence - _COHERENCE_TIE
        if near_tie and _WESTERN & set(match.could_be_from_charset):
            return "cp1252"
    return best.encoding


# --------------------------------------------------------------------------- record helpers

_NON_TEXT = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\ufffd]")
_BINARY_SAMPLE_CHARS = 65536
_MAX_NON_TEXT_SHARE = 0.10


def _body_problem(body: str) -> tuple[str, str] | None:
    """Why a decoded body is not worth keeping, or None when it is fine."""
    if not body.strip():
        return "empty", "the body is empty or whitespace only"
    sample = body[:_BINARY_SAMPLE_CHARS]
    if "\x00" in sample:
        return "binary", "the body contains NUL bytes"
    bad = len(_NON_TEXT.findall(sample))
    if bad > _MAX_NON_TEXT_SHARE * len(sample):
        return "binary", f"{bad} of the first {len(sample)} characters are control or undecodable"
    return None


def _rejected(crawl_file, offset, url, domain, content_type, reason, detail, fetched_at=None) -> CrawlRecord:
    return CrawlRecord(
        crawl_file=crawl_file, record_offset=offset, url=url, domain=domain,
        content_type=content_type, body=None, fetched_at=fetched_at,
        reject_reason=reason, reject_detail=detail,
    )


def _page(crawl_file, offset, url, domain, content_type, body, fetched_at=None) -> CrawlRecord:
    """A kept record, or an ``empty``/``binary`` rejection if the body is unusable."""
    problem = _body_problem(body)
    if problem:
        return _rejected(crawl_file, offset, url, domain, content_type, *problem, fetched_at=fetched_at)
    return CrawlRecord(
        crawl_file=crawl_file, record_offset=offset, url=url, domain=domain,
        content_type=content_type, body=body, fetched_at=fetched_at,
    )


def _describe(exc: BaseException) -> str:
    """A one-line, printable account of an exception for ``reject_detail``."""
    message = " ".join(str(exc).split())
    message = "".join(ch if ch.isprintable() else "?" for ch in message)
    return f"{type(exc).__name__}: {message}"[:500] if message else type(exc).__name__


# --------------------------------------------------------------------------- WARC / WET

_HTML_TYPES = {"text/html", "application/xhtml+xml"}
_HTML_START = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body)\b", re.I | re.S)


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _looks_like_html(payload: bytes) -> bool:
    return bool(_HTML_START.match(payload[:2048].lstrip(codecs.BOM_UTF8)))


class _CorruptStream(Exception):
    """The WARC stream itself is broken (truncated, bad gzip): stop this file."""


def _declared_media(rec) -> str:
    """The media type a record says its page has ("" if it says nothing)."""
    if rec.rec_type == "response" and rec.http_headers is not None:
        declared = rec.http_headers.get_header("Content-Type")
    elif rec.rec_type == "resource":  # e.g. a page saved without HTTP headers
        declared = rec.rec_headers.get_header("Content-Type")
    else:
        declared = None
    return _media_type(declared) or _media_type(rec.rec_headers.get_header("WARC-Identified-Payload-Type"))


def _wants_payload(rec) -> bool:
    """Read the payload only of records that can become pages (not of images...)."""
    if rec.rec_type == "conversion":
        return True
    ok_response = (rec.rec_type == "response" and rec.http_headers is not None
                   and rec.http_headers.get_statuscode() == "200")
    if ok_response or rec.rec_type == "resource":
        media = _declared_media(rec)
        return media in _HTML_TYPES or not media
    return False


def _warc_page(rec, crawl_file: str, offset: int, fallback: str, payload: bytes | None) -> CrawlRecord | None:
    """What one WARC record means for us: a page, a rejection, or None (not a page).

    ``payload`` is None when it was not read (see :func:`_wants_payload`) or
    could not be decompressed.
    """
    headers = rec.rec_headers
    url = headers.get_header("WARC-Target-URI")
    fetched_at = headers.get_header("WARC-Date")  # kept as written: may be malformed
    domain = domain_of(url, fallback)
    kind = rec.rec_type

    if kind == "revisit":
        target = headers.get_header("WARC-Refers-To-Target-URI") or url
        when = headers.get_header("WARC-Refers-To-Date")
        detail = f"revisit of {target}" + (f" from {when}" if when else "") + ": the payload is not in this record"
        return _rejected(crawl_file, offset, url, domain, "html", "revisit", detail, fetched_at)

    if kind == "conversion":  # WET: text already extracted by the crawler
        text = decode_bytes(payload or b"", charset_from_content_type(headers.get_header("Content-Type")), False)
        return _page(crawl_file, offset, url, domain, "text", text, fetched_at)

    if kind == "response" and rec.http_headers is not None:
        status = rec.http_headers.get_statuscode()
        if status != "200":
            return _rejected(crawl_file, offset, url, domain, "html", "http_status",
                             f"HTTP {status or '(no status)'}", fetched_at)
        content_type = rec.http_headers.get_header("Content-Type")
    elif kind == "resource":
        content_type = headers.get_header("Content-Type")
    else:
        return None  # request, metadata, warcinfo...: not pages

    media = _declared_media(rec)
    # No declared type at all: trust the bytes if they start like an HTML document.
    is_html = media in _HTML_TYPES or (not media and (payload is None or _looks_like_html(payload)))
    if not is_html:
        if kind == "resource":
            return None  # crawler logs and the like, not pages
        return _rejected(crawl_file, offset, url, domain, "html", "not_html",
                         f"content type {media or '(none)'} is not HTML", fetched_at)
    if payload is None:
        return _rejected(crawl_file, offset, url, domain, "html", "undecodable",
                         "the HTTP payload could not be decompressed", fetched_at)
    body = decode_bytes(payload, charset_from_content_type(content_type))
    return _page(crawl_file, offset, url, domain, "html", body, fetched_at)


def _is_web_url(rec) -> bool:
    # dns:, whois:, metadata:// ... records describe the crawl, not pages.
    url = (rec.rec_headers.get_header("WARC-Target-URI") or "").lower()
    return url.startswith(("http://", "https://")) or rec.rec_type == "conversion"


def _iter_warc(path: str, start: int = 0, max_records: int | None = None) -> Iterator[CrawlRecord]:
    """WARC/WET records from byte ``start`` (a record or gzip member boundary).

    ``max_records`` limits how many WARC records are parsed (not yielded): with 1,
    only the record at ``start`` is looked at.
    """
    fallback = _source_stem(path)
    with open(path, "rb") as fh:
        fh.seek(start)
        records = ArchiveIterator(fh)
        record_start = start
        parsed = 0
        while max_records is None or parsed < max_records:
            try:
                rec = next(records)
                parsed += 1
                if rec.rec_type is None:
                    # warcio skips leading blank lines and then accepts a header
                    # block with no WARC version or type: junk, not a record.
                    raise _CorruptStream("no WARC header where a record should start")
                payload: bytes | None = None
                if _is_web_url(rec) and _wants_payload(rec):
                    try:  # the HTTP body, de-chunked and decompressed by warcio
                        payload = rec.content_stream().read()
                    except Exception:
                        payload = None  # if the outer stream is fine this is a bad Content-Encoding
                # Reading the offset consumes the rest of the record; a broken
                # outer stream shows up here or in next().
                offset = records.get_record_offset()
                length = records.get_record_length()
                raw = rec.raw_stream
                if isinstance(raw, LimitReader) and raw.limit > 0:
                    # warcio does not notice a truncated gzip/WARC: it just gets
                    # fewer bytes than the record's Content-Length announced.
                    raise _CorruptStream(
                        f"record truncated: {raw.limit} bytes short of its Content-Length {rec.length}"
                    )
            except StopIteration:
                return
            except Exception as exc:  # warcio's ArchiveLoadFailed, zlib errors, EOF...
                yield _rejected(path, record_start, None, _safe_key(fallback), "html",
                                "corrupt_record", f"stream broken at byte {record_start}: {_describe(exc)}")
                return
            if _is_web_url(rec):
                page = _warc_page(rec, path, offset, fallback, payload)
                if page is not None:
                    yield page
            # Where the next record starts: warcio's running offset (exact for plain
            # WARC, where blank lines follow a record), else offset + length.
            next_start = getattr(records, "offset", None)
            if isinstance(next_start, int) and next_start > offset:
                record_start = next_start
            else:  # warcio lost count (e.g. a whole-file gzip): stay at a sane value
                record_start = offset + max(length, 0)


# --------------------------------------------------------------------------- JSON Lines and JSON lists

_TEXT_FIELDS = ("text", "raw_content", "content", "webpage")


def _clean_json_text(text: str) -> str:
    # JSON may carry lone surrogates ("\ud800"), which cannot be encoded later.
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def _json_page(obj: object, crawl_file: str, offset: int, fallback: str) -> CrawlRecord:
    """One JSON object (a JSONL line or a list element) as a record."""
    if not isinstance(obj, dict):
        return _rejected(crawl_file, offset, None, _safe_key(fallback), "text", "malformed_json",
                         f"expected a JSON object, got {type(obj).__name__}")
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    url = next((u for u in (obj.get("url"), meta.get("url")) if isinstance(u, str) and u.strip()), None)
    fetched_at = next(
        (d for d in (obj.get("fetched_at"), obj.get("date"), meta.get("date_download"), obj.get("created"))
         if isinstance(d, str)), None,
    )
    domain = domain_of(url, fallback)
    if isinstance(obj.get("html"), str):
        return _page(crawl_file, offset, url, domain, "html", _clean_json_text(obj["html"]), fetched_at)
    for field in _TEXT_FIELDS:
        if isinstance(obj.get(field), str):
            return _page(crawl_file, offset, url, domain, "text", _clean_json_text(obj[field]), fetched_at)
    return _rejected(crawl_file, offset, url, domain, "text", "no_content",
                     "the object has no string html, text, raw_content, content or webpage field", fetched_at)


def _jsonl_line(line: bytes, crawl_file: str, offset: int, fallback: str) -> CrawlRecord | None:
    if not line.strip():
        return None
    try:
        # Decoding with "replace" first: one bad byte should not cost the whole line.
        obj = json.loads(line.decode("utf-8", errors="replace"))
    except ValueError as exc:
        return _rejected(crawl_file, offset, None, _safe_key(fallback), "text", "malformed_json",
                         f"line is not valid JSON: {_describe(exc)}")
    return _json_page(obj, crawl_file, offset, fallback)


class _ZstdMissing(Exception):
    """The zstandard package is not installed."""


_ZSTD_READ = 1 << 18  # compressed bytes fed to the decompressor at a time


def _zstd_chunks(fh) -> Iterator[bytes]:
    """Decompressed bytes of a zstd stream of one or more frames, a piece at a time.

    Raises ``EOFError`` when the file ends inside a frame (a truncated file: the
    decompressor alone would just stop) and ``OSError`` on corrupt data.
    """
    try:
        import zstandard
    except ImportError as exc:
        raise _ZstdMissing("the zstandard package is not installed") from exc
    context = zstandard.ZstdDecompressor()
    frame = None  # the decompressor of the frame being read
    try:
        while data := fh.read(_ZSTD_READ):
            while data:
                frame = frame or context.decompressobj()
                out = frame.decompress(data)
                if out:
                    yield out
                if frame.eof:  # the next frame starts in what is left over
                    data, frame = frame.unused_data, None
                else:
                    data = b""
    except zstandard.ZstdError as exc:
        raise OSError(f"corrupt zstd data: {exc}") from exc
    if frame is not None:
        raise EOFError("the zstd stream ends inside a frame (file truncated)")


class _ChunkReader(io.RawIOBase):
    """A readable stream over an iterator of byte chunks (for line iteration)."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._left = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not len(self._left):
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._left = memoryview(chunk)
        n = min(len(buffer), len(self._left))
        buffer[:n] = self._left[:n]
        self._left = self._left[n:]
        return n


def _open_compressed_lines(path: str, fh):
    """Line-iterable binary stream over a compressed JSONL file opened as ``fh``."""
    if path.lower().endswith(".gz"):
        return gzip.GzipFile(fileobj=fh, mode="rb")
    return io.BufferedReader(_ChunkReader(_zstd_chunks(fh)), buffer_size=1 << 16)


def _iter_jsonl(path: str) -> Iterator[CrawlRecord]:
    fallback = _source_stem(path)
    if path.lower().endswith(_COMPRESSED_JSONL):
        # Offsets in a gzip or zstd stream cannot be seeked to: use the line number.
        kind = "gzip" if path.lower().endswith(".gz") else "zstd"
        with open(path, "rb") as raw:
            number = 0  # the line being read
            try:
                for line in _open_compressed_lines(path, raw):
                    record = _jsonl_line(line, path, number, fallback)
                    if record is not None:
                        yield record
                    number += 1
            except _ZstdMissing as exc:
                yield _rejected(path, number, None, _safe_key(fallback), "text", "undecodable",
                                f"cannot read {kind}: {exc}")
            except (OSError, EOFError, zlib.error) as exc:
                yield _rejected(path, number, None, _safe_key(fallback), "text", "corrupt_record",
                                f"{kind} stream broken at line {number}: {_describe(exc)}")
        return
    with open(path, "rb") as fh:
        offset = 0
        for line in fh:
            record = _jsonl_line(line, path, offset, fallback)
            if record is not None:
                yield record
            offset += len(line)


def _read_jsonl_at(path: str, offsets: list[int]) -> Iterator[CrawlRecord]:
    """Plain JSONL: seek straight to each wanted line."""
    fallback = _source_stem(path)
    with open(path, "rb") as fh:
        for offset in offsets:
            fh.seek(offset)
            record = _jsonl_line(fh.readline(), path, offset, fallback)
            if record is not None:
                yield record


class _NotAList(ValueError):
    pass


def _json_list_items(fh: io.TextIOBase, chunk: int = 1 << 16) -> Iterator[object]:
    """Elements of a top-level JSON list, parsed one at a time from a text stream.

    json.load would hold the whole file; this keeps about one element in memory.
    Raises ``_NotAList`` if the file is not a list and ``ValueError`` on bad JSON.
    """
    decoder = json.JSONDecoder()
    buf, pos, eof = "", 0, False

    def more() -> bool:
        nonlocal buf, pos, eof
        data = fh.read(max(chunk, len(buf)))  # grow geometrically for huge elements
        buf, pos = buf[pos:] + data, 0
        eof = not data
        return bool(data)

    def skip_space() -> str:
        nonlocal pos
        while True:
            while pos < len(buf) and buf[pos].isspace():
                pos += 1
            if pos < len(buf) or not more():
                return buf[pos] if pos < len(buf) else ""

    first = skip_space()
    if first != "[":
        raise _NotAList("empty file" if not first else f"top level starts with {first!r}, not '['")
    pos += 1
    if skip_space() == "]":
        return
    while True:
        while True:
            try:
                item, end = decoder.raw_decode(buf, pos)
            except json.JSONDecodeError:
                if eof or not more():
                    raise
                continue
            if end == len(buf) and not eof and more():
                continue  # a number or literal may go on in the next chunk
            break
        pos = end
        yield item
        sep = skip_space()
        if sep == "]":
            return
        if sep != ",":
            raise ValueError(f"expected ',' or ']' after element, got {sep!r}" if sep else "list not closed")
        pos += 1
        skip_space()


def _iter_json_list(path: str, stop_after: int | None = None) -> Iterator[CrawlRecord]:
    fallback = _source_stem(path)
    with open(path, "rb") as raw:
        fh = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace")
        index = 0
        try:
            for index, item in enumerate(_json_list_items(fh)):
                yield _json_page(item, path, index, fallback)
                if stop_after is not None and index >= stop_after:
                    return
        except _NotAList as exc:
            yield _rejected(path, 0, None, _safe_key(fallback), "text", "malformed_json",
                            f"expected a JSON list of objects: {exc}")
        except ValueError as exc:
            yield _rejected(path, index + 1, None, _safe_key(fallback), "text", "malformed_json",
                            f"JSON list broken after element {index}: {_describe(exc)}")


# --------------------------------------------------------------------------- HTML files

_HEAD_LIMIT = 65536
_LINK_OR_META = re.compile(r"<(?:link|meta)\b[^>]*>", re.I)
_ATTR = re.compile(r"""([\w:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")


def _canonical_url(page: str) -> str | None:
    """``<link rel="canonical">`` or ``og:url`` from the head, if absolute http(s)."""
    head = page[:_HEAD_LIMIT]
    end = head.lower().find("</head")
    if end >= 0:
        head = head[:end]
    found: dict[str, str] = {}
    for tag in _LINK_OR_META.finditer(head):
        attrs = {m.group(1).lower(): html_lib.unescape(m.group(2) or m.group(3) or m.group(4) or "").strip()
                 for m in _ATTR.finditer(tag.group(0))}
        if "canonical" in attrs.get("rel", "").lower().split():
            found.setdefault("canonical", attrs.get("href", ""))
        elif attrs.get("property", attrs.get("name", "")).lower() == "og:url":
            found.setdefault("og", attrs.get("content", ""))
    for key in ("canonical", "og"):
        url = found.get(key, "")
        if url.lower().startswith(("http://", "https://")):
            return url
    return None


def _html_file_record(path: str, fallback: str) -> CrawlRecord:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        if path.lower().endswith(".gz"):
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        return _rejected(path, 0, None, _safe_key(fallback), "html", "corrupt_record",
                         f"cannot read the file: {_describe(exc)}")
    page = decode_bytes(data)
    url = _canonical_url(page)
    return _page(path, 0, url, domain_of(url, fallback), "html", page)


def _iter_html(source: str) -> Iterator[CrawlRecord]:
    if os.path.isdir(source):
        fallback = os.path.basename(os.path.normpath(source))
        for path in _html_files_in(source):
            yield _html_file_record(path, fallback)
    else:
        yield _html_file_record(source, _source_stem(source))


# --------------------------------------------------------------------------- dispatch


def _kind(source: str) -> str:
    if os.path.isdir(source):
        return "html"
    name = _lower_name(source)
    for kind, suffixes in (("warc", _WARC_SUFFIXES), ("jsonl", _JSONL_SUFFIXES),
                           ("json", _JSON_SUFFIXES), ("html", _HTML_SUFFIXES)):
        if name.endswith(suffixes):
            return kind
    raise ValueError(f"not a crawl source (unknown suffix): {source}")


def iter_records(source: str) -> Iterator[CrawlRecord]:
    """Every record of a crawl source, kept or rejected, in file order."""
    source = os.path.abspath(str(source))
    kind = _kind(source)
    if kind == "warc":
        yield from _iter_warc(source)
    elif kind == "jsonl":
        yield from _iter_jsonl(source)
    elif kind == "json":
        yield from _iter_json_list(source)
    else:
        yield from _iter_html(source)


def read_records(source: str, wanted: Iterable[tuple[str, int]]) -> Iterator[CrawlRecord]:
    """Re-read only the records at the given ``(crawl_file, record_offset)`` pairs.

    Seeks where the format allows (.warc/.warc.gz/.wet and plain .jsonl), scans
    otherwise, and yields the same records :func:`iter_records` gave, in file order.
    """
    source = os.path.abspath(str(source))
    kind = _kind(source)
    positions = sorted({(os.path.abspath(f), int(o)) for f, o in wanted})
    if not positions:
        return
    if kind == "html":
        fallback = os.path.basename(os.path.normpath(source)) if os.path.isdir(source) else _source_stem(source)
        for path, _ in positions:
            inside = os.path.dirname(path) == source if os.path.isdir(source) else path == source
            if inside and os.path.isfile(path):
                yield _html_file_record(path, fallback)
        return
    offsets = [o for f, o in positions if f == source]
    if kind == "warc":
        missed = []
        for offset in offsets:
            found = False
            for record in _iter_warc(source, start=offset, max_records=1):
                if record.record_offset == offset:
                    found = True
                    yield record
            if not found:
                missed.append(offset)
        if missed:
            # Only odd files get here (e.g. a rejection at a position that is not
            # a record start): find those by reading the file from the top.
            targets = set(missed)
            for record in _iter_warc(source):
                if record.record_offset in targets:
                    yield record
    elif kind == "jsonl" and not source.lower().endswith(_COMPRESSED_JSONL):
        yield from _read_jsonl_at(source, offsets)
    else:  # .jsonl.gz/.zst lines and JSON list elements: scan, stop after the last one
        targets, last = set(offsets), max(offsets)
        scan = _iter_json_list(source, stop_after=last) if kind == "json" else _iter_jsonl(source)
        for record in scan:
            if record.record_offset in targets:
                yield record
            if record.record_offset >= last:
                break
