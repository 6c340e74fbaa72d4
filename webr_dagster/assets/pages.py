"""Crawl index -> raw pages -> cleaned pages (main text) and page rejections, per domain."""

import gc
import hashlib
import os
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

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

from ..instance import WAREHOUSE_POOL
from ..partitions import domain_backfill_policy, domain_partitions, domains_of
from ..resources.settings import WebRSettings
from ..resources.storage import SCHEMA, WebRHome, variant_schema
from ..webr.extract import EXTRACTOR_VERSION, extract_main_text, text_record
from ..webr.quality import assess, normalized_text_hash
from ..webr.readers import read_records
from .crawl import crawl_index
from .metadata import counts, per_domain, preview
from .tables import conform

DOMAIN = {"partition_expr": "domain"}
PARALLEL_EXTRACTION_MIN_PAGES = 64


def page_id_of(url: str | None, body: str) -> str:
    """Stable page identity: the same URL with the same content is the same page."""
    digest = hashlib.sha256(f"{url or ''}\x00{body}".encode("utf-8", "replace")).hexdigest()
    return digest[:24]


def located_pages(warehouse: DuckDBResource, domains: list[str],
                  limit: int | None) -> list[tuple[str, str, int, str]]:
    """(crawl source, file, offset, domain) of the domains' kept records, in crawl order,
    at most ``limit`` per domain."""
    with warehouse.get_connection() as con:
        return con.execute(
            f"""
            SELECT crawl_source, crawl_file, record_offset, domain FROM (
                SELECT *, row_number() OVER (PARTITION BY domain
                    ORDER BY crawl_source, crawl_file, record_offset) AS position
                FROM {SCHEMA}.crawl_index
                WHERE domain IN (SELECT unnest(?)) AND status = 'kept')
            WHERE ? IS NULL OR position <= ?
            ORDER BY crawl_source, crawl_file, record_offset
            """,
            [domains, limit, limit],
        ).fetchall()


@asset(
    pool=WAREHOUSE_POOL,
    partitions_def=domain_partitions,
    backfill_policy=domain_backfill_policy,
    group_name="pages",
    metadata=DOMAIN,
    deps=[AssetDep(crawl_index, partition_mapping=AllPartitionMapping())],
    description="The domain's pages as crawled (HTML or text), read back from the crawl "
    "files by offset; one row per distinct page.",
)
def raw_pages(
    context: AssetExecutionContext, warehouse: DuckDBResource, settings: WebRSettings
) -> Output[pd.DataFrame]:
    located = located_pages(warehouse, domains_of(context),
                            settings.pages_per_domain_limit)
    wanted: dict[str, list[tuple[str, int]]] = defaultdict(list)
    domain_at: dict[tuple[str, int], str] = {}
    for source, crawl_file, offset, domain in located:
        wanted[source].append((crawl_file, offset))
        domain_at[(crawl_file, offset)] = domain
    home = WebRHome(Path(settings.webr_home))
    rows, seen = [], set()
    for source, positions in wanted.items():
        for record in read_records(home.source_path(source), positions):
            if not record.kept:
                continue
            page_id = page_id_of(record.url, record.body)
            if page_id in seen:  # the same page in two crawls
                continue
            seen.add(page_id)
            rows.append(
                {
                    "page_id": page_id,
                    "domain": domain_at[(record.crawl_file, record.record_offset)],
                    "url": record.url,
                    "crawl_file": record.crawl_file,
                    "record_offset": record.record_offset,
                    "fetched_at": record.fetched_at,
                    "content_type": record.content_type,
                    "body": record.body,
                }
            )
    frame = conform(rows, "raw_pages")
    per_domain(context, frame, lambda part: {"pages": len(part)})
    return Output(
        frame,
        metadata={
            "run_domains": len(domains_of(context)),
            "run_pages": len(frame),
            "records_located": len(located),
            "preview": preview(frame, ["page_id", "url", "content_type", "crawl_file"]),
        },
    )


def _clean_one(args: tuple[str, str | None, str]):
    content_type, url, body = args
    if content_type == "html":
        return extract_main_text(body, url)
    return text_record(body)


def stored_text_hashes(warehouse: DuckDBResource, domains: list[str], hashes,
                       schema: str = SCHEMA) -> dict[str, str]:
    """Text hash -> page id for pages that domains outside ``domains`` already keep
    (in ``schema``: the run variant's own tables)."""
    wanted = [h for h in hashes if h]
    if not wanted:
        return {}
    with warehouse.get_connection() as con:
        exists = con.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = ? AND table_name = 'cleaned_pages'", [schema]).fetchone()[0]
        if not exists:
            return {}
        rows = con.execute(
            f"""
            SELECT text_hash, min_by(page_id, crawl_file || ':' || record_offset)
            FROM {schema}.cleaned_pages
            WHERE domain NOT IN (SELECT unnest(?)) AND text_hash IN (SELECT unnest(?))
            GROUP BY text_hash
            """,
            [domains, wanted],
        ).fetchall()
    return dict(rows)


_WARM_UP_PAGE = (
    "<html lang='en'><head><title>Warm-up</title></head><body><article><h1>Warm-up</h1>"
    + "<p>A short paragraph of ordinary English text, written only to warm up the parser.</p>" * 4
    + "</article></body></html>"
)


def clean_bodies(frame: pd.DataFrame) -> list:
    jobs = list(zip(frame["content_type"], frame["url"], frame["body"]))
    workers = os.cpu_count() or 1
    if len(jobs) >= PARALLEL_EXTRACTION_MIN_PAGES and workers > 1:
        # The extractors and the language identifier (its model: quality._identifier) load
        # on first use; doing that once here means every forked worker starts warm instead
        # of paying it again.
        extract_main_text(_WARM_UP_PAGE, "https://warm-up.invalid/")
        # A forked worker's garbage collector would otherwise walk every object it
        # inherits (a run process holds many), touching and copying their memory
        # pages: about 15% more CPU per page in bench/ingest.py. Frozen objects are skipped.
        gc.freeze()
        try:
            # trafilatura is CPU-bound pure Python: only processes use the other cores.
            with ProcessPoolExecutor(max_workers=workers) as pool:
                # Small chunks: a page costs ~20 ms, so pickling is cheap and the cores
                # finish together instead of one idling through a long chunk.
                return list(pool.map(_clean_one, jobs, chunksize=4))
        finally:
            gc.unfreeze()
    return [_clean_one(job) for job in jobs]


@multi_asset(
    pool=WAREHOUSE_POOL,
    partitions_def=domain_partitions,
    backfill_policy=domain_backfill_policy,
    group_name="pages",
    outs={
        "cleaned_pages": AssetOut(
            metadata=DOMAIN,
            description="Main text of each kept page (trafilatura for HTML; text passes "
            "through), with title, author, date, language (identified from the text, with the "
            "identifier's score, and the page's declared lang) and word count; pages failing the "
            "language, length or quality checks, or repeating a page already kept in any "
            "crawl, are left out.",
        ),
        "page_rejections": AssetOut(
            metadata=DOMAIN,
            description="Pages not kept at cleaning, with the reason (empty_extraction, "
            "language, too_short, too_long, low_quality, duplicate) and a detail.",
        ),
    },
)
def cleaned_pages_and_rejections(
    context: AssetExecutionContext,
    raw_pages: pd.DataFrame,
    settings: WebRSettings,
    warehouse: DuckDBResource,
):
    # Crawl order across the run's domains: of two equal texts, the earlier crawled is kept.
    raw_pages = raw_pages.sort_values(["crawl_file", "record_offset", "page_id"],
                                      ignore_index=True)
    oversized = raw_pages["body"].str.len() > settings.max_page_chars
    pages = raw_pages[~oversized].to_dict("records")
    # Pages this large are data dumps or traps; parsing one would hold gigabytes of tree.
    rejected = [
        {**{k: page[k] for k in ("page_id", "domain", "url", "crawl_file", "record_offset")},
         "stage": "clean", "reason": "too_large",
         "detail": f"{len(page['body'])} characters > {settings.max_page_chars}"}
        for page in raw_pages[oversized].to_dict("records")
    ]
    extractions = clean_bodies(raw_pages[~oversized])
    hashes = [normalized_text_hash(e.text) if e is not None else None for e in extractions]
    # Exact duplicates across every crawl seen so far: the page stored first wins.
    first_by_hash = stored_text_hashes(warehouse, domains_of(context), hashes,
                                       variant_schema(settings.variant))
    kept = []
    for page, extracted, text_hash in zip(pages, extractions, hashes):
        base = {k: page[k] for k in ("page_id", "domain", "url", "crawl_file", "record_offset")}
        verdict = None
        if extracted is None or not extracted.text.strip():
            verdict = ("empty_extraction", "no main text found")
        else:
            verdict = assess(extracted.text, extracted.identified, languages=settings.languages,
                             min_words=settings.min_words, max_words=settings.max_words)
        if verdict is None and text_hash in first_by_hash:
            verdict = ("duplicate", f"same text as page {first_by_hash[text_hash]}")
        if verdict:
            rejected.append({**base, "stage": "clean", "reason": verdict[0],
                             "detail": verdict[1]})
            continue
        first_by_hash[text_hash] = page["page_id"]
        kept.append(
            {
                **base,
                "title": extracted.title,
                "author": extracted.author,
                "date": extracted.date,
                "language": extracted.language,
                "language_score": extracted.language_score,
                "declared_language": extracted.declared_language,
                "text": extracted.text,
                "words": extracted.words,
                "text_hash": text_hash,
                "extractor_version": EXTRACTOR_VERSION,
            }
        )
    cleaned = conform(kept, "cleaned_pages")
    rejections = conform(rejected, "page_rejections")
    per_domain(context, cleaned, lambda rows: {"pages": len(rows),
                                               "words_total": sum(r["words"] for r in rows)},
               output_name="cleaned_pages")
    per_domain(context, rejections, lambda rows: {"rejected": len(rows),
                                                  "reasons": counts(r["reason"] for r in rows)},
               output_name="page_rejections")
    yield Output(
        cleaned,
        output_name="cleaned_pages",
        metadata={"run_pages": len(cleaned),
                  "preview": preview(cleaned, ["page_id", "title", "words", "text"])},
    )
    yield Output(
        rejections,
        output_name="page_rejections",
        metadata={"run_rejected": len(rejections),
                  "preview": preview(rejections, ["url", "reason", "detail"])},
    )
