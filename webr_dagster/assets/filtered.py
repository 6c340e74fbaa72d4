"""WI and WR pairs -> filtered pairs: the method's post-processing, per domain.

Every pair stays in the table with ``kept`` and, when dropped, the reason, so a dropped
example is as traceable as a kept one."""

import pandas as pd
from dagster import AssetExecutionContext, Output, asset

from ..instance import WAREHOUSE_POOL
from ..partitions import domain_backfill_policy, domain_partitions
from ..resources.settings import WebRSettings
from ..webr.postprocess import (
    clean_generated,
    drop_reason,
    find_near_duplicates,
    strip_improved_answer_preamble,
)
from ..webr.prompts import user_turn
from ..webr.sampling import WI, WR
from .metadata import counts, per_domain, preview
from .tables import conform


def apply_rules(pairs: pd.DataFrame) -> pd.DataFrame:
    """Clean texts and mark pairs the method drops (failed calls, empties, refusals)."""
    rows = []
    for pair in pairs.to_dict("records"):
        request = clean_generated(pair["request"])
        response = clean_generated(pair["response"])
        if pair["role"] == WR:
            response = strip_improved_answer_preamble(response).strip()
        if pair["status"] != "ok":
            reason = f"generation_{pair['status']}"
        else:
            reason = drop_reason(request, response)
        rows.append({
            **pair,
            "request": request,
            "response": response,
            "user_content": user_turn(pair["role"], request, pair["sampled_text"],
                                      bool(pair["text_first"])),
            "kept": reason is None,
            "drop_reason": reason,
            "duplicate_of": None,
        })
    return conform(rows, "filtered_pairs")


def mark_near_duplicates(frame: pd.DataFrame, threshold: float, num_perm: int) -> pd.DataFrame:
    """MinHash-LSH dedup of requests within WI and within WR; the earliest crawled wins."""
    frame = frame.copy()
    for role in (WI, WR):
        candidates = frame[(frame["role"] == role) & frame["kept"]].sort_values(
            ["crawl_file", "record_offset", "page_id"]
        )
        duplicates = find_near_duplicates(
            list(zip(candidates["page_id"], candidates["request"])), threshold, num_perm
        )
        hit = frame["page_id"].isin(duplicates) & (frame["role"] == role)
        frame.loc[hit, "kept"] = False
        frame.loc[hit, "drop_reason"] = "near_duplicate"
        frame.loc[hit, "duplicate_of"] = frame.loc[hit, "page_id"].map(duplicates)
    return frame


@asset(
    pool=WAREHOUSE_POOL,
    partitions_def=domain_partitions,
    backfill_policy=domain_backfill_policy,
    group_name="filtered",
    metadata={"partition_expr": "domain"},
    description="All WI and WR pairs of the domain after post-processing: cleaned request "
    "and response, the final user turn, and kept / drop_reason (failed generation, empty, "
    "refusal, near-duplicate request within the role).",
)
def filtered_pairs(
    context: AssetExecutionContext,
    instruction_side_pairs: pd.DataFrame,
    response_side_pairs: pd.DataFrame,
    settings: WebRSettings,
) -> Output[pd.DataFrame]:
    pairs = pd.concat([instruction_side_pairs, response_side_pairs], ignore_index=True)
    ruled = apply_rules(pairs)
    # Near-duplicates are removed within each domain here (across domains in sft_splits),
    # so a domain's result does not depend on which domains share its run.
    frame = conform(pd.concat(
        [mark_near_duplicates(part, settings.dedup_threshold, settings.dedup_permutations)
         for _, part in ruled.groupby("domain", sort=False)] or [ruled],
        ignore_index=True), "filtered_pairs")
    per_domain(context, frame, summarize_filtered)
    kept = frame[frame["kept"]]
    return Output(
        frame,
        metadata={
            "run_pairs": len(frame),
            "run_kept": len(kept),
            "preview": preview(kept, ["role", "scope", "request", "response"]),
        },
    )


def summarize_filtered(part: pd.DataFrame) -> dict:
    kept = part[part["kept"].astype(bool)]
    return {
        "pairs": len(part),
        "kept": len(kept),
        "drop_reasons": counts(part.loc[~part["kept"].astype(bool), "drop_reason"]),
        "kept_by_role_scope": counts(kept["role"] + "-" + kept["scope"]),
    }
