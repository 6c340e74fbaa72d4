"""Checked pairs of every domain -> benchmark-ready splits (train_sft / test_sft).

The export to a dataset folder is the next asset (export.py), behind the quality gates
(checks.py): a set that fails a gate is stored here for inspection but never published."""

import base64
import json

import pandas as pd
from dagster import AssetExecutionContext, AutomationCondition, MetadataValue, Output, asset

from ..instance import WAREHOUSE_POOL
from ..resources.settings import WebRSettings
from ..resources.tokenizer import TOKENIZER_NAME, count_tokens
from ..webr.card_plots import turn_length_plots
from ..webr.postprocess import mix_ratios, mix_targets, take_by_targets
from ..webr.sampling import ROLE_WEIGHTS, WI, WR, unit_hash
from ..webr.splits import assign_splits, prompt_id, sft_messages
from .metadata import counts, preview
from .tables import conform

CALL_KEYS = ["request_call_key", "answer_call_key", "response_call_key"]


def mixed_and_split(candidates: list[dict], settings: WebRSettings) -> tuple[list[dict], int]:
    """(the examples in crawl order, how many pairs the WI : WR mix trimmed)."""
    group_counts: dict[tuple[str, str], int] = {}
    for record in candidates:
        group = (record["role"], record["scope"])
        group_counts[group] = group_counts.get(group, 0) + 1
    targets = mix_targets(group_counts, ROLE_WEIGHTS, settings.mix_tolerance)
    for record in candidates:
        record["mix_rank"] = unit_hash(settings.seed, record["page_id"], "mix")
    mixed, trimmed = take_by_targets(candidates, targets, "mix_rank")
    page_split = assign_splits(
        ((r["page_id"], r["domain"]) for r in mixed), settings.test_share, settings.seed
    )
    rows = []
    for r in sorted(mixed, key=lambda r: (r["domain"], r["crawl_file"], r["record_offset"])):
        rows.append({
            "prompt_id": prompt_id(r["user_content"]),
            "split": page_split[r["page_id"]],
            "messages": sft_messages(r["user_content"], r["response"]),
            "source_url": r["url"],
            **{k: r[k] for k in ("domain", "page_id", "role", "scope", "model", "templates",
                                 "crawl_file", "record_offset", *CALL_KEYS)},
        })
    return rows, len(trimmed)


def length_plots_markdown(pngs: dict[str, bytes]) -> MetadataValue:
    """The plots inline (data URIs), as the UI renders markdown images."""
    return MetadataValue.md("\n\n".join(
        f"![{name}](data:image/png;base64,{base64.b64encode(png).decode()})"
        for name, png in pngs.items()))


@asset(
    pool=WAREHOUSE_POOL,
    group_name="splits",
    automation_condition=AutomationCondition.eager(),
    description="The final WebR set across all domains: the checked pairs mixed WI : WR = "
    "2 : 1 and split page-disjoint, stratified by domain, into train_sft / test_sft.",
)
def sft_splits(
    context: AssetExecutionContext, decontaminated_pairs: pd.DataFrame, settings: WebRSettings
) -> Output[pd.DataFrame]:
    candidates = decontaminated_pairs[decontaminated_pairs["kept"].astype(bool)]
    rows, trimmed = mixed_and_split(candidates.to_dict("records"), settings)
    role_counts = {role: sum(r["role"] == role for r in rows) for role in (WI, WR)}
    ratios = mix_ratios(rows)
    split_counts = {split: sum(r["split"] == split for r in rows)
                    for split in ("train_sft", "test_sft")}
    pngs, lengths = turn_length_plots([r["messages"] for r in rows],
                                      [r["prompt_id"] for r in rows], count_tokens,
                                      TOKENIZER_NAME)
    frame = conform(
        [{**r, "messages": json.dumps(r["messages"], ensure_ascii=False)} for r in rows],
        "sft_splits",
    )
    scope_counts = counts(frame["scope"]) if len(frame) else MetadataValue.json({})
    return Output(
        frame,
        metadata={
            "examples": len(frame),
            "split_counts": MetadataValue.json(split_counts),
            "role_counts": MetadataValue.json(role_counts),
            "scope_counts": scope_counts,
            "wi_to_wr": ratios["WI : WR"],
            "mix_ratios": MetadataValue.json(ratios),
            "trimmed_by_mix": trimmed,
            "domains": int(frame["domain"].nunique()) if len(frame) else 0,
            "turn_lengths": MetadataValue.json(lengths),
            "turn_length_plots": length_plots_markdown(pngs),
            "preview": preview(frame, ["split", "role", "scope", "domain", "messages"]),
        },
    )
