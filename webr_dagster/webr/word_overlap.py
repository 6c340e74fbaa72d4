"""Word-level precision, recall and F1 of an extracted text against a gold text: the
measure used to judge main-text extraction (lower-cased ``\\w+`` runs, multiset overlap)."""

from __future__ import annotations

import re
from collections import Counter

_WORD = re.compile(r"\w+")


def word_counts(text: str | None) -> Counter:
    return Counter(_WORD.findall((text or "").lower()))


def word_overlap_scores(predicted: str | None, gold: str) -> tuple[float, float, float]:
    """(precision, recall, F1) of the words of ``predicted`` against those of ``gold``."""
    p, g = word_counts(predicted), word_counts(gold)
    overlap = sum((p & g).values())
    if not overlap:
        return 0.0, 0.0, 0.0
    precision, recall = overlap / sum(p.values()), overlap / sum(g.values())
    return precision, recall, 2 * precision * recall / (precision + recall)
