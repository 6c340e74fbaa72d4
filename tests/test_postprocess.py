"""Refusal filter, preamble strip, chatty-reply clean-up, MinHash dedup and the final mix."""

import pytest

from webr_dagster.webr.postprocess import (
    drop_reason, find_near_duplicates, generation_drop_reason, is_refusal, mix_ratios, mix_targets,
    shingles, strip_chatty_wrapping, strip_improved_answer_preamble, take_by_targets,
)
from webr_dagster.webr.sampling import ROLE_WEIGHTS


def test_refusals_are_detected_only_at_the_start():
    assert is_refusal("I'm sorry, but I can't help with that.")
    assert is_refusal("  I apologize for the confusion.")
    assert is_refusal("I’m sorry — typographic apostrophe")
    assert not is_refusal("Here is the answer. I'm sorry it is short.")


def test_drop_reasons():
    assert drop_reason("", "answer") == "empty_request"
    assert drop_reason("request", "") == "empty_response"
    assert drop_reason("request", "I apologize, I cannot.") == "refusal"
    assert drop_reason("request", "A fine answer.") is None


def test_preamble_is_stripped_only_when_announced():
    refined = "Here is the improved answer:\n\n---\nThe real answer.\n\nMore."
    assert strip_improved_answer_preamble(refined) == "The real answer.\n\nMore."
    plain = "An answer.\n\nSecond paragraph."
    assert strip_improved_answer_preamble(plain) == plain
    one_block = "Improved answer: all on one paragraph"
    assert strip_improved_answer_preamble(one_block) == one_block


def test_near_duplicates_keep_the_earliest():
    base = ("Write a detailed guide for first-time gardeners on planting tomatoes in spring, "
            "covering soil preparation, spacing, watering schedules and common pests in five "
            "short paragraphs with a friendly tone")
    items = [
        ("a", base),
        ("b", "Explain the history of the printing press in Europe and its effects on literacy, "
              "religion and science, as a formal essay of about 600 words"),
        ("c", base + " please"),  # near-duplicate of a
        ("d", base.replace("friendly", "warm")),  # near-duplicate of a
    ]
    assert find_near_duplicates(items) == {"c": "a", "d": "a"}


def test_distinct_texts_are_all_kept():
    items = [(str(i), f"topic {i} " + " ".join(f"w{i}_{j}" for j in range(30))) for i in range(200)]
    assert find_near_duplicates(items) == {}


GUIDE = ("Write a detailed guide for first-time gardeners on planting tomatoes in spring, "
         "covering soil preparation, spacing, watering schedules and common pests in five "
         "short paragraphs with a friendly tone")
# The same words, clauses in another order: unigram Jaccard 1.0, word 3-gram Jaccard 0.30
REORDERED = ("In five short paragraphs with a friendly tone, write a detailed guide on planting "
             "tomatoes in spring for first-time gardeners, covering common pests, watering "
             "schedules, spacing and soil preparation")
# Reordered and reworded (compose, growing, and): unigram Jaccard 0.83, word 3-gram 0.24
REWORDED = ("In five short paragraphs and a friendly tone, compose a detailed guide for "
            "first-time gardeners on growing tomatoes in spring, covering common pests, "
            "watering schedules, spacing and soil preparation")
PRINTING = ("Explain the history of the printing press in Europe and its effects on literacy, "
            "religion and science, as a formal essay of about 600 words")


def _jaccard(a: str, b: str, size: int) -> float:
    first, second = shingles(a, size), shingles(b, size)
    return len(first & second) / len(first | second)


def test_reordered_and_reworded_requests_are_near_duplicates_by_default():
    for paraphrase in (REORDERED, REWORDED):  # what the texts are meant to be
        assert _jaccard(GUIDE, paraphrase, 1) >= 0.8
        assert _jaccard(GUIDE, paraphrase, 3) <= 0.35
    items = [("guide", GUIDE), ("printing", PRINTING), ("reordered", REORDERED),
             ("reworded", REWORDED)]
    assert find_near_duplicates(items) == {"reordered": "guide", "reworded": "guide"}
    assert find_near_duplicates(items, features="unigram") == find_near_duplicates(items)
    assert find_near_duplicates(items, features=1) == find_near_duplicates(items)


def test_word_3grams_keep_paraphrases_and_catch_copies():
    items = [("guide", GUIDE), ("reordered", REORDERED), ("reworded", REWORDED),
             ("copy", GUIDE + " please")]
    assert find_near_duplicates(items, features="3gram") == {"copy": "guide"}
    assert find_near_duplicates(items, features=3) == {"copy": "guide"}


def test_the_earliest_paraphrase_wins():
    items = [("first", REWORDED), ("second", GUIDE), ("printing", PRINTING)]
    assert find_near_duplicates(items) == {"second": "first"}
    assert find_near_duplicates(list(reversed(items))) == {"first": "second"}


def test_distinct_requests_sharing_common_words_are_kept():
    """Requests on one theme share "write", "a", "for", "the", ... but not enough words."""
    distinct = [
        "Write a short guide for beginners on pruning roses in late winter",
        "Write a list of the ten hardiest vegetables for a cold, shaded balcony",
        "Explain for a child why leaves turn red and yellow in the autumn",
        "Describe in a formal tone how to compost kitchen scraps in a small flat",
        "Give a week-by-week watering plan for a new lawn sown in April",
    ]
    for i, a in enumerate(distinct):
        for b in distinct[i + 1:]:
            assert _jaccard(a, b, 1) < 0.35
    items = [(f"r{i}", text) for i, text in enumerate(distinct)]
    items += [("guide", GUIDE), ("reworded", REWORDED)]
    assert find_near_duplicates(items) == {"reworded": "guide"}


@pytest.mark.parametrize("features", ["bigram", "3-gram", "", 0, -1, True, None])
def test_unknown_dedup_features_are_an_error(features):
    with pytest.raises(ValueError):
        find_near_duplicates([("a", GUIDE)], features=features)
    with pytest.raises(ValueError):  # even with nothing to compare: a bad setting fails early
        find_near_duplicates([], features=features)


@pytest.mark.parametrize("reply, cleaned, stripped", [
    ('Here is a rewritten request:\n\n"Write a poem about the sea."',
     "Write a poem about the sea.", ["preamble", "quotes"]),
    ("Here's the improved answer:\nTomatoes need sun.\n\nWater them early.",
     "Tomatoes need sun.\n\nWater them early.", ["preamble"]),
    ("HERE ARE THE QUESTIONS:\nWhy do leaves fall?", "Why do leaves fall?", ["preamble"]),
    ("Here’s a possible request in the author's voice:\nPlan my garden.",
     "Plan my garden.", ["preamble"]),
    ("**Here is the request:**\n\nPlan my garden.", "Plan my garden.", ["preamble"]),
    ("Here is the improved answer:\n\n---\nThe real answer.", "The real answer.",
     ["preamble"]),
    ("Here is the request:", "", ["preamble"]),  # nothing after it: an empty reply
    ("“Write a sonnet about rain.”", "Write a sonnet about rain.", ["quotes"]),
    ("«Écrivez un poème.»", "Écrivez un poème.", ["quotes"]),
    ("'Summarise the article.'", "Summarise the article.", ["quotes"]),
    ('  " Padded inside. "  ', "Padded inside.", ["quotes"]),
])
def test_chatty_wrapping_is_stripped(reply, cleaned, stripped):
    assert strip_chatty_wrapping(reply) == (cleaned, stripped)


@pytest.mark.parametrize("reply", [
    "Here are three reasons to water early: less evaporation and fewer slugs.",
    "Here is why: roots drink before the heat.\nMore text.",  # the colon is not at the end
    "Hereafter, list the steps:\n1. Dig.",  # not "Here is/are/'s"
    "Follow these steps:\n1. Dig.\n2. Plant.",
    "Plan my garden.\nHere is what I grow:\n- beans",  # only the first line is looked at
    '"Hello," she said, "welcome to the garden."',  # quotes, but not around the whole text
    '"Tomatoes" and "potatoes" are both nightshades, said "the book"',
    '"Sun" and shade, then "water"',  # opens and closes with a quote, two quotations inside
    "“Mismatched\"",
    "'Don't water at noon,' he said. 'It burns.'",
    "'Don't water at noon'",  # an apostrophe inside: the single quotes are not guessed at
    '"',
    "",
])
def test_content_is_not_stripped(reply):
    assert strip_chatty_wrapping(reply) == (reply.strip(), [])


def test_generation_status_reasons():
    assert generation_drop_reason("ok") is None
    assert generation_drop_reason("truncated") == "truncated"
    assert generation_drop_reason("failed") == "generation_failed"
    assert generation_drop_reason("budget") == "generation_budget"


def _ratio(targets, a, b):
    return sum(v for k, v in targets.items() if k in a) / sum(v for k, v in targets.items() if k in b)


WI_ALL, WI_PART, WR_ALL, WR_PART = ("WI", "all"), ("WI", "part"), ("WR", "all"), ("WR", "part")


def test_mix_targets_bring_wi_to_wr_within_tolerance():
    counts = {WI_ALL: 300, WI_PART: 340, WR_ALL: 200, WR_PART: 180}
    targets = mix_targets(counts, ROLE_WEIGHTS, tolerance=0.05)
    assert 2 / 1.05 <= _ratio(targets, {WI_ALL, WI_PART}, {WR_ALL, WR_PART}) <= 2 * 1.05
    assert all(targets[g] <= counts[g] for g in counts)
    assert targets[WI_ALL] == 300 and targets[WI_PART] == 340  # the scarce role is untouched
    # WR shrinks from its larger scope first, so all : part moves towards 1 : 1
    assert targets[WR_ALL] - targets[WR_PART] < 200 - 180
    wi_heavy = mix_targets({WI_ALL: 500, WI_PART: 400, WR_ALL: 100, WR_PART: 100}, ROLE_WEIGHTS)
    assert wi_heavy[WI_ALL] == wi_heavy[WI_PART] == 210


def test_mix_ratios_are_measured_per_role():
    rows = ([{"role": "WI", "scope": "all"}] * 4 + [{"role": "WI", "scope": "part"}] * 4
            + [{"role": "WR", "scope": "all"}] * 3 + [{"role": "WR", "scope": "part"}])
    assert mix_ratios(rows) == {"WI : WR": 2.0, "all : part in WI": 1.0,
                                "all : part in WR": 3.0}
    assert mix_ratios(rows[:8])["WI : WR"] is None


def test_mix_keeps_balanced_sets_whole():
    counts = {WI_ALL: 2, WI_PART: 2, WR_ALL: 1, WR_PART: 1}
    assert mix_targets(counts, ROLE_WEIGHTS) == counts


def test_mix_with_a_missing_role_keeps_everything():
    assert mix_targets({WI_ALL: 3, WI_PART: 3}, ROLE_WEIGHTS) == {WI_ALL: 3, WI_PART: 3}


def test_take_by_targets_is_deterministic_by_rank():
    rows = [{"role": "WI", "scope": "all", "rank": r} for r in (0.9, 0.1, 0.5)]
    kept, trimmed = take_by_targets(rows, {WI_ALL: 2}, "rank")
    assert [r["rank"] for r in kept] == [0.1, 0.5] and [r["rank"] for r in trimmed] == [0.9]
