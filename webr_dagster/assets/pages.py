"""Crawl index -> raw pages -> cleaned pages (main text) and page rejections, per domain."""

import hashlib
import os
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor

import pandas as pd
from dagster import (
    AllPartitionMapping,
    AssetDep,
    AssetExecutionContext,
    AssetOut,
    Output,
    asset,
    multi_asset,
)
from dagster_duckdb import DuckDBResource

from ..partitions import domain_partitions
from ..resources.settings import WebRSettings
from ..resources.storage import SCHEMA
from ..webr.extract import EXTRACTOR_VERSION, extract_main_text, text_record
from ..webr.readers import read_records
from .crawl import crawl_index
from .metadata import counts, preview
from .tables import conform

DOMAIN = {"partition_expr": "domain"}
PARALLEL_EXTRACTION_MIN_PAGES = 64


def page_id_of(url: str | None, body: str) -> str:
    """Stable page identity: the same URL with the same content is the same page."""
    digest = hashlib.sha256(f"{url or ''}\x00{body}".encode("utf-8", "replace")).hexdigest()
    return digest[:24]


@asset(
    partitions_def=domain_partitions,
    group_name="pages",
    metadata=DOMAIN,
    deps=[AssetDep(crawl_index, partition_mapping=AllPartitionMapping())],
    description="The domain's pages as crawled (HTML or text), read back from the crawl "
    "files by offset; one row per distinct page.",
)
def raw_pages(
    context: AssetExecutionContext, warehouse: DuckDBResource, settings: WebRSettings
) -> Output[pd.DataFrame]:
    domain = context.partition_key
    with warehouse.get_connection() as con:
        located = con.execute(
            f"""
            SELECT crawl_source, crawl_file, record_offset FROM {SCHEMA}.crawl_index
            WHERE domain = ? AND status = 'kept'
            ORDER BY crawl_source, crawl_file, record_offset
            """,
            [domain],
        ).fetchall()
    if settings.pages_per_domain_limit is not None:
        located = located[: settings.pages_per_domain_limit]
    wanted: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for source, crawl_file, offset in located:
        wanted[source].append((crawl_file, offset))
    rows, seen = [], set()
    for source, positions in wanted.items():
        for record in read_records(source, positions):
            if not record.kept or record.domain != domain:
                continue
            page_id = page_id_of(record.url, record.body)
            if page_id in seen:  # the same page in two crawls
                continue
            seen.add(page_id)
            rows.append(
                {
                    "page_id": page_id,
                    "domain": domain,
                    "url": record.url,
                    "crawl_file": record.crawl_file,
                    "record_offset": record.record_offset,
                    "fetched_at": record.fetched_at,
                    "content_type": record.content_type,
                    "body": record.body,
                }
            )
    frame = conform(rows, "raw_pages")
    return Output(
        frame,
        metadata={
            "pages": len(frame),
            "records_located": len(located),
            "preview": preview(frame, ["page_id", "url", "content_type", "crawl_file"]),
        },
    )


def _clean_one(args: tuple[str, str | None, str]):
    content_type, url, body = args
    if content_type == "html":
        return extract_main_text(body, url)
    return text_record(body)


def clean_bodies(frame: pd.DataFrame) -> list:
    jobs = list(zip(frame["content_type"], frame["url"], frame["body"]))
    workers = os.cpu_count() or 1
    if len(jobs) >= PARALLEL_EXTRACTION_MIN_PAGES and workers > 1:
        # trafilatura is CPU-bound pure Python: only processes use the other cores.
        with ProcessPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(_clean_one, jobs, chunksize=16))
    return [_clean_one(job) for job in jobs]



@multi_asset(
    partitions_def=domain_partitions,
    group_name="pages",
    outs={
        "cleaned_pages": AssetOut(
            metadata=DOMAIN,
            description="Main text of each kept page (trafilatura for HTML; text passes "
            "through), with title, author, date, language and word count.",
        ),
        "page_rejections": AssetOut(
            metadata=DOMAIN,
            description="Pages not kept at cleaning, with the stage and reason.",
        ),
    },
)
def cleaned_pages_and_rejections(
    context: AssetExecutionContext, raw_pages: pd.DataFrame, settings: WebRSettings
):
    kept, rejected, first_by_hash = [], [], {}
    for page, extracted in zip(raw_pages.to_dict("records"), clean_bodies(raw_pages)):
        base = {k: page[k] for k in ("page_id", "domain", "url", "crawl_file", "record_offset")}
        reason, detail = None, None
        if extracted is None or not extracted.text.strip():
            reason, detail = "empty_extraction", "no main text found"
        elif extracted.words < settings.min_words:
            reason, detail = "too_short", f"{extracted.words} words < {settings.min_words}"
        else:
            text_hash = hashlib.sha256(" ".join(extracted.text.split()).encode()).hexdigest()
            if text_hash in first_by_hash:
                reason, detail = "duplicate", f"same text as page {first_by_hash[text_hash]}"
            else:
                first_by_hash[text_hash] = page["page_id"]
        if reason:
            rejected.append({**base, "stage": "clean", "reason": reason, "detail": detail})
            continue
        kept.append(
            {
                **base,
                "title": extracted.title,
                "author": extracted.author,
                "date": extracted.date,
                "language": extracted.language,
                "text": extracted.text,
                "words": extracted.words,
                "text_hash": text_hash,
                "extractor_version": EXTRACTOR_VERSION,
            }
        )
    cleaned = conform(kept, "cleaned_pages")
    rejections = conform(rejected, "page_rejections")
    yield Output(
        cleaned,
        output_name="cleaned_pages",
        metadata={
            "pages": len(cleaned),
            "words_total": int(cleaned["words"].sum()) if len(cleaned) else 0,
            "preview": preview(cleaned, ["page_id", "title", "words", "text"]),
        },
    )
    yield Output(
        rejections,
        output_name="page_rejections",
        metadata={
            "rejected": len(rejections),
            "reasons": counts(rejections["reason"]),
            "preview": preview(rejections, ["url", "reason", "detail"]),
        },
    )
