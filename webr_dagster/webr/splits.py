"""Benchmark-ready splits and the exported row format (alignment-handbook SFT)."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable

from .sampling import unit_hash

TRAIN_SPLIT = "train_sft"
TEST_SPLIT = "test_sft"


def assign_splits(
    pages: Iterable[tuple[str, str]], test_share: float, seed: int
) -> dict[str, str]:
    """Map page id -> split: page-disjoint, stratified by domain, deterministic.

    Within each domain the pages are ordered by a seeded hash and the first
    ``round(n * test_share)`` go to the test split, so every domain contributes its
    share. If that rounds the whole test split to nothing while there are at least two
    pages, the page with the lowest hash overall is moved to test so both splits exist.
    """
    if not 0 <= test_share < 1:
        raise ValueError("test_share must be in [0, 1)")
    by_domain: dict[str, set[str]] = defaultdict(set)
    for page_id, domain in pages:
        by_domain[domain].add(page_id)
    rank = lambda page_id: unit_hash(seed, page_id, "split")  # noqa: E731
    splits: dict[str, str] = {}
    for domain_pages in by_domain.values():
        ordered = sorted(domain_pages, key=rank)
        n_test = round(len(ordered) * test_share)
        for index, page_id in enumerate(ordered):
            splits[page_id] = TEST_SPLIT if index < n_test else TRAIN_SPLIT
    if test_share > 0 and len(splits) >= 2 and TEST_SPLIT not in splits.values():
        splits[min(splits, key=rank)] = TEST_SPLIT
    return splits


def prompt_id(user_content: str) -> str:
    """The id of an example: SHA-256 of its prompt, as in HuggingFaceH4/ultrachat_200k."""
    return hashlib.sha256(user_content.encode("utf-8")).hexdigest()


def sft_messages(user_content: str, assistant_content: str) -> list[dict[str, str]]:
    return [
        {"role": "user", "content": user_content},
        {"role": "assistant", "content": assistant_content},
    ]
