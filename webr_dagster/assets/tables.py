"""Column types of every DuckDB table the assets write, in one place.

Frames are conformed to these before storage so a table's types never depend on what a
particular partition happened to contain (an all-empty column would otherwise change type).
"""

import pandas as pd

S, I, F, B = "string", "Int64", "Float64", "boolean"

TABLES: dict[str, dict[str, str]] = {
    "crawl_index": {
        "crawl_source": S, "crawl_file": S, "record_offset": I, "url": S, "domain": S,
        "content_type": S, "fetched_at": S, "status": S, "detail": S,
    },
    "raw_pages": {
        "page_id": S, "domain": S, "url": S, "crawl_file": S, "record_offset": I,
        "fetched_at": S, "content_type": S, "body": S,
    },
    "cleaned_pages": {
        "page_id": S, "domain": S, "url": S, "crawl_file": S, "record_offset": I, "title": S,
        "author": S, "date": S, "language": S, "language_score": F, "declared_language": S,
        "text": S, "words": I, "text_hash": S, "extractor_version": S,
    },
    "page_rejections": {
        "page_id": S, "domain": S, "url": S, "crawl_file": S, "record_offset": I, "stage": S,
        "reason": S, "detail": S,
    },
    "author_profiles": {
        "page_id": S, "domain": S, "profile": S, "status": S, "error": S, "call_key": S,
        "template": S, "model": S,
    },
    "pairs": {
        "page_id": S, "domain": S, "url": S, "crawl_file": S, "record_offset": I, "role": S,
        "scope": S, "seed": I, "sections_total": I, "sections_kept": I, "truncated": B,
        "sampled_text": S, "noun": S, "word_limit": I, "text_first": B, "profile": S,
        "request": S, "first_answer": S, "response": S, "status": S, "error": S,
        "request_call_key": S, "answer_call_key": S, "response_call_key": S, "templates": S,
        "model": S,
    },
}
TABLES["filtered_pairs"] = {
    **TABLES["pairs"], "user_content": S, "kept": B, "drop_reason": S, "duplicate_of": S,
    "stripped": S,
}
TABLES["decontaminated_pairs"] = {
    "page_id": S, "domain": S, "url": S, "crawl_file": S, "record_offset": I, "role": S,
    "scope": S, "request": S, "user_content": S, "response": S, "model": S, "templates": S,
    "request_call_key": S, "answer_call_key": S, "response_call_key": S,
    "kept": B, "drop_reason": S, "duplicate_of": S, "benchmark": S, "benchmark_prompt_id": S,
    "contaminated_turn": S, "match_kind": S, "match_overlap": F,
}
TABLES["sft_splits"] = {
    "prompt_id": S, "split": S, "messages": S, "source_url": S, "domain": S, "page_id": S,
    "role": S, "scope": S, "model": S, "templates": S, "crawl_file": S, "record_offset": I,
    "request_call_key": S, "answer_call_key": S, "response_call_key": S,
}


DUCKDB_TYPES = {S: "VARCHAR", I: "BIGINT", F: "DOUBLE", B: "BOOLEAN"}


def create_table_sql(schema: str, table: str) -> str:
    columns = ", ".join(f"{name} {DUCKDB_TYPES[kind]}" for name, kind in TABLES[table].items())
    return f"CREATE TABLE IF NOT EXISTS {schema}.{table} ({columns})"


def conform(rows: list[dict] | pd.DataFrame, table: str) -> pd.DataFrame:
    """A frame with exactly the table's columns, in order, with its types."""
    schema = TABLES[table]
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    frame = frame.reindex(columns=list(schema))
    return frame.astype(schema)
