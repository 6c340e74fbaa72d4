"""Post-processing of generated pairs: filters, preamble strip, near-duplicate removal, mixing."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

REFUSAL_OPENINGS = ("i'm sorry", "i’m sorry", "i am sorry", "i apologize", "i apologise")
DEDUP_THRESHOLD = 0.7
DEDUP_PERMUTATIONS = 128
DIRECT_COMPARISON_MAX = 32  # up to this many texts, no LSH index
SHINGLE_WORDS = 3
# The method's MinHash features are the request's set of tokens, so a request reworded or
# reordered with the same words is caught; word 3-grams only catch near-verbatim copies.
DEDUP_FEATURES = "unigram"
FEATURE_NAMES = {"unigram": 1, "3gram": SHINGLE_WORDS}
TRUNCATED = "truncated"


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


# A first line such as "Here is a rewritten request:" or "**Here's the improved answer:**".
# It must end with the colon (bold markers aside), so a first line that goes on to say
# something ("Here are three reasons to ...") is content and stays.
_PREAMBLE = re.compile(r"[*_]*here(?:\s+is|\s+are|'s|’s)\b[^\n]*:[*_]*", re.IGNORECASE)
# A horizontal rule that some models put between their announcement and the text.
_RULE = re.compile(r"\A(?:-{3,}|\*{3,}|_{3,})[ \t]*(?:\n|$)")
# (opening, closing) quote pairs that may wrap a whole reply.
WRAPPING_QUOTES = (('"', '"'), ("'", "'"), ("“", "”"), ("‘", "’"), ("«", "»"))


def strip_chatty_wrapping(text: str) -> tuple[str, list[str]]:
    """Remove what an open-weight model wraps around its reply: a leading "Here is ...:"
    line, then quotes around the whole text. Returns the cleaned text and what was removed
    (labels "preamble" and "quotes", in that order).

    Quotes go only when the same pair opens and closes the text and neither of its marks
    occurs inside: '"a" and "b"' is two quotations, not one wrapped reply, and a reply in
    single quotes with an apostrophe inside is left whole rather than guessed at.
    """
    stripped: list[str] = []
    text = text.strip()
    first, newline, rest = text.partition("\n")
    if _PREAMBLE.fullmatch(first.strip()):
        text = _RULE.sub("", rest.lstrip(), count=1).strip() if newline else ""
        stripped.append("preamble")
    for opening, closing in WRAPPING_QUOTES:
        inner = text[len(opening):-len(closing)]
        if (len(text) >= len(opening) + len(closing) and text.startswith(opening)
                and text.endswith(closing) and opening not in inner and closing not in inner):
            text = inner.strip()
            stripped.append("quotes")
            break
    return text, stripped


def generation_drop_reason(status: str) -> str | None:
    """Why a pair whose LLM calls did not all succeed is dropped (None when they did).

    A reply cut at the output-token cap is unfinished, not a shorter answer, so it is
    dropped under its own reason rather than with the failed calls."""
    if status == "ok":
        return None
    if status == TRUNCATED:
        return TRUNCATED
    return f"generation_{status}"


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


def shingle_size(features: str | int) -> int:
    """Words per MinHash feature: "unigram" -> 1 (the method's token set), "3gram" -> 3,
    or a positive int n for word n-grams."""
    if isinstance(features, bool):  # bool is an int, and True would silently mean unigrams
        raise ValueError(f"dedup features must be a name or a size, not {features!r}")
    if isinstance(features, int):
        if features >= 1:
            return features
    elif features in FEATURE_NAMES:
        return FEATURE_NAMES[features]
    raise ValueError(f"unknown dedup features {features!r}; expected "
                     f"{' or '.join(map(repr, FEATURE_NAMES))} or a positive int")


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
    features: str | int = DEDUP_FEATURES,
) -> dict[str, str]:
    """Map each near-duplicate id to the earlier id it duplicates.

    ``items`` are (id, text) in priority order: of every group of texts whose
    estimated Jaccard similarity reaches ``threshold``, the earliest is kept.
    ``features`` picks what a text's set is made of (see ``shingle_size``): its words
    by default, as the method does, or word n-grams.
    LSH candidates are confirmed against the signature estimate, which removes the
    banding's false positives.
    """
    from datasketch import MinHash, MinHashLSH

    size = shingle_size(features)  # before any work, so a bad setting fails even on no items
    if len(items) < 2:
        return {}
    # A crawl's domains mostly have a pair or two per role: comparing a few signatures
    # directly is cheaper than building an LSH index (~3 ms), and finds the same pairs
    # (without the banding's rare misses).
    lsh = (MinHashLSH(threshold=threshold, num_perm=num_perm,
                      params=lsh_bands(threshold, num_perm))
           if len(items) > DIRECT_COMPARISON_MAX else None)
    kept: dict[str, MinHash] = {}
    order: dict[str, int] = {}
    duplicates: dict[str, str] = {}
    token_sets = [[s.encode() for s in shingles(text, size)] for _, text in items]
    signatures = MinHash.bulk(token_sets, num_perm=num_perm)
    for index, ((item_id, _), signature) in enumerate(zip(items, signatures)):
        candidates = lsh.query(signature) if lsh is not None else kept
        matches = [m for m in candidates if kept[m].jaccard(signature) >= threshold]
        if matches:
            duplicates[item_id] = min(matches, key=order.__getitem__)
            continue
        if item_id in kept:  # the same id twice: the later copy duplicates the first
            duplicates[item_id] = item_id
            continue
        if lsh is not None:
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
    scope first, so the all : part balance that the assignment created is kept. all : part
    itself is not trimmed to 1 : 1: the assignment makes it so on average, and on a small
    set forcing it would throw away paid pairs (3 of the sample's 6); the dataset card
    reports the measured ratios instead.
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


def mix_ratios(rows: Iterable[dict]) -> dict[str, float | None]:
    """The measured WI : WR and, within each role, all : part of a final set (None where
    a side is empty)."""
    tally: dict[tuple[str, str], int] = {}
    for row in rows:
        tally[(row["role"], row["scope"])] = tally.get((row["role"], row["scope"]), 0) + 1

    def ratio(a: int, b: int) -> float | None:
        return round(a / b, 3) if b else None

    roles = {role: sum(n for (r, _), n in tally.items() if r == role) for role in ("WI", "WR")}
    return {
        "WI : WR": ratio(roles["WI"], roles["WR"]),
        **{f"all : part in {role}": ratio(tally.get((role, "all"), 0),
                                          tally.get((role, "part"), 0))
           for role in ("WI", "WR")},
    }


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
