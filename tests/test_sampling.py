"""Section sampling and role/scope assignment (METHOD.md stages 2-4)."""

import math
import random
from collections import Counter

import pytest

from webr_dagster.webr.sampling import (
    ALL, PART, REQUEST_NOUNS, WI, WORD_LIMITS, WR, assign_role_scope, cap_text, plan_page,
    sample_sections, split_sections,
)


def test_split_sections_strips_headings_and_blanks():
    text = "# Title\n\n## Part one\nbody\n\n   \n\n  plain  "
    assert split_sections(text) == ["Title", "Part one\nbody", "plain"]


def test_one_section_text_is_kept_whole():
    rng = random.Random(0)
    for _ in range(50):
        sample = sample_sections("only one block of text", rng)
        assert sample.text == "only one block of text"
        assert sample.sections_kept == sample.sections_total == 1


def test_uniform_sampling_distribution():
    """Half the draws keep everything; the rest keep k ~ U{1..n} leading sections."""
    n, draws = 4, 40000
    text = "\n\n".join(f"section {i}" for i in range(n))
    rng = random.Random(7)
    kept = Counter(sample_sections(text, rng).sections_kept for _ in range(draws))
    # P(k) = 0.5 * 1/n for k < n; P(n) = 0.5 + 0.5/n
    for k in range(1, n):
        assert kept[k] / draws == pytest.approx(0.5 / n, abs=0.01)
    assert kept[n] / draws == pytest.approx(0.5 + 0.5 / n, abs=0.01)


def test_sampled_text_is_a_prefix_of_sections():
    text = "\n\n".join(f"s{i}" for i in range(10))
    rng = random.Random(3)
    for _ in range(200):
        sample = sample_sections(text, rng)
        assert sample.text == "\n\n".join(f"s{i}" for i in range(sample.sections_kept))


def test_gaussian_variant_stays_in_range_and_centres():
    n = 20
    text = "\n\n".join(f"s{i}" for i in range(n))
    rng = random.Random(11)
    partial = [s.sections_kept for s in (sample_sections(text, rng, "gaussian") for _ in range(20000))
               if s.sections_kept != n]
    assert min(partial) >= 1 and max(partial) <= n
    assert sum(partial) / len(partial) == pytest.approx(n / 2, abs=1.0)


def _rounded_clipped_normal(n: int) -> dict[int, float]:
    """P(k) for k = round(X) clipped to 1..n, X ~ Normal(n/2, n/4)."""
    mean, sd = n / 2, n / 4

    def below(x: float) -> float:  # P(X < x)
        return 0.5 * (1 + math.erf((x - mean) / (sd * math.sqrt(2))))

    return {k: (below(k + 0.5) if k < n else 1.0) - (below(k - 0.5) if k > 1 else 0.0)
            for k in range(1, n + 1)}


def test_gaussian_variant_has_no_keep_whole_draw():
    """Gaussian k follows the clipped normal alone: the whole text (k = n) only when the
    normal draw reaches n, about 4% of pages for n = 8, not the uniform mode's half."""
    n, pages = 8, 20000
    text = "\n\n".join(f"paragraph {i}" for i in range(n))
    kept = Counter(plan_page(f"page-{i}", text, seed=9, sampling_mode="gaussian").sections_kept
                   for i in range(pages))
    expected = _rounded_clipped_normal(n)
    assert expected[n] == pytest.approx(0.0401, abs=0.0001)  # P(X >= 7.5) = P(Z >= 1.75)
    for k in range(1, n + 1):
        assert kept[k] / pages == pytest.approx(expected[k], abs=0.01), k
    mean = sum(k * c for k, c in kept.items()) / pages
    assert mean == pytest.approx(sum(k * p for k, p in expected.items()), abs=0.1)  # 4.04


def test_sampling_mode_changes_only_the_sections():
    """The role, scope, noun, word limit and turn order come from their own generators, so
    switching the mode changes no other draw; and the uniform mode draws as before."""
    text = "\n\n".join(f"paragraph {i}" for i in range(8))
    fields = ("role", "scope", "noun", "word_limit", "text_first")
    for i in range(300):
        uniform = plan_page(f"page{i}", text, seed=5)
        gaussian = plan_page(f"page{i}", text, seed=5, sampling_mode="gaussian")
        assert [getattr(uniform, f) for f in fields] == [getattr(gaussian, f) for f in fields]
    # pinned from the implementation before the gaussian variant lost its keep-whole draw
    pinned = [(WI, ALL, "instruction", 50, False, 8), (WI, PART, "request", 150, True, 1),
              (WR, ALL, "instruction", 150, True, 8), (WR, PART, "question", 50, True, 3),
              (WI, ALL, "instruction", 50, False, 8), (WI, PART, "request", 100, True, 8)]
    assert [tuple(getattr(plan, f) for f in fields) + (plan.sections_kept,)
            for plan in (plan_page(f"page{i}", text, seed=5) for i in range(6))] == pinned


def test_unknown_mode_is_an_error():
    with pytest.raises(ValueError):
        sample_sections("a\n\nb", random.Random(0), "triangular")
    # even on a one-section page, where no draw is needed: a typo fails on the first page
    with pytest.raises(ValueError):
        sample_sections("just one block", random.Random(0), "gausian")


def test_assignment_ratio_is_2_2_1_1():
    counts = Counter(assign_role_scope(f"page-{i}", seed=42) for i in range(60000))
    total = sum(counts.values())
    assert counts[(WI, ALL)] / total == pytest.approx(2 / 6, abs=0.01)
    assert counts[(WI, PART)] / total == pytest.approx(2 / 6, abs=0.01)
    assert counts[(WR, ALL)] / total == pytest.approx(1 / 6, abs=0.01)
    assert counts[(WR, PART)] / total == pytest.approx(1 / 6, abs=0.01)


def test_assignment_is_deterministic_and_seeded():
    ids = [f"p{i}" for i in range(500)]
    first = [assign_role_scope(i, 1) for i in ids]
    assert first == [assign_role_scope(i, 1) for i in ids]
    assert first != [assign_role_scope(i, 2) for i in ids]


def test_plan_page_is_reproducible_and_within_method_ranges():
    text = "\n\n".join(f"paragraph {i} " * 5 for i in range(8))
    plans = [plan_page(f"page{i}", text, seed=5) for i in range(300)]
    assert plans == [plan_page(f"page{i}", text, seed=5) for i in range(300)]
    for plan in plans:
        assert plan.noun in REQUEST_NOUNS[plan.role]
        assert plan.word_limit in WORD_LIMITS
    assert {p.noun for p in plans if p.role == WR} == set(REQUEST_NOUNS[WR])
    assert {p.word_limit for p in plans} == set(WORD_LIMITS)
    order = Counter(p.text_first for p in plans)
    assert 0.4 < order[True] / len(plans) < 0.6


def test_cap_text_cuts_on_a_boundary():
    text = "alpha beta gamma delta " * 10
    capped = cap_text(text, 50)
    assert len(capped) <= 50 and text.startswith(capped) and not capped.endswith("delt")
    assert cap_text(text, None) == text
