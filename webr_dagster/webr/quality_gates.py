"""Quality gates: what a finished set must satisfy before it is exported.

Each gate takes plain rows and its thresholds and returns a verdict that carries the
measured value next to the threshold, so a red gate says by how much it missed.
checks.py runs them as Dagster's blocking asset checks on sft_splits.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .sampling import ALL, PART, ROLE_SCOPE_WEIGHTS, ROLE_WEIGHTS, WI, WR
from .splits import TEST_SPLIT, TRAIN_SPLIT
from .variants import Variant

# A ratio outside its tolerance fails only when chance cannot explain it: on a set of ten
# examples a 2 : 1 mix is often 7 : 3, and that is not a broken run. One in a thousand is
# the bar (about 3.3 standard deviations).
CHANCE_P_VALUE = 0.001
LENGTH = "length"  # the finish_reason of a reply cut at the output-token cap


@dataclass(frozen=True)
class GateVerdict:
    passed: bool
    detail: str
    measured: dict[str, object] = field(default_factory=dict)


def no_contamination(examples: Iterable[tuple[str, str, str]],
                     match: Callable[[str, str], object | None]) -> GateVerdict:
    """``examples``: (prompt_id, user turn, assistant turn). ``match`` is the benchmark
    index's check of one example (a hit or None). Run on the finished set, not on the
    decontamination table, so a set built before a benchmark was added is caught."""
    hits = [(prompt_id, hit) for prompt_id, user, assistant in examples
            if (hit := match(user, assistant)) is not None]
    first = f"; first: example {hits[0][0][:12]} ({hits[0][1]})" if hits else ""
    return GateVerdict(not hits, f"{len(hits)} examples match a benchmark prompt{first}",
                       {"contaminated": len(hits), "threshold": 0})


def page_disjoint(rows: Iterable[dict]) -> GateVerdict:
    """No source page has examples in both splits."""
    splits_of: dict[str, set[str]] = {}
    for row in rows:
        splits_of.setdefault(row["page_id"], set()).add(row["split"])
    leaking = sorted(page for page, splits in splits_of.items() if len(splits) > 1)
    first = f"; first: page {leaking[0]}" if leaking else ""
    return GateVerdict(not leaking, f"{len(leaking)} pages are in both splits{first}",
                       {"pages_in_both": len(leaking), "threshold": 0})


def well_formed(rows: Iterable[dict]) -> GateVerdict:
    """Every example is one non-empty user turn then one non-empty assistant turn, in a
    known split. ``messages`` is the list of turns."""
    bad = []
    for row in rows:
        turns = row["messages"]
        roles = [turn.get("role") for turn in turns]
        empty = any(not (turn.get("content") or "").strip() for turn in turns)
        if roles != ["user", "assistant"] or empty or row["split"] not in (TRAIN_SPLIT,
                                                                            TEST_SPLIT):
            bad.append(row["prompt_id"])
    first = f"; first: example {bad[0][:12]}" if bad else ""
    return GateVerdict(not bad, f"{len(bad)} malformed examples{first}",
                       {"malformed": len(bad), "threshold": 0})


def no_capped_replies(call_keys: Iterable[tuple[str, list[str]]],
                      finish_reasons: dict[str, str | None]) -> GateVerdict:
    """No example rests on a reply that stopped at the token cap. ``call_keys``: (prompt
    id, the keys of the calls whose replies are in the example); ``finish_reasons``: what
    the call ledger recorded for each key."""
    capped = [prompt_id for prompt_id, keys in call_keys
              if any(finish_reasons.get(key) == LENGTH for key in keys if key)]
    first = f"; first: example {capped[0][:12]}" if capped else ""
    return GateVerdict(not capped, f"{len(capped)} examples use a reply cut at the token "
                       f"cap{first}", {"capped": len(capped), "threshold": 0})


def binomial_p_value(k: int, n: int, p: float) -> float:
    """Two-sided: how likely a count at least this far from ``n * p`` is by chance."""
    if n == 0:
        return 1.0
    if n > 5000:  # normal approximation, with continuity correction
        sd = math.sqrt(n * p * (1 - p)) or 1e-12
        z = max(abs(k - n * p) - 0.5, 0) / sd
        return min(1.0, math.erfc(z / math.sqrt(2)))

    def term(i: int) -> float:
        if p in (0.0, 1.0):
            return float(i == round(n * p))
        return math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
                        + i * math.log(p) + (n - i) * math.log(1 - p))

    lower = sum(term(i) for i in range(0, k + 1))
    upper = sum(term(i) for i in range(k, n + 1))
    return min(1.0, 2 * min(lower, upper))


def _ratio_check(name: str, first: int, second: int, target: float, tolerance: float):
    """(passed, measured entries) for ``first : second`` against ``target``."""
    total = first + second
    ratio = first / second if second else (math.inf if first else None)
    if ratio is None:
        return True, {f"{name}": "n/a (empty)"}
    off = abs(ratio / target - 1)
    p_value = binomial_p_value(first, total, target / (1 + target))
    passed = off <= tolerance or p_value >= CHANCE_P_VALUE
    measured = {name: round(ratio, 3) if math.isfinite(ratio) else "inf",
                f"{name} target": target, f"{name} tolerance": tolerance,
                f"{name} chance p": round(p_value, 4)}
    return passed, measured


def mix_within_tolerance(rows: Iterable[dict], variant: Variant, role_tolerance: float,
                         scope_tolerance: float) -> GateVerdict:
    """WI : WR = 2 : 1 and, within each role, all : part = 1 : 1, each within its
    tolerance or within what chance gives a set this small. A ratio the variant fixes
    (wi-only has no WR) is not judged."""
    tally = Counter((row["role"], row["scope"]) for row in rows)
    measured: dict[str, object] = {}
    failed = []
    checks = []
    if variant.role is None:
        roles = {role: sum(n for (r, _), n in tally.items() if r == role) for role in (WI, WR)}
        checks.append(("WI : WR", roles[WI], roles[WR], ROLE_WEIGHTS[WI] / ROLE_WEIGHTS[WR],
                       role_tolerance))
    if variant.scope is None:
        for role in (WI, WR):
            target = ROLE_SCOPE_WEIGHTS[(role, ALL)] / ROLE_SCOPE_WEIGHTS[(role, PART)]
            checks.append((f"all : part in {role}", tally[(role, ALL)], tally[(role, PART)],
                           target, scope_tolerance))
    for name, first, second, target, tolerance in checks:
        passed, entries = _ratio_check(name, first, second, target, tolerance)
        measured.update(entries)
        if not passed:
            failed.append(f"{name} = {entries[name]} (target {target:g} within "
                          f"{tolerance:.0%})")
    if not checks:
        return GateVerdict(True, f"variant {variant.name} fixes the mix", measured)
    detail = ("off beyond tolerance and chance: " + "; ".join(failed)) if failed \
        else "every ratio within tolerance or chance"
    return GateVerdict(not failed, detail, measured)


def drop_shares(reasons: dict[str, int], pairs: int, ceiling: float,
                min_pairs: int) -> GateVerdict:
    """No single drop reason takes more than ``ceiling`` of the pairs: a run where most
    pairs are refusals or cut replies is broken, not data. Fewer than ``min_pairs`` pairs
    are too few to judge."""
    shares = {reason: round(count / pairs, 4) for reason, count in reasons.items()} \
        if pairs else {}
    measured = {"pairs": pairs, "ceiling": ceiling, "shares": shares}
    if pairs < min_pairs:
        return GateVerdict(True, f"{pairs} pairs: too few to judge (fewer than "
                           f"{min_pairs})", measured)
    over = {reason: share for reason, share in shares.items() if share > ceiling}
    detail = ", ".join(f"{reason} {share:.0%}" for reason, share in sorted(over.items()))
    return GateVerdict(not over, f"over the ceiling of {ceiling:.0%}: {detail}" if over
                       else f"every drop reason at or under {ceiling:.0%}", measured)
