"""Plain records that flow between the method's steps."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CrawlRecord:
    """One record of a crawl file, kept or rejected.

    ``record_offset`` locates the record again without re-reading the whole file:
    the byte offset of a WARC record (a gzip member in ``.warc.gz``) or of a JSONL
    line, the element index in a WebR JSON list, and 0 for a lone HTML file
    (``crawl_file`` is then the HTML file itself).
    """

    crawl_file: str
    record_offset: int
    url: str | None
    domain: str
    content_type: str  # "html" or "text"
    body: str | None  # decoded HTML or plain text; None when rejected
    fetched_at: str | None = None
    reject_reason: str | None = None  # None means kept
    reject_detail: str | None = None

    @property
    def kept(self) -> bool:
        return self.reject_reason is None
