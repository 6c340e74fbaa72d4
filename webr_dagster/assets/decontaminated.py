"""Kept pairs of every domain -> pairs checked across the whole crawl, before the splits:
against benchmark prompts (decontamination) and against the other domains' requests
(near-duplicates across domains).

Every pair the domain filters kept stays in the table with ``kept`` and, when dropped, the
reason: ``contaminated`` with the benchmark, its prompt id and the turn that quoted it, or
``near_duplicate_across_domains`` with the pair it copies."""

from pathlib import Path

import pandas as pd
from dagster import AssetExecutionContext, AutomationCondition, MetadataValue, Output, asset

from ..instance import WAREHOUSE_POOL
from ..resources.settings import WebRSettings
from ..webr.decontaminate import ContaminationIndex, DecontaminationRules, cached_index, \
    load_benchmarks
from ..webr.postprocess import find_near_duplicates
from ..webr.sampling import WI, WR
from .metadata import counts, preview
from .tables import conform

CONTAMINATED = "contaminated"
CROSS_DOMAIN_DUPLICATE = "near_duplicate_across_domains"


def benchmark_index(settings: WebRSettings) -> ContaminationIndex:
    """The settings' benchmarks as an n-gram index, built once and cached in WEBR_HOME."""
    rules = DecontaminationRules(
        long_n=settings.decontam_long_n, short_n=settings.decontam_short_n,
        short_coverage=settings.decontam_short_coverage,
        min_prompt_words=settings.decontam_min_prompt_words)
    prompts = load_benchmarks(settings.benchmarks)
    return cached_index(prompts, rules, Path(settings.webr_home) / "cache" / "decontamination")


def benchmark_summary(index: ContaminationIndex) -> dict[str, dict[str, int]]:
    """benchmark -> its prompt count and how many are too short to check."""
    too_short = index.too_short_counts
    return {name: {"prompts": count, "too_short": too_short.get(name, 0)}
            for name, count in index.prompt_counts.items()}


def mark_contaminated(rows: list[dict], index: ContaminationIndex) -> None:
    for row in rows:
        found = index.match_example(row["user_content"], row["response"])
        if found is None:
            continue
        turn, hit = found
        row.update(kept=False, drop_reason=CONTAMINATED, benchmark=hit.benchmark,
                   benchmark_prompt_id=hit.prompt_id, contaminated_turn=turn,
                   match_kind=hit.kind, match_overlap=float(hit.overlap))


def mark_cross_domain_duplicates(rows: list[dict], settings: WebRSettings) -> None:
    """Each domain deduplicated its own requests; this catches copies across domains. The
    earliest crawled copy wins."""
    for role in (WI, WR):
        group = sorted((r for r in rows if r["kept"] and r["role"] == role),
                       key=lambda r: (r["crawl_file"], r["record_offset"], r["page_id"]))
        duplicates = find_near_duplicates([(r["page_id"], r["request"]) for r in group],
                                          settings.dedup_threshold,
                                          settings.dedup_permutations, settings.dedup_features)
        for row in group:
            if row["page_id"] in duplicates:
                row.update(kept=False, drop_reason=CROSS_DOMAIN_DUPLICATE,
                           duplicate_of=duplicates[row["page_id"]])


@asset(
    pool=WAREHOUSE_POOL,
    group_name="splits",
    automation_condition=AutomationCondition.eager(),
    description="Every pair the domain filters kept, checked across the whole crawl: its "
    "user and assistant turns against benchmark prompts (word 13-grams, and 8-gram "
    "coverage for short prompts; drop reason 'contaminated' with the benchmark and prompt "
    "id), then its request against the other domains' requests "
    "('near_duplicate_across_domains').",
)
def decontaminated_pairs(
    context: AssetExecutionContext, filtered_pairs: pd.DataFrame, settings: WebRSettings
) -> Output[pd.DataFrame]:
    kept = filtered_pairs[filtered_pairs["kept"].astype(bool)]
    rows = [{**row, "drop_reason": None, "duplicate_of": None}
            for row in kept.to_dict("records")]
    index = benchmark_index(settings)
    mark_contaminated(rows, index)
    mark_cross_domain_duplicates(rows, settings)
    frame = conform(rows, "decontaminated_pairs")
    contaminated = frame[frame["drop_reason"] == CONTAMINATED]
    return Output(
        frame,
        metadata={
            "pairs_checked": len(frame),
            "kept": int(frame["kept"].sum()) if len(frame) else 0,
            "benchmarks": MetadataValue.json(benchmark_summary(index)),
            "contaminated_by_benchmark": counts(contaminated["benchmark"]),
            "near_duplicates_across_domains": int(
                (frame["drop_reason"] == CROSS_DOMAIN_DUPLICATE).sum()),
            "contaminated": preview(contaminated, ["benchmark", "benchmark_prompt_id",
                                                   "contaminated_turn", "match_kind", "url"]),
        },
    )
