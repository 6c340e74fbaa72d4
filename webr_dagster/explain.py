"""`webr explain`: the whole story of one example, or of one page, from the stored tables.

Everything comes from what the runs stored: the warehouse (crawl index, pages, profile,
pair, filters, split) and the call ledger (every LLM call behind the example, with its
template, model, tokens, cost, latency and reply). Nothing is recomputed or sent.
"""

from __future__ import annotations

import json

import duckdb

from .resources.storage import SCHEMA, WebRHome

PAIR_TABLES = ("instruction_side_pairs", "response_side_pairs")
CALL_KEY_COLUMNS = ("request_call_key", "answer_call_key", "response_call_key")
TEXT_LINES = 5


def _rows(con, sql: str, params: list) -> list[dict]:
    try:
        cursor = con.execute(sql, params)
    except duckdb.CatalogException:  # a table no run has written yet
        return []
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _one(con, sql: str, params: list) -> dict | None:
    rows = _rows(con, sql, params)
    return rows[0] if rows else None


def _calls(ledger_connection, keys: list[str]) -> list[dict]:
    """Each call's latest ok row (or its latest attempt when none succeeded)."""
    if not keys:
        return []
    with ledger_connection() as con:
        if con is None:
            return []
        return _rows(con, """
            SELECT call_key, stage, template, model, status, finish_reason, prompt_tokens,
                   completion_tokens, cost_usd, latency_s, attempts, reply, error, created_at
            FROM llm_calls WHERE call_key IN (SELECT unnest(?))
            QUALIFY row_number() OVER (PARTITION BY call_key
                                       ORDER BY status = 'ok' DESC, created_at DESC) = 1
            ORDER BY created_at""", [keys])


def _has_table(con, schema: str, table: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE "
                            "table_schema = ? AND table_name = ?", [schema, table]).fetchone()[0])


def _page_story(con, schema: str, page_id: str) -> dict:
    page = _one(con, f"SELECT * FROM {schema}.cleaned_pages WHERE page_id = ?", [page_id])
    story: dict = {"page_id": page_id}
    if page is not None:
        text = page.pop("text") or ""
        page["text_first_lines"] = text.splitlines()[:TEXT_LINES]
        story["cleaned_page"] = page
        # The crawl index is shared by every variant: always in the default schema.
        story["crawl"] = _one(con, f"""
            SELECT crawl_source, crawl_file, record_offset, fetched_at, content_type, status
            FROM {SCHEMA}.crawl_index WHERE crawl_file = ? AND record_offset = ?""",
            [page["crawl_file"], page["record_offset"]])
    story["rejected"] = _rows(con, f"SELECT stage, reason, detail FROM {schema}.page_rejections "
                                   "WHERE page_id = ?", [page_id])
    story["author_profile"] = _one(con, f"SELECT profile, status, error, call_key, template "
                                        f"FROM {schema}.author_profiles WHERE page_id = ?",
                                   [page_id])
    story["pair"] = _one(con, f"""
        SELECT role, scope, seed, sections_total, sections_kept, truncated, noun, word_limit,
               text_first, request, first_answer, response, status, error, templates, model,
               request_call_key, answer_call_key, response_call_key, kept, drop_reason,
               duplicate_of, stripped
        FROM {schema}.filtered_pairs WHERE page_id = ?""", [page_id])
    story["across_domains"] = _one(con, f"""
        SELECT kept, drop_reason, duplicate_of, benchmark, benchmark_prompt_id,
               contaminated_turn, match_kind, match_overlap
        FROM {schema}.decontaminated_pairs WHERE page_id = ?""", [page_id]) \
        if _has_table(con, schema, "decontaminated_pairs") else None
    story["examples"] = _rows(con, f"SELECT prompt_id, split FROM {schema}.sft_splits "
                                   "WHERE page_id = ?", [page_id])
    return story


def explain(home: WebRHome, schema: str = SCHEMA, prompt_id: str | None = None,
            url: str | None = None) -> dict:
    """The stored story of ``prompt_id`` (an example) or ``url`` (a page, kept or not),
    from ``home``'s warehouse and ledger (files or lake)."""
    with home.warehouse_connection() as con:
        if prompt_id is not None:
            example = _one(con, f"SELECT * FROM {schema}.sft_splits WHERE prompt_id = ?",
                           [prompt_id])
            if example is None:
                raise LookupError(f"no example {prompt_id!r} in {schema}.sft_splits")
            example["messages"] = json.loads(example["messages"])
            story = {"example": example, **_page_story(con, schema, example["page_id"])}
        else:
            pages = _rows(con, f"SELECT page_id FROM {schema}.raw_pages WHERE url = ?", [url])
            if not pages:
                indexed = _rows(con, "SELECT crawl_file, record_offset, status, detail "
                                     f"FROM {SCHEMA}.crawl_index WHERE url = ?", [url])
                if not indexed:
                    raise LookupError(f"no page with URL {url!r} in the crawl index")
                return {"url": url, "crawl_index": indexed,
                        "verdict": "not a page: " + ", ".join(
                            f"{row['status']} ({row['detail']})" for row in indexed)}
            story = {"url": url, **_page_story(con, schema, pages[0]["page_id"])}
    keys = [story["author_profile"]["call_key"]] if story.get("author_profile") else []
    if story.get("pair"):
        keys += [story["pair"][column] for column in CALL_KEY_COLUMNS]
    story["llm_calls"] = _calls(home.ledger_connection,
                                [key for key in dict.fromkeys(keys) if key])
    story["verdict"] = verdict(story)
    return story


def verdict(story: dict) -> str:
    """Where the page's path ended, in one line."""
    if story.get("rejected"):
        return "rejected at cleaning: " + "; ".join(
            f"{row['reason']} ({row['detail']})" for row in story["rejected"])
    pair = story.get("pair")
    if pair is None:
        return "cleaned, no pair generated yet"
    if not pair["kept"]:
        return f"pair dropped: {pair['drop_reason']}"
    across = story.get("across_domains")
    if across and not across["kept"]:
        if across["drop_reason"] == "contaminated":
            return (f"pair dropped: contaminated ({across['contaminated_turn']} turn matches "
                    f"{across['benchmark']} prompt {across['benchmark_prompt_id']}, "
                    f"{across['match_kind']})")
        return f"pair dropped: {across['drop_reason']} (of {across['duplicate_of']})"
    if not story.get("examples"):
        return ("pair kept; not in the splits (trimmed by the WI : WR mix, or the splits "
                "were not built since)")
    return "in the splits: " + ", ".join(f"{e['prompt_id'][:12]}… ({e['split']})"
                                         for e in story["examples"])


def render(story: dict) -> str:
    """The story for a person: one section per stage."""
    lines: list[str] = []

    def section(title: str, mapping: dict | None) -> None:
        if not mapping:
            return
        lines.append(f"== {title}")
        for key, value in mapping.items():
            if isinstance(value, list):
                value = " | ".join(str(v) for v in value)
            text = "" if value is None else str(value).replace("\n", " ")
            lines.append(f"  {key}: {text[:300]}")

    lines.append(f"verdict: {story['verdict']}")
    section("example", story.get("example") and {
        k: v for k, v in story["example"].items() if k != "messages"})
    section("crawl record", story.get("crawl"))
    section("cleaned page", story.get("cleaned_page"))
    for row in story.get("rejected") or []:
        section("rejected", row)
    section("author profile", story.get("author_profile"))
    section("pair and filters", story.get("pair"))
    section("checks across domains (benchmarks, near-duplicates)", story.get("across_domains"))
    for call in story.get("llm_calls") or []:
        section(f"LLM call {call['stage']}", call)
    return "\n".join(lines)
