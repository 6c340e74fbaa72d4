"""Benchmark-ready splits and the exported row format (alignment-handbook SFT)."""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Iterable
from fractions import Fraction

from .sampling import unit_hash

TRAIN_SPLIT = "train_sft"
TEST_SPLIT = "test_sft"


def assign_splits(
    pages: Iterable[tuple[str, str]], test_share: float, seed: int
) -> dict[str, str]:
    """Map page id -> split: page-disjoint, stratified by big domains, deterministic.

    Strata: every domain with at least ``1 / test_share`` pages (an exact share of one
    test page or more) is its own stratum; the pages of all smaller domains form one
    pooled stratum. The test split gets ``round(test_share * total pages)`` pages (half
    up), at least one when there are two pages or more and never all of them, shared
    out over the strata by largest remainder of their exact shares (ties by a seeded hash
    of the stratum), so a big domain gets ``floor`` or ``ceil`` of its share and the
    overall share is off by at most half a page whatever the spread over hosts. Within a
    stratum the pages are ordered by a seeded hash of the page id and the first ones are
    test: a page's split depends only on the seed, its stratum and the count drawn there.
    """
    if not 0 <= test_share < 1:
        raise ValueError("test_share must be in [0, 1)")
    share = Fraction(repr(float(test_share)))  # exact: 0.57 * 100 is 57, not 56.99...
    domain_of: dict[str, str] = {}
    for page_id, domain in pages:  # a page is in one domain (the least by name if listed twice)
        if page_id not in domain_of or domain < domain_of[page_id]:
            domain_of[page_id] = domain
    by_domain: dict[str, list[str]] = defaultdict(list)
    for page_id, domain in domain_of.items():
        by_domain[domain].append(page_id)
    strata: dict[tuple[int, str], list[str]] = defaultdict(list)
    for domain, domain_pages in by_domain.items():
        big = share > 0 and len(domain_pages) * share >= 1
        strata[(1, domain) if big else (0, "")].extend(domain_pages)
    total = len(domain_of)
    n_test = math.floor(share * total + Fraction(1, 2))
    if share > 0 and total >= 2:
        n_test = max(n_test, 1)  # both splits exist
    n_test = min(n_test, max(total - 1, 0))  # and train is never empty
    quotas = {key: share * len(members) for key, members in strata.items()}
    drawn = {key: math.floor(quota) for key, quota in quotas.items()}
    by_remainder = sorted(
        quotas, key=lambda key: (drawn[key] - quotas[key], unit_hash(seed, *key, "split-stratum"))
    )
    for key in by_remainder[: n_test - sum(drawn.values())]:
        drawn[key] += 1
    rank = lambda page_id: (unit_hash(seed, page_id, "split"), page_id)  # noqa: E731
    splits: dict[str, str] = {}
    for key, members in strata.items():
        for index, page_id in enumerate(sorted(members, key=rank)):
            splits[page_id] = TEST_SPLIT if index < drawn[key] else TRAIN_SPLIT
    return splits


def prompt_id(user_content: str) -> str:
    """The id of an example: SHA-256 of its prompt, as in HuggingFaceH4/ultrachat_200k."""
    return hashlib.sha256(user_content.encode("utf-8")).hexdigest()


def sft_messages(user_content: str, assistant_content: str) -> list[dict[str, str]]:
    return [
        {"role": "user", "content": user_content},
        {"role": "assistant", "content": assistant_content},
    ]
