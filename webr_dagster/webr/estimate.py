"""Expected LLM calls and tokens of a page before anything is spent.

Token counts are estimated from characters (about four per token for English); replies
are assumed to be as long as the method asks for: a 30-word profile, a request near its
word limit, a reworked page about as long as the sampled text, answers capped by the
model's max tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

from .prompts import DEFAULT_TEMPLATES, TemplateSet
from .sampling import WI, PagePlan, cap_text
from .variants import DEFAULT, get_variant

CHARS_PER_TOKEN = 4
TOKENS_PER_WORD = 1.3
PROFILE_TOKENS = 45
TEMPLATE_OVERHEAD_TOKENS = 20  # chat-format tokens around each message


def _tokens(text_chars: int) -> int:
    return text_chars // CHARS_PER_TOKEN + TEMPLATE_OVERHEAD_TOKENS


@dataclass
class CallEstimate:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, prompt_tokens: int, completion_tokens: int) -> None:
        self.calls += 1
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens

    def __iadd__(self, other: "CallEstimate") -> "CallEstimate":
        self.calls += other.calls
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        return self


def estimate_page(plan: PagePlan, page_text: str, max_input_chars: int | None,
                  max_tokens: int, templates: TemplateSet = DEFAULT_TEMPLATES,
                  variant: str = DEFAULT) -> CallEstimate:
    """``plan``: the page's plan under ``variant`` (``plan_variant``), whose role and
    scope it already carries; the variant also says which calls are made."""
    chosen = get_variant(variant)
    estimate = CallEstimate()
    sampled = len(plan.sampled_text)
    page_chars = len(cap_text(page_text, max_input_chars))
    if chosen.profile:
        estimate.add(_tokens(len(templates.author_profile.body) + page_chars), PROFILE_TOKENS)
    request_tokens = min(max_tokens, int(plan.word_limit * TOKENS_PER_WORD))
    template = templates.request(plan.role, plan.scope, profile=chosen.profile)
    estimate.add(_tokens(len(template.body) + sampled)
                 + (PROFILE_TOKENS if chosen.profile else 0), request_tokens)
    request_chars = request_tokens * CHARS_PER_TOKEN
    if plan.role == WI:
        estimate.add(_tokens(len(templates.wi_response.body) + sampled + request_chars),
                     min(max_tokens, sampled // CHARS_PER_TOKEN))
    else:
        answer = min(max_tokens, 500)
        estimate.add(_tokens(len(templates.wr_answer.body) + request_chars), answer)
        if chosen.refine:
            estimate.add(_tokens(len(templates.wr_refine.body) + sampled + request_chars
                                 + answer * CHARS_PER_TOKEN), answer)
    return estimate
