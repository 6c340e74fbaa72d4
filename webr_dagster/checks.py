"""Asset checks: properties the method guarantees, verified on the stored data."""

import json

import pandas as pd
from dagster import AssetCheckResult, asset_check

from .assets.splits import sft_splits
from .webr.splits import TEST_SPLIT, TRAIN_SPLIT


@asset_check(asset=sft_splits, description="No source page has examples in both splits.")
def splits_are_page_disjoint(sft_splits: pd.DataFrame) -> AssetCheckResult:
    sides = sft_splits.groupby("page_id")["split"].nunique()
    leaking = sides[sides > 1].index.tolist()
    return AssetCheckResult(passed=not leaking, metadata={"pages_in_both": len(leaking)})


@asset_check(asset=sft_splits, description="Every example is one user and one assistant turn, "
             "both non-empty, with a known split.")
def examples_are_well_formed(sft_splits: pd.DataFrame) -> AssetCheckResult:
    bad = 0
    for messages, split in zip(sft_splits["messages"], sft_splits["split"]):
        turns = json.loads(messages)
        roles = [t["role"] for t in turns]
        if roles != ["user", "assistant"] or not all(t["content"].strip() for t in turns):
            bad += 1
        elif split not in (TRAIN_SPLIT, TEST_SPLIT):
            bad += 1
    return AssetCheckResult(passed=bad == 0, metadata={"malformed": bad})


ALL_CHECKS = [splits_are_page_disjoint, examples_are_well_formed]
