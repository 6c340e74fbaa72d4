"""Post-processing of generated pairs: filters, preamble strip, near-duplicate removal, mixing."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

REFUSAL_OPENINGS = ("i'm sorry", "i’m sorry", "i am sorry", "i apologize", "i apologise")
DEDUP_THRESHOLD = 0.7
DEDUP_PERMUTATIONS = 128
SHINGLE_WORDS = 3


def is_refusal(response: str) -> bool:
    return response.lstrip().lower().startswith(REFUSAL_OPENINGS)


def strip_improved_answer_preamble(response: str) -> str:
    """Drop a refined answer's announcement ("Here is an improved answer: ...").

    When the text mentions "improved answer", everything up to the first blank line is
    the preamble; stray leading dashes and newlines left behind go too.
    """
    if "improved answer" not in response.lower():
        return response
    head, blank, rest = response.partition("\n\n")
    if not blank:
        return response
    return rest.lstrip("-\n \t")


def clean_generated(text: str | None) -> str:
    return (text or "").strip()


def drop_reason(request: str, response: str) -> str | None:
    """Why a pair must be dropped by the method's rules, or None to keep it."""
    if not request:
        return "empty_request"
    if not response:
        return "empty_response"
    if is_refusal(response):
        return "refusal"
    return None


_WORD = re.compile(r"\w+")


def shingles(text: str, size: int = SHINGLE_WORDS) -> set[str]:
    """Word n-grams of lower-cased text; short texts fall back to their words."""
    words = _WORD.findall(text.lower())
    if len(words) < size:
        return set(words)
    return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}


@lru_cache(maxsize=16)
def lsh_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """datasketch's (bands, rows) for the threshold, computed once: it integrates the
    false positive and negative rates numerically (~20 ms), which a batch of 200 small
    domains would otherwise pay twice per domain."""
    from datasketch import MinHashLSH

    probe = MinHashLSH(threshold=threshold, num_perm=num_perm)
    return probe.b, probe.r


def find_near_duplicates(
    items: Sequence[tuple[str, str]],
    threshold: float = DEDUP_THRESHOLD,
    num_perm: int = DEDUP_PERMUTATIONS,
) -> dict[str, str]:
    """Map each near-duplicate id to the earlier id it duplicates.

    ``items`` are (id, text) in priority order: of every group of texts whose
    estimated Jaccard similarity reaches ``threshold``, the earliest is kept.
    LSH candidates are confirmed against the signature estimate, which removes the
    banding's false positives.
    """
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm,
                     params=lsh_bands(threshold, num_perm))
    kept: dict[str, MinHash] = {}
    order: dict[str, int] = {}
    duplicates: dict[str, str] = {}
    token_sets = [[s.encode() for s in shingles(text)] for _, text in items]
    signatures = MinHash.bulk(token_sets, num_perm=num_perm) if token_sets else []
    for index, ((item_id, _), signature) in enumerate(zip(items, signatures)):
        matches = [m for m in lsh.query(signature) if kept[m].jaccard(signature) >= threshold]
        if matches:
            duplicates[item_id] = min(matches, key=order.__getitem__)
            continue
        if item_id in kept:  # the same id twice: the later copy duplicates the first
            duplicates[item_id] = item_id
            continue
        lsh.insert(item_id, signature)
        kept[item_id] = signature
        order[item_id] = index
    return duplicates


def _two_way(a: int, b: int, weight_a: float, weight_b: float, tolerance: float) -> tuple[int, int]:
    """Trim the larger side so a/b is within ``tolerance`` of weight_a/weight_b.

    Only the over-represented side is cut, and only as far as the tolerance requires, so
    as little paid-for data as possible is set aside. An empty side leaves both as they are.
    """
    if a == 0 or b == 0:
        return a, b
    ratio = (a / weight_a) / (b / weight_b)
    if ratio > 1 + tolerance:
        a = max(1, math.floor(b * weight_a / weight_b * (1 + tolerance) + 1e-9))
    elif ratio < 1 / (1 + tolerance):
        b = max(1, math.floor(a * weight_b / weight_a * (1 + tolerance) + 1e-9))
    return a, b


def _trim_evenly(counts: dict[str, int], target: int) -> dict[str, int]:
    """Cut groups down to ``target`` in total, always from the currently largest group."""
    counts = dict(counts)
    while sum(counts.values()) > target:
        largest = max(counts, key=lambda k: (counts[k], k))
        counts[largest] -= 1
    return counts


def mix_targets(
    counts: dict[tuple[str, str], int],
    role_weights: dict[str, float],
    tolerance: float = 0.05,
) -> dict[tuple[str, str], int]:
    """How many pairs of each (role, scope) group the final mix keeps.

    The roles are brought within ``tolerance`` of their weights (WI : WR = 2 : 1, the
    method's rule for the final set). A role that must shrink loses pairs from its larger
    scope first, so the all : part balance that the assignment created is kept.
    """
    by_role: dict[str, dict[str, int]] = {}
    for (role, scope), count in counts.items():
        by_role.setdefault(role, {})[scope] = count
    roles = [r for r in role_weights if r in by_role]
    if len(roles) == 2:
        r1, r2 = roles
        t1, t2 = _two_way(sum(by_role[r1].values()), sum(by_role[r2].values()),
                          role_weights[r1], role_weights[r2], tolerance)
        by_role[r1] = _trim_evenly(by_role[r1], t1)
        by_role[r2] = _trim_evenly(by_role[r2], t2)
    return {(role, scope): n for role, scopes in by_role.items() for scope, n in scopes.items()}


def take_by_targets(
    rows: Iterable[dict], targets: dict[tuple[str, str], int], rank_key: str
) -> tuple[list[dict], list[dict]]:
    """Split rows into (kept, trimmed): per group, the ``target`` rows lowest by ``rank_key``."""
    by_group: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        by_group.setdefault((row["role"], row["scope"]), []).append(row)
    kept, trimmed = [], []
    for group, group_rows in by_group.items():
        group_rows.sort(key=lambda r: r[rank_key])
        limit = targets.get(group, 0)
        kept.extend(group_rows[:limit])
        trimmed.extend(group_rows[limit:])
    return kept, trimmed
