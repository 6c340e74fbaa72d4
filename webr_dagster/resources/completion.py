"""One completion attempt and what became of it: the leaf that the LLM session, the call
workers and the built-in model all share, so none of them imports another to reach it."""

from __future__ import annotations

from dataclasses import dataclass

FINAL_STATUS = {400, 401, 403, 404, 413, 422}


@dataclass
class CompletionReply:
    """The outcome of one attempt, small enough to cross a process pipe."""

    ok: bool
    content: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    retry: bool = False
    reason: str = ""
    retry_after: float | None = None
    message: str = ""
    # Why generation ended, as litellm normalises it ("stop", "length", ...; None when the
    # provider does not say). "length" is an answer cut at max_tokens: paid for, not finished.
    finish_reason: str | None = None


FINISH_AT_CAP = "length"


def stopped_at_cap(finish_reason: str | None) -> bool:
    """Whether a reply ended because it reached max_tokens (a cut answer, not a finished one)."""
    return finish_reason == FINISH_AT_CAP


class MalformedReply(Exception):
    """A 200 reply without usable text: treated like a transient failure."""


def _retry_after(error: BaseException) -> float | None:
    for headers in (
        getattr(getattr(error, "response", None), "headers", None),
        getattr(error, "litellm_response_headers", None),
    ):
        try:
            value = headers.get("retry-after") if headers is not None else None
        except Exception:  # noqa: BLE001 - headers of an unknown shape carry no delay
            value = None
        if value:
            try:
                return float(value)
            except ValueError:
                return None
    return None


def classify_failure(error: BaseException) -> tuple[bool, str, float | None]:
    """(retry?, short reason, server-requested delay) for a failed completion."""
    status = getattr(error, "status_code", None)
    reason = f"{type(error).__name__}" + (f" {status}" if status else "")
    if "Connection error" in str(error):
        # litellm reports a refused or dropped connection as a 500 from the provider; say
        # what it is, since 'nothing listening' and 'the server broke' need different fixes.
        return True, "APIConnectionError", None
    if isinstance(error, MalformedReply):
        return True, "malformed_reply", None
    if "ContextWindowExceeded" in type(error).__name__:
        return False, reason, None
    if status in FINAL_STATUS:
        return False, reason, None
    # Timeouts, connection errors, 429 and 5xx, and unreadable bodies are all transient.
    return True, reason, _retry_after(error)


def read_reply(response) -> CompletionReply:
    """Read a litellm response; a reply without text content is malformed."""
    try:
        choice = response.choices[0]
        content = choice.message.content
    except (AttributeError, IndexError, TypeError) as error:
        raise MalformedReply(f"reply has no message content ({error})") from error
    finish_reason = getattr(choice, "finish_reason", None)
    if not isinstance(content, str):
        raise MalformedReply("reply content is not text")
    usage = getattr(response, "usage", None)
    hidden = getattr(response, "_hidden_params", None) or {}
    cost = hidden.get("response_cost")
    return CompletionReply(
        ok=True,
        content=content,
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        cost_usd=float(cost) if cost is not None else None,
        finish_reason=str(finish_reason) if finish_reason else None,
    )


async def complete_once(litellm, request: dict) -> CompletionReply:
    """One completion attempt, never raising: failures come back classified."""
    try:
        return read_reply(await litellm.acompletion(**request))
    except Exception as error:  # noqa: BLE001 - classified for the session's retry policy
        retry, reason, retry_after = classify_failure(error)
        return CompletionReply(ok=False, retry=retry, reason=reason, retry_after=retry_after,
                               message=str(error)[:500])
