"""Splits on crawls where most hosts have one or two pages (issue 9, part 5): the test
share holds overall within a point however the pages spread over hosts, big domains keep
their own share, every page is in one split, and the result is deterministic and stable."""

import random
import re
from collections import Counter

import pytest
from dagster import build_asset_context

from webr_dagster.assets.decontaminated import decontaminated_pairs
from webr_dagster.assets.splits import sft_splits
from webr_dagster.assets.tables import conform
from webr_dagster.resources.settings import WebRSettings
from webr_dagster.webr.splits import TEST_SPLIT, TRAIN_SPLIT, assign_splits


def _crawl(sizes: dict[str, int]) -> list[tuple[str, str]]:
    return [(f"{domain}/p{i}", domain) for domain, n in sizes.items() for i in range(n)]


def _two_page_hosts(n_hosts=300):
    return _crawl({f"host{h}.example": 2 for h in range(n_hosts)})


def _mixed():
    return _crawl({**{f"big{d}.example": 200 for d in range(5)},
                   **{f"one{d}.example": 1 for d in range(500)}})


def _test_share(splits, pages=None):
    ids = splits if pages is None else pages
    return sum(splits[p] == TEST_SPLIT for p in ids) / len(ids)


def _by_domain(pages):
    grouped = {}
    for page, domain in pages:
        grouped.setdefault(domain, []).append(page)
    return grouped


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_300_two_page_domains_give_a_ten_percent_test_split_by_page(seed):
    pages = _two_page_hosts()
    # every page yields two examples (as when WI and WR both survive): listed twice
    splits = assign_splits(pages + pages[::-1], test_share=0.1, seed=seed)
    assert set(splits) == {page for page, _ in pages}  # one split per page: page-disjoint
    assert set(splits.values()) == {TRAIN_SPLIT, TEST_SPLIT}
    assert abs(_test_share(splits) - 0.1) <= 0.01
    assert Counter(splits.values())[TEST_SPLIT] == 60  # round(0.1 * 600), exactly


def test_big_domains_keep_their_share_and_small_ones_are_pooled():
    pages = _mixed()
    splits = assign_splits(pages, test_share=0.1, seed=42)
    assert len(splits) == 1500
    assert abs(_test_share(splits) - 0.1) <= 0.01
    grouped = _by_domain(pages)
    for d in range(5):
        assert abs(_test_share(splits, grouped[f"big{d}.example"]) - 0.1) <= 0.01
    singles = [p for d, ps in grouped.items() if d.startswith("one") for p in ps]
    assert abs(_test_share(splits, singles) - 0.1) <= 0.01  # drawn together, 50 of 500


@pytest.mark.parametrize("pages_per_domain, share", [(14, 0.1), (15, 0.1), (25, 0.1),
                                                      (5, 0.3), (3, 0.25), (7, 0.57)])
def test_rounding_per_domain_does_not_pile_up(pages_per_domain, share):
    # 200 domains of 15 pages: rounding 1.5 per domain would give 13.3 % or 6.7 %.
    pages = _crawl({f"d{d}.example": pages_per_domain for d in range(200)})
    splits = assign_splits(pages, share, seed=7)
    assert abs(_test_share(splits) - share) <= 0.01
    quota = pages_per_domain * share
    if quota >= 1:  # big enough to be its own stratum: floor or ceil of its exact share
        for members in _by_domain(pages).values():
            n_test = sum(splits[p] == TEST_SPLIT for p in members)
            assert int(quota + 1e-9) <= n_test <= int(quota + 1e-9) + 1


def test_the_share_holds_however_the_pages_spread_over_hosts():
    rng = random.Random(5)
    for trial in range(40):
        share = rng.choice([0.05, 0.1, 0.2, 0.33])
        sizes = {f"h{trial}-{h}.example": rng.choice([1, 1, 1, 2, 2, 3, 7, 12, 40, 300])
                 for h in range(rng.randint(20, 400))}
        splits = assign_splits(_crawl(sizes), share, seed=trial)
        n = len(splits)
        assert Counter(splits.values())[TEST_SPLIT] == int(share * n + 0.5 + 1e-9), sizes
        assert abs(_test_share(splits) - share) <= 0.01 or n < 50


def test_same_pages_in_another_order_give_the_same_split():
    pages = _mixed() + _two_page_hosts()
    shuffled = pages[:]
    random.Random(3).shuffle(shuffled)
    first = assign_splits(pages, 0.1, seed=9)
    assert assign_splits(shuffled, 0.1, seed=9) == first
    assert assign_splits(iter(shuffled), 0.1, seed=9) == first  # any iterable
    other_seed = assign_splits(pages, 0.1, seed=10)
    assert other_seed != first and Counter(other_seed.values()) == Counter(first.values())


def test_adding_an_unrelated_domain_moves_few_pages():
    base = _crawl({**{f"big{d}.example": 37 + 11 * d for d in range(6)},
                   **{f"small{d}.example": 1 + d % 3 for d in range(400)}})
    before = assign_splits(base, 0.1, seed=4)
    # a big domain: every existing stratum keeps its quota, at most one page moves
    after = assign_splits(base + _crawl({"newbig.example": 53}), 0.1, seed=4)
    assert sum(before[p] != after[p] for p in before) <= 1
    # a small domain joins the pool: only pool pages near the cut, and big domains by one
    after = assign_splits(base + _crawl({"newsmall.example": 2}), 0.1, seed=4)
    moved = [p for p in before if before[p] != after[p]]
    assert len(moved) <= 3
    assert sum(not p.startswith("small") for p in moved) <= 2


def test_small_domains_are_drawn_by_page_not_by_size():
    # Giving each small domain its own remainder would hand every seat to the 4-page
    # domains (remainder 0.4) before any 1-page domain (0.1); pooled, a page is a page.
    pages = _crawl({**{f"four{d}.example": 4 for d in range(100)},
                    **{f"one{d}.example": 1 for d in range(600)}})
    splits = assign_splits(pages, 0.1, seed=42)
    grouped = _by_domain(pages)
    singles = [p for d, ps in grouped.items() if d.startswith("one") for p in ps]
    fours = [p for d, ps in grouped.items() if d.startswith("four") for p in ps]
    assert Counter(splits.values())[TEST_SPLIT] == 100
    assert abs(_test_share(splits, singles) - 0.1) <= 0.04
    assert abs(_test_share(splits, fours) - 0.1) <= 0.04


def test_one_page_of_one_domain():
    assert assign_splits([("only", "a.example")], 0.1, seed=0) == {"only": TRAIN_SPLIT}
    # even with a share that rounds up, one page cannot make two splits
    assert assign_splits([("only", "a.example")], 0.6, seed=0) == {"only": TRAIN_SPLIT}


def test_two_or_more_pages_always_give_both_splits():
    assert Counter(assign_splits([("p1", "a"), ("p2", "b")], 0.1, seed=0).values()) == {
        TRAIN_SPLIT: 1, TEST_SPLIT: 1}
    assert Counter(assign_splits([("p1", "a"), ("p2", "a"), ("p3", "b")], 0.9, seed=0)
                   .values()) == {TRAIN_SPLIT: 1, TEST_SPLIT: 2}


def test_test_share_zero_and_bad_shares():
    pages = _mixed()
    assert set(assign_splits(pages, 0.0, seed=1).values()) == {TRAIN_SPLIT}
    assert assign_splits([], 0.1, seed=1) == {}
    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError):
            assign_splits(pages, bad, seed=1)


def test_a_page_listed_under_two_domains_gets_one_split():
    # a page of a big domain also listed under a small one: the least domain name wins,
    # whatever the order, so the page lands in the same stratum every time
    pages = _two_page_hosts(50) + _crawl({"big.example": 30})
    for seed in range(10):
        for page in ("big.example/p0", "big.example/p1", "big.example/p2"):
            listed_twice = pages + [(page, "zz.example")]
            splits = assign_splits(listed_twice, 0.1, seed=seed)
            assert len(splits) == 130
            assert splits == assign_splits(listed_twice[::-1], 0.1, seed=seed)
            assert splits == assign_splits(pages, 0.1, seed=seed)


def test_a_half_page_rounds_up_in_exact_decimals():
    # 0.35 * 90 is 31.5, but 31.499999999999996 in binary floating point
    splits = assign_splits(_crawl({f"h{d}.example": 1 for d in range(90)}), 0.35, seed=0)
    assert Counter(splits.values())[TEST_SPLIT] == 32


# ----------------------------------------------------------------------- through the asset


def _kept_pair(page: str, domain: str, offset: int) -> dict:
    word = re.sub(r"\W", "", page)
    request = f"Write about topic {word}: " + " ".join(f"{word}x{j}" for j in range(20))
    return {
        "page_id": page, "domain": domain, "url": f"https://{page}",
        "crawl_file": "/crawl/many-hosts.jsonl", "record_offset": offset,
        "role": "WI", "scope": "all", "seed": 42, "sections_total": 1, "sections_kept": 1,
        "truncated": False, "sampled_text": f"The text of page {page}.", "noun": "request",
        "word_limit": 100, "text_first": False, "profile": "a reader", "request": request,
        "first_answer": None, "response": f"The answer for page {page}.", "status": "ok",
        "error": None, "request_call_key": "k1", "answer_call_key": None,
        "response_call_key": "k2", "templates": "t@v1", "model": "openai/loopback",
        "user_content": request + "\n\n" + f"The text of page {page}.", "kept": True,
        "drop_reason": None, "duplicate_of": None,
    }


def test_sft_splits_asset_gives_small_domains_a_test_split(tmp_path):
    pages = _two_page_hosts()
    kept = conform([_kept_pair(p, d, i) for i, (p, d) in enumerate(pages)], "filtered_pairs")
    settings = WebRSettings(export_dir=str(tmp_path / "export"), test_share=0.1, seed=42,
                            webr_home=str(tmp_path / "home"))
    with build_asset_context() as context:
        checked = decontaminated_pairs(context, filtered_pairs=kept, settings=settings).value
    with build_asset_context() as context:
        output = sft_splits(context, decontaminated_pairs=checked, settings=settings)
    frame = output.value
    assert len(frame) == 600
    assert frame.groupby("page_id")["split"].nunique().max() == 1  # page-disjoint
    assert abs((frame["split"] == TEST_SPLIT).mean() - 0.1) <= 0.01
    assert output.metadata["split_counts"].data[TEST_SPLIT] == 60
    # the asset's split is exactly the one assign_splits gives for its pages
    expected = assign_splits(pages, settings.test_share, settings.seed)
    assert frame.set_index("page_id")["split"].to_dict() == expected
