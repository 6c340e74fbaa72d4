"""WI and WR pairs -> filtered pairs: the method's post-processing, per domain.

Every pair stays in the table with ``kept`` and, when dropped, the reason, so a dropped
example is as traceable as a kept one."""

from collections import defaultdict

import pandas as pd
from dagster import AssetExecutionContext, Output, asset

from ..instance import WAREHOUSE_POOL
from ..partitions import domain_backfill_policy, domain_partitions
from ..resources.settings import WebRSettings
from ..webr.postprocess import (
    DEDUP_FEATURES,
    clean_generated,
    drop_reason,
    find_near_duplicates,
    generation_drop_reason,
    strip_chatty_wrapping,
    strip_improved_answer_preamble,
)
from ..webr.prompts import user_turn
from ..webr.sampling import WR
from .metadata import counts, per_domain, preview
from .tables import conform


def apply_rules(pairs: pd.DataFrame) -> pd.DataFrame:
    """Clean texts and mark pairs the method drops (failed or truncated calls, empties,
    refusals). ``stripped`` says what the clean-up removed, e.g. "request:preamble"."""
    rows = []
    for pair in pairs.to_dict("records"):
        request, request_stripped = strip_chatty_wrapping(clean_generated(pair["request"]))
        response, response_stripped = strip_chatty_wrapping(clean_generated(pair["response"]))
        stripped = ([f"request:{label}" for label in request_stripped]
                    + [f"response:{label}" for label in response_stripped])
        if pair["role"] == WR:
            # After the chatty clean-up: "Here is the improved answer:" on its own line is
            # already gone by then, so this rule no longer eats the first paragraph of the
            # answer when the model put no blank line after its announcement.
            refined = strip_improved_answer_preamble(response).strip()
            if refined != response:
                stripped.append("response:improved_answer")
            response = refined
        reason = generation_drop_reason(pair["status"])
        if reason is None:
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
            "stripped": ",".join(stripped) or None,
        })
    return conform(rows, "filtered_pairs")


def mark_near_duplicates(frame: pd.DataFrame, threshold: float, num_perm: int,
                         features: str | int = DEDUP_FEATURES) -> pd.DataFrame:
    """MinHash-LSH dedup of requests within each domain and role; the earliest crawled
    wins. Per domain (across domains is sft_splits' job), so a domain's result does not
    depend on which domains share its run. Plain rows, not per-group frames: a batch has
    hundreds of domains with a pair or two each."""
    rows = frame.to_dict("records")
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        if row["kept"]:
            groups[(row["domain"], row["role"])].append(row)
    for group in groups.values():
        group.sort(key=lambda r: (r["crawl_file"], r["record_offset"], r["page_id"]))
        duplicates = find_near_duplicates([(r["page_id"], r["request"]) for r in group],
                                          threshold, num_perm, features)
        for row in group:
            if row["page_id"] in duplicates:
                row.update(kept=False, drop_reason="near_duplicate",
                           duplicate_of=duplicates[row["page_id"]])
    return conform(rows, "filtered_pairs")


@asset(
    pool=WAREHOUSE_POOL,
    partitions_def=domain_partitions,
    backfill_policy=domain_backfill_policy,
    group_name="filtered",
    metadata={"partition_expr": "domain"},
    description="All WI and WR pairs of the domain after post-processing: cleaned request "
    "and response (what the clean-up removed in stripped), the final user turn, and kept / "
    "drop_reason (failed generation, truncated reply, empty, refusal, near-duplicate "
    "request within the role).",
)
def filtered_pairs(
    context: AssetExecutionContext,
    instruction_side_pairs: pd.DataFrame,
    response_side_pairs: pd.DataFrame,
    settings: WebRSettings,
) -> Output[pd.DataFrame]:
    pairs = pd.concat([instruction_side_pairs, response_side_pairs], ignore_index=True)
    ruled = apply_rules(pairs)
    frame = mark_near_duplicates(ruled, settings.dedup_threshold, settings.dedup_permutations,
                                 settings.dedup_features)
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


def summarize_filtered(rows: list[dict]) -> dict:
    kept = [row for row in rows if row["kept"]]
    return {
        "pairs": len(rows),
        "kept": len(kept),
        "drop_reasons": counts(row["drop_reason"] for row in rows if not row["kept"]),
        "kept_by_role_scope": counts(f"{row['role']}-{row['scope']}" for row in kept),
        # per label, not per combination: "request:preamble,response:quotes" counts once
        # under each, so the numbers say how often each clean-up fired.
        "stripped": counts(label for row in rows if row["stripped"]
                           for label in row["stripped"].split(",")),
    }
