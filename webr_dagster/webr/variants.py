"""The paper's ablations as run variants: which role and scope a page gets, whether a WR
answer is refined, whether the request prompt carries the author profile.

A variant changes only what it names. Every other choice (sampled sections, noun when the
role is kept, word limit, text order) is the page's own draw from ``plan_page``, so a call
two variants share renders the same messages and the ledger answers it once paid for.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .sampling import (
    ALL, PART, REQUEST_NOUNS, ROLE_WEIGHTS, WI, WR, PagePlan, assign_role_scope, page_rng,
    plan_page, unit_hash,
)

DEFAULT = "default"


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    role: str | None = None  # every page gets this role
    scope: str | None = None  # every page gets this scope
    refine: bool = True  # WR: refine the first answer with the page
    profile: bool = True  # the request prompt carries the author profile


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant(DEFAULT, "the method as published"),
    Variant("wi-only", "every page is Web as Instruction", role=WI),
    Variant("wr-only", "every page is Web as Response", role=WR),
    Variant("all-only", "every request targets the whole text", scope=ALL),
    Variant("part-only", "every request targets one part of the text", scope=PART),
    Variant("wr-no-refine", "a WR pair's response is the first answer, not refined",
            refine=False),
    Variant("no-profile", "request prompts carry no author profile", profile=False),
)}


def get_variant(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown variant {name!r}; expected one of "
                         f"{', '.join(VARIANTS)}") from None


def variant_role_scope(page_id: str, seed: int, variant: str = DEFAULT) -> tuple[str, str]:
    """A page's role and scope under ``variant``.

    A forced role keeps the assigned scope when the assigned role is that role, else draws
    all : part = 1 : 1; a forced scope keeps the assigned role when the assigned scope is
    that scope, else draws WI : WR = 2 : 1. Both draws come from seeded hashes of the page
    id, independent of the assignment's own."""
    chosen = get_variant(variant)
    role, scope = assign_role_scope(page_id, seed)
    if chosen.role is not None and role != chosen.role:
        role = chosen.role
        scope = ALL if unit_hash(seed, page_id, "variant-scope") < 0.5 else PART
    if chosen.scope is not None and scope != chosen.scope:
        scope = chosen.scope
        wi_share = ROLE_WEIGHTS[WI] / sum(ROLE_WEIGHTS.values())
        role = WI if unit_hash(seed, page_id, "variant-role") < wi_share else WR
    return role, scope


def plan_variant(page_id: str, text: str, seed: int, sampling_mode: str = "uniform",
                 max_input_chars: int | None = None, variant: str = DEFAULT) -> PagePlan:
    """``plan_page`` with the variant's role and scope. A page whose role changes draws its
    noun from the new role's nouns, as the first draw of its own request generator (what
    ``plan_page`` draws for a page assigned that role); its word limit stays its own."""
    plan = plan_page(page_id, text, seed, sampling_mode, max_input_chars)
    role, scope = variant_role_scope(page_id, seed, variant)
    if (role, scope) == (plan.role, plan.scope):
        return plan
    noun = plan.noun
    if role != plan.role:
        noun = page_rng(seed, page_id, "request").choice(REQUEST_NOUNS[role])
    return replace(plan, role=role, scope=scope, noun=noun)
