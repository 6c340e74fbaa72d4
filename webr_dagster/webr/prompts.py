"""Versioned prompt templates for every LLM call of the method, rendered to chat messages.

Bump a template's version whenever its wording changes. The version is recorded on
every row it produced, and because the rendered messages are part of the call key,
a changed template re-asks only the calls that used it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .sampling import ALL, WI, WR

SYSTEM_MESSAGE = "You are a helpful assistant."


@dataclass(frozen=True)
class Template:
    name: str
    version: int
    body: str

    @property
    def tag(self) -> str:
        return f"{self.name}@v{self.version}"

    def messages(self, **fields: object) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": SYSTEM_MESSAGE},
            {"role": "user", "content": self.body.format(**fields)},
        ]


# Every template that shows the page starts with it, so a page's consecutive calls share a
# long common prefix that a local model's prompt cache can reuse.

AUTHOR_PROFILE = Template(
    "author_profile",
    1,
    "{text}\n\n[End of web page]\n\n"
    "Judging only from the web page above, who most likely wrote it? Describe the author in at "
    "most 30 words: their role or occupation, what they know well, and why and for whom they "
    "write. Reply with the description alone.",
)

WI_REQUEST_ALL = Template(
    "wi_request_all",
    1,
    "{text}\n\n[End of text]\n\n"
    "The text above was written by this author: {profile}\n\n"
    "Put yourself in the author's place. You want an AI assistant to turn the whole text above "
    "into something different. Write the {noun} you would give it. The {noun} must be grounded in "
    "what the text actually says and must set detailed, specific constraints: a target length "
    "(in words, sentences or paragraphs), a style or tone, a format and a structure. Write it in "
    "the author's own voice, in at most {word_limit} words. Do not use the word \"rewrite\" or the "
    "phrase \"new version\". Reply with the {noun} alone.",
)

WI_REQUEST_PART = Template(
    "wi_request_part",
    1,
    "{text}\n\n[End of text]\n\n"
    "The text above was written by this author: {profile}\n\n"
    "Put yourself in the author's place. You want an AI assistant to rework one particular piece "
    "of the information in the text above (not the text as a whole) into something different. "
    "Write the {noun} you would give it. The {noun} must be grounded in what that piece actually "
    "says and must set detailed, specific constraints: a target length (in words, sentences or "
    "paragraphs), a style or tone, a format and a structure. Write it in the author's own voice, "
    "in at most {word_limit} words. Do not use the word \"rewrite\" or the phrases \"new version\" "
    "or \"specific part\". Reply with the {noun} alone.",
)

WR_REQUEST_ALL = Template(
    "wr_request_all",
    1,
    "{text}\n\n[End of text]\n\n"
    "The text above was written by this author: {profile}\n\n"
    "Imagine the text above is the reply an AI assistant gave. What {noun} from a user like this "
    "author would the whole text answer best? Write that {noun}. Make it detailed and specific, "
    "and have it ask for the style, format and structure the text has. Use the author's own "
    "voice and at most {word_limit} words. Reply with the {noun} alone.",
)

WR_REQUEST_PART = Template(
    "wr_request_part",
    1,
    "{text}\n\n[End of text]\n\n"
    "The text above was written by this author: {profile}\n\n"
    "Imagine one particular piece of the information in the text above is the reply an AI "
    "assistant gave. What {noun} from a user like this author would that piece answer best? "
    "Write that {noun}, aimed at that piece only, not at the whole text. Make it detailed and "
    "specific, and have it ask for the style, format and structure that piece has. Use the "
    "author's own voice and at most {word_limit} words. Reply with the {noun} alone.",
)

# WI response: the page text followed by the request, nothing else.
WI_RESPONSE = Template("wi_response", 1, "{text}\n\n{request}")

# WR first answer: the request alone; the model has not seen the page.
WR_ANSWER = Template("wr_answer", 1, "{request}")

WR_REFINE = Template(
    "wr_refine",
    1,
    "{text}\n\n[End of provided information]\n\n"
    "Above is some provided information. Below are a request and a first answer to it.\n\n"
    "[Request]\n{request}\n[End of request]\n\n"
    "[Answer]\n{answer}\n[End of answer]\n\n"
    "Use the provided information to make the answer more helpful, complete and factually "
    "correct, while still answering the request as asked. Reply with the improved answer alone.",
)

REQUEST_TEMPLATES = {
    (WI, ALL): WI_REQUEST_ALL,
    (WI, "part"): WI_REQUEST_PART,
    (WR, ALL): WR_REQUEST_ALL,
    (WR, "part"): WR_REQUEST_PART,
}


def request_template(role: str, scope: str) -> Template:
    return REQUEST_TEMPLATES[(role, scope)]


def wi_user_turn(request: str, sampled_text: str, text_first: bool) -> str:
    """The user turn of a WI example: request and text joined by a blank line."""
    parts = (sampled_text, request) if text_first else (request, sampled_text)
    return "\n\n".join(parts)


def user_turn(role: str, request: str, sampled_text: str, text_first: bool) -> str:
    return wi_user_turn(request, sampled_text, text_first) if role == WI else request
