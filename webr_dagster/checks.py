"""The quality gates: blocking asset checks on sft_splits.

A failed gate fails its step, so sft_export (downstream) does not run and the previous
export stays as it was; the UI shows the gate red with the measured value next to its
threshold. The gates themselves are pure functions in webr/quality_gates.py."""

import json
from collections import Counter

import pandas as pd
from dagster import AssetCheckResult, AssetCheckSpec, AssetIn, MetadataValue, \
    multi_asset_check
from dagster_duckdb import DuckDBResource

from .assets.decontaminated import benchmark_index
from .resources.llm import LLMResource
from .resources.settings import WebRSettings
from .resources.storage import variant_schema
from .webr import quality_gates as gates
from .webr.variants import get_variant

GATES = {
    "no_benchmark_contamination": "No example's user or assistant turn matches a benchmark "
                                  "prompt (checked again on the finished set).",
    "splits_are_page_disjoint": "No source page has examples in both splits.",
    "examples_are_well_formed": "Every example is one non-empty user turn and one non-empty "
                                "assistant turn, in a known split.",
    "no_reply_cut_at_token_cap": "No example's request or response stopped at the "
                                 "output-token cap (the call ledger's finish_reason).",
    "mix_within_tolerance": "WI : WR = 2 : 1 and all : part = 1 : 1 within their "
                            "tolerances, or within what chance gives a set this small.",
    "drop_share_under_ceiling": "No single reason dropped more than the ceiling's share of "
                                "the generated pairs.",
}
# Gates that read only the request and the final response: a WR first answer cut at the
# cap is allowed, the refinement rewrites it (assets/pairs.py).
REPLY_KEYS = ["request_call_key", "response_call_key"]


def drop_reason_counts(warehouse: DuckDBResource, schema: str) -> tuple[dict[str, int], int]:
    """(pairs dropped per reason, at the domain filters and across domains; pairs
    generated)."""
    with warehouse.get_connection() as con:
        total = con.execute(f"SELECT count(*) FROM {schema}.filtered_pairs").fetchone()[0]
        reasons: Counter = Counter()
        for table in ("filtered_pairs", "decontaminated_pairs"):
            reasons.update(dict(con.execute(
                f"SELECT drop_reason, count(*) FROM {schema}.{table} WHERE NOT kept "
                "GROUP BY 1").fetchall()))
    return dict(reasons), total


def _result(name: str, verdict: gates.GateVerdict) -> AssetCheckResult:
    metadata = {key: (MetadataValue.json(value) if isinstance(value, dict) else value)
                for key, value in verdict.measured.items()}
    return AssetCheckResult(check_name=name, passed=verdict.passed,
                            metadata={"result": verdict.detail, **metadata})


@multi_asset_check(
    specs=[AssetCheckSpec(name, asset="sft_splits", description=text, blocking=True)
           for name, text in GATES.items()],
    ins={"sft_splits": AssetIn("sft_splits")},
)
def quality_gates(sft_splits: pd.DataFrame, settings: WebRSettings, llm: LLMResource,
                  warehouse: DuckDBResource):
    rows = sft_splits.to_dict("records")
    for row in rows:
        row["messages"] = json.loads(row["messages"])
    index = benchmark_index(settings)

    def benchmark_hit(user: str, assistant: str):
        found = index.match_example(user, assistant)
        return None if found is None else found[1]

    yield _result("no_benchmark_contamination", gates.no_contamination(
        ((r["prompt_id"], r["messages"][0]["content"], r["messages"][-1]["content"])
         for r in rows if r["messages"]), benchmark_hit))
    yield _result("splits_are_page_disjoint", gates.page_disjoint(rows))
    yield _result("examples_are_well_formed", gates.well_formed(rows))
    keys = [(r["prompt_id"], [r[column] for column in REPLY_KEYS]) for r in rows]
    ledger = llm.open_ledger()
    try:
        finish = ledger.finish_reasons([k for _, ks in keys for k in ks if k])
    finally:
        ledger.close()
    yield _result("no_reply_cut_at_token_cap", gates.no_capped_replies(keys, finish))
    yield _result("mix_within_tolerance", gates.mix_within_tolerance(
        rows, get_variant(settings.variant), settings.mix_tolerance, settings.scope_tolerance))
    reasons, pairs = drop_reason_counts(warehouse, variant_schema(settings.variant))
    yield _result("drop_share_under_ceiling", gates.drop_shares(
        reasons, pairs, settings.max_drop_share, settings.gate_min_pairs))


ALL_CHECKS = [quality_gates]
