"""Refusal filter, preamble strip, MinHash dedup and the final mix."""

from webr_dagster.webr.postprocess import (
    drop_reason, find_near_duplicates, is_refusal, mix_targets, strip_improved_answer_preamble,
    take_by_targets,
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


def test_mix_keeps_balanced_sets_whole():
    counts = {WI_ALL: 2, WI_PART: 2, WR_ALL: 1, WR_PART: 1}
    assert mix_targets(counts, ROLE_WEIGHTS) == counts


def test_mix_with_a_missing_role_keeps_everything():
    assert mix_targets({WI_ALL: 3, WI_PART: 3}, ROLE_WEIGHTS) == {WI_ALL: 3, WI_PART: 3}


def test_take_by_targets_is_deterministic_by_rank():
    rows = [{"role": "WI", "scope": "all", "rank": r} for r in (0.9, 0.1, 0.5)]
    kept, trimmed = take_by_targets(rows, {WI_ALL: 2}, "rank")
    assert [r["rank"] for r in kept] == [0.1, 0.5] and [r["rank"] for r in trimmed] == [0.9]
