"""Page-disjoint, domain-stratified, deterministic splits and the SFT row format."""

import hashlib
from collections import Counter

from webr_dagster.webr.splits import TEST_SPLIT, TRAIN_SPLIT, assign_splits, prompt_id, sft_messages


def _pages():
    return [(f"{d}-p{i}", d) for d, n in (("a.com", 100), ("b.org", 40), ("c.net", 10)) for i in range(n)]


def test_splits_are_stratified_by_domain():
    splits = assign_splits(_pages(), test_share=0.1, seed=1)
    per_domain = Counter((pid.split("-")[0], split) for pid, split in splits.items())
    assert per_domain[("a.com", TEST_SPLIT)] == 10
    assert per_domain[("b.org", TEST_SPLIT)] == 4
    assert per_domain[("c.net", TEST_SPLIT)] == 1


def test_splits_are_deterministic_and_page_level():
    pages = _pages()
    first = assign_splits(pages, 0.2, seed=3)
    assert first == assign_splits(list(reversed(pages)), 0.2, seed=3)
    # a page listed twice (two pairs) still has exactly one split
    doubled = assign_splits(pages + pages[:10], 0.2, seed=3)
    assert doubled == first
    assert set(first.values()) == {TRAIN_SPLIT, TEST_SPLIT}


def test_tiny_sets_still_get_a_test_split():
    splits = assign_splits([("p1", "x"), ("p2", "y"), ("p3", "z")], 0.1, seed=0)
    assert Counter(splits.values()) == {TRAIN_SPLIT: 2, TEST_SPLIT: 1}


def test_row_format():
    user = "Summarise this."
    assert prompt_id(user) == hashlib.sha256(user.encode()).hexdigest()
    assert sft_messages(user, "Done.") == [
        {"role": "user", "content": user}, {"role": "assistant", "content": "Done."}]
