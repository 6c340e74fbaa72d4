"""Filtered pairs of every domain -> benchmark-ready splits (train_sft / test_sft) + export."""

import json

import pandas as pd
from dagster import AssetExecutionContext, AutomationCondition, MetadataValue, Output, asset

from ..instance import WAREHOUSE_POOL
from ..resources.settings import WebRSettings
from ..webr.export import export_dataset
from ..webr.postprocess import find_near_duplicates, mix_ratios, mix_targets, take_by_targets
from ..webr.sampling import ROLE_WEIGHTS, WI, WR, unit_hash
from ..webr.splits import assign_splits, prompt_id, sft_messages
from ..webr.variants import get_variant
from .metadata import counts, preview
from .tables import conform

LINEAGE = ["source_url", "domain", "page_id", "role", "scope", "model", "templates",
           "crawl_file", "record_offset"]


def drop_cross_domain_duplicates(kept: pd.DataFrame, settings: WebRSettings) -> pd.DataFrame:
    """Each domain deduplicated its own requests; this catches copies across domains."""
    survivors = []
    for role in (WI, WR):
        part = kept[kept["role"] == role].sort_values(["crawl_file", "record_offset", "page_id"])
        dupes = find_near_duplicates(list(zip(part["page_id"], part["request"])),
                                     settings.dedup_threshold, settings.dedup_permutations,
                                     settings.dedup_features)
        survivors.append(part[~part["page_id"].isin(dupes)])
    return pd.concat(survivors, ignore_index=True)


@asset(
    pool=WAREHOUSE_POOL,
    group_name="splits",
    automation_condition=AutomationCondition.eager(),
    description="The final WebR set across all domains: near-duplicates across domains "
    "removed, WI : WR mixed 2 : 1, split page-disjoint and stratified by domain into "
    "train_sft / test_sft, and exported as a Hugging Face dataset folder.",
)
def sft_splits(
    context: AssetExecutionContext, filtered_pairs: pd.DataFrame, settings: WebRSettings
) -> Output[pd.DataFrame]:
    kept = filtered_pairs[filtered_pairs["kept"].astype(bool)]
    deduped = drop_cross_domain_duplicates(kept, settings)
    group_counts = deduped.groupby(["role", "scope"]).size().to_dict()
    targets = mix_targets(group_counts, ROLE_WEIGHTS, settings.mix_tolerance)
    records = deduped.to_dict("records")
    for record in records:
        record["mix_rank"] = unit_hash(settings.seed, record["page_id"], "mix")
    mixed, trimmed = take_by_targets(records, targets, "mix_rank")
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
                                 "crawl_file", "record_offset")},
        })
    role_counts = {role: sum(r["role"] == role for r in rows) for role in (WI, WR)}
    ratios = mix_ratios(rows)
    notes = {
        "model": ", ".join(sorted({r["model"] for r in rows})) or "none",
        "pages with a kept pair": len(kept),
        "dropped as near-duplicates across domains": len(kept) - len(deduped),
        "trimmed by the WI:WR mix": len(trimmed),
        "mix": f"WI : WR brought to 2 : 1 within {settings.mix_tolerance:.0%} by trimming "
               "only the over-represented role (its larger scope first); all : part is "
               "1 : 1 within each role by assignment, on average, and not trimmed",
        "measured mix": ", ".join(f"{name} = {value if value is not None else 'n/a'}"
                                  for name, value in ratios.items()),
        "seed": settings.seed,
        "test share": settings.test_share,
        "variant": f"{settings.variant} ({get_variant(settings.variant).description})",
    }
    split_counts = export_dataset(rows, settings.export_dir, LINEAGE, notes)
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
            "trimmed_by_mix": len(trimmed),
            "cross_domain_duplicates": len(kept) - len(deduped),
            "export_dir": MetadataValue.path(str(settings.export_dir)),
            "preview": preview(frame, ["split", "role", "scope", "domain", "messages"]),
        },
    )

