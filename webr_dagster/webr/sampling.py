"""Seeds, role/scope assignment and section sampling (METHOD.md stages 2-4).

Every random choice for a page is drawn from a generator seeded by a hash of
(run seed, page id, purpose), so a page gets the same choices in every run and in
every backfill, whatever other pages are processed with it.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import asdict, dataclass

WI, WR = "WI", "WR"
ALL, PART = "all", "part"

# WI-all : WI-part : WR-all : WR-part = 2 : 2 : 1 : 1
ROLE_SCOPE_WEIGHTS: dict[tuple[str, str], int] = {
    (WI, ALL): 2,
    (WI, PART): 2,
    (WR, ALL): 1,
    (WR, PART): 1,
}
ROLE_WEIGHTS = {WI: 2, WR: 1}  # the final mix, WI : WR = 2 : 1
REQUEST_NOUNS = {WI: ("request", "instruction"), WR: ("request", "question", "instruction")}
WORD_LIMITS = (50, 100, 150, 200)
KEEP_WHOLE_PROBABILITY = 0.5


def unit_hash(*parts: object) -> float:
    """A uniform number in [0, 1) determined by ``parts``."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def page_rng(seed: int, page_id: str, purpose: str) -> random.Random:
    """A generator private to one page and one purpose (sampling, request, ...)."""
    digest = hashlib.sha256(f"{seed}\x1f{page_id}\x1f{purpose}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def assign_role_scope(page_id: str, seed: int) -> tuple[str, str]:
    """Cast a page as WI or WR, whole text or one part, in the 2:2:1:1 ratio."""
    total = sum(ROLE_SCOPE_WEIGHTS.values())
    point = unit_hash(seed, page_id, "role-scope") * total
    for role_scope, weight in ROLE_SCOPE_WEIGHTS.items():
        if point < weight:
            return role_scope
        point -= weight
    return list(ROLE_SCOPE_WEIGHTS)[-1]  # only reachable through float rounding


_LEADING_MARKS = re.compile(r"^[#\s]+")


def split_sections(text: str) -> list[str]:
    """Sections are blank-line separated blocks, with leading '#' and blanks removed."""
    sections = (_LEADING_MARKS.sub("", block).strip() for block in text.split("\n\n"))
    return [section for section in sections if section]


@dataclass(frozen=True)
class SectionSample:
    text: str
    sections_total: int
    sections_kept: int


SAMPLING_MODES = ("uniform", "gaussian")


def sample_sections(text: str, rng: random.Random, mode: str = "uniform") -> SectionSample:
    """Keep the first k of the text's n sections.

    ``mode="uniform"`` (the method's rule): the whole text with probability 0.5, else k
    uniform in 1..n. ``mode="gaussian"`` (the paper code's variant): k ~ Normal(n/2, n/4),
    rounded and clipped to 1..n, with no keep-whole draw first; the whole text is kept only
    when the normal draw reaches n (about 4% of pages for n = 8).
    """
    # Checked before any draw: a mistyped setting must fail on the first page, not only on
    # the pages that happen to have several sections.
    if mode not in SAMPLING_MODES:
        raise ValueError(f"unknown section sampling mode {mode!r}; expected one of "
                         f"{', '.join(SAMPLING_MODES)}")
    sections = split_sections(text)
    n = len(sections)
    if n <= 1:
        return SectionSample("\n\n".join(sections), n, n)
    if mode == "gaussian":
        k = min(n, max(1, round(rng.gauss(n / 2, n / 4))))
    elif rng.random() < KEEP_WHOLE_PROBABILITY:
        k = n
    else:
        k = rng.randint(1, n)
    return SectionSample("\n\n".join(sections[:k]), n, k)


def cap_text(text: str, max_chars: int | None) -> str:
    """Cut text to ``max_chars`` at a paragraph or word boundary (never mid-word)."""
    if not max_chars or len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    boundary = max(cut.rfind("\n\n"), cut.rfind(" "))
    return cut[:boundary] if boundary > max_chars // 2 else cut


@dataclass(frozen=True)
class PagePlan:
    """Every random decision made for one page, recorded next to its pair."""

    page_id: str
    seed: int
    role: str
    scope: str
    sampled_text: str
    sections_total: int
    sections_kept: int
    truncated: bool
    noun: str
    word_limit: int
    text_first: bool  # WI user turn: page text before the request

    def as_dict(self) -> dict:
        return asdict(self)


def plan_page(
    page_id: str,
    text: str,
    seed: int,
    sampling_mode: str = "uniform",
    max_input_chars: int | None = None,
) -> PagePlan:
    """Draw all of a page's choices: role, scope, sampled text, noun, word limit, order."""
    role, scope = assign_role_scope(page_id, seed)
    sample = sample_sections(text, page_rng(seed, page_id, "sections"), sampling_mode)
    sampled = cap_text(sample.text, max_input_chars)
    truncated = len(sampled) < len(sample.text)
    request_rng = page_rng(seed, page_id, "request")
    noun = request_rng.choice(REQUEST_NOUNS[role])
    word_limit = request_rng.choice(WORD_LIMITS)
    text_first = page_rng(seed, page_id, "turn-order").random() < 0.5
    return PagePlan(
        page_id=page_id,
        seed=seed,
        role=role,
        scope=scope,
        sampled_text=sampled,
        sections_total=sample.sections_total,
        sections_kept=sample.sections_kept,
        truncated=truncated,
        noun=noun,
        word_limit=word_limit,
        text_first=text_first,
    )
