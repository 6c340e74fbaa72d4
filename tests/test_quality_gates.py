"""The quality gates as pure functions: each passes a good set and fails a broken one,
with the measured value next to its threshold."""

import pytest

from webr_dagster.webr import quality_gates as gates
from webr_dagster.webr.variants import get_variant

DEFAULT = get_variant("default")


def _row(page, split="train_sft", role="WI", scope="all", user="A request.",
         assistant="An answer.", prompt_id=None):
    return {"page_id": page, "split": split, "role": role, "scope": scope,
            "prompt_id": prompt_id or f"id-{page}-{split}",
            "messages": [{"role": "user", "content": user},
                         {"role": "assistant", "content": assistant}]}


def _mix(wi_all, wi_part, wr_all, wr_part):
    rows = []
    for role, scope, n in (("WI", "all", wi_all), ("WI", "part", wi_part),
                           ("WR", "all", wr_all), ("WR", "part", wr_part)):
        rows += [_row(f"{role}{scope}{i}", role=role, scope=scope) for i in range(n)]
    return rows


def test_contamination_gate_counts_matching_examples():
    match = lambda user, assistant: "ifeval 1000" if "Raymond" in user + assistant else None  # noqa: E731
    clean = [("a", "Tell me about Tripoli.", "It is a city.")]
    assert gates.no_contamination(clean, match).passed
    verdict = gates.no_contamination(clean + [("b", "Summarise Raymond III.", "...")], match)
    assert not verdict.passed and verdict.measured["contaminated"] == 1
    assert "ifeval 1000" in verdict.detail


def test_page_disjoint_gate():
    assert gates.page_disjoint([_row("p1"), _row("p2", "test_sft")]).passed
    verdict = gates.page_disjoint([_row("p1"), _row("p1", "test_sft"), _row("p2")])
    assert not verdict.passed and verdict.measured["pages_in_both"] == 1


@pytest.mark.parametrize("bad", [
    _row("p", assistant="  "),
    _row("p", user=""),
    _row("p", split="validation"),
    {**_row("p"), "messages": [{"role": "assistant", "content": "a"},
                               {"role": "user", "content": "b"}]},
    {**_row("p"), "messages": [{"role": "user", "content": "a"}]},
])
def test_well_formed_gate_fails_a_bad_example(bad):
    good = [_row("a"), _row("b", "test_sft")]
    assert gates.well_formed(good).passed
    verdict = gates.well_formed(good + [bad])
    assert not verdict.passed and verdict.measured["malformed"] == 1


def test_capped_reply_gate_reads_the_ledgers_finish_reasons():
    keys = [("e1", ["k1", "k2"]), ("e2", ["k3", None])]
    assert gates.no_capped_replies(keys, {"k1": "stop", "k2": "stop", "k3": None}).passed
    verdict = gates.no_capped_replies(keys, {"k1": "stop", "k2": "length", "k3": "stop"})
    assert not verdict.passed and verdict.measured["capped"] == 1


def test_mix_gate_passes_the_methods_mix_and_fails_a_missing_role():
    assert gates.mix_within_tolerance(_mix(50, 50, 25, 25), DEFAULT, 0.05, 0.1).passed
    verdict = gates.mix_within_tolerance(_mix(50, 50, 0, 0), DEFAULT, 0.05, 0.1)
    assert not verdict.passed and verdict.measured["WI : WR"] == "inf"
    assert "WI : WR" in verdict.detail


def test_mix_gate_forgives_what_chance_explains_on_a_small_set():
    # 7 : 3 on ten examples is 2.33 : 1, 17 % off, and likely by chance.
    verdict = gates.mix_within_tolerance(_mix(4, 3, 2, 1), DEFAULT, 0.05, 0.1)
    assert verdict.passed and verdict.measured["WI : WR chance p"] > gates.CHANCE_P_VALUE
    # The same 17 % on 3,000 examples is not chance (3.9 standard deviations).
    big = gates.mix_within_tolerance(_mix(1050, 1050, 450, 450), DEFAULT, 0.05, 0.1)
    assert not big.passed


def test_mix_gate_skips_ratios_the_variant_fixes():
    wi_only = gates.mix_within_tolerance(_mix(50, 50, 0, 0), get_variant("wi-only"), 0.05, 0.1)
    assert wi_only.passed and "WI : WR" not in wi_only.measured
    lopsided = _mix(100, 0, 50, 0)
    assert gates.mix_within_tolerance(lopsided, get_variant("all-only"), 0.05, 0.1).passed
    assert not gates.mix_within_tolerance(lopsided, DEFAULT, 0.05, 0.1).passed


def test_all_to_part_gate_uses_its_own_tolerance():
    rows = _mix(1320, 1080, 600, 600)  # all : part in WI = 1.22: 22 % off, 4.9 sd at n=2,400
    assert not gates.mix_within_tolerance(rows, DEFAULT, 0.05, 0.1).passed
    assert gates.mix_within_tolerance(rows, DEFAULT, 0.05, 0.25).passed


def test_drop_share_gate():
    verdict = gates.drop_shares({"refusal": 80, "empty_response": 1}, 100, 0.5, 20)
    assert not verdict.passed and verdict.measured["shares"]["refusal"] == 0.8
    assert "refusal 80%" in verdict.detail
    assert gates.drop_shares({"refusal": 30}, 100, 0.5, 20).passed
    small = gates.drop_shares({"truncated": 2}, 6, 0.5, 20)
    assert small.passed and "too few" in small.detail


def test_binomial_p_value_matches_known_values():
    assert gates.binomial_p_value(5, 10, 0.5) == pytest.approx(1.0)
    assert gates.binomial_p_value(10, 10, 0.5) == pytest.approx(2 / 1024)
    # the normal approximation above 5,000 trials agrees with the exact sum's scale
    assert gates.binomial_p_value(5500, 10000, 0.5) < 1e-20
    assert gates.binomial_p_value(5050, 10000, 0.5) > 0.3
