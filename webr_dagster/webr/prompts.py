"""Prompt templates for every LLM call of the method, rendered to chat messages.

The default texts live in ``templates.toml`` beside this module. A user file (the
``WEBR_TEMPLATES`` setting) replaces any of them; the rest keep their defaults. A
template's version is a hash of its text, recorded on every row it produced, and because
the rendered messages are part of the call key, a changed template re-asks only the calls
that used it.
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass, fields, replace
from importlib.resources import files
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from .sampling import ALL, PART, WI, WR

SYSTEM_MESSAGE = "You are a helpful assistant."

_REQUEST_FIELDS = frozenset({"text", "profile", "noun", "word_limit"})

# The fields each stage fills in. A template must use every one of them and no other:
# a request template without {profile} would lose the author's voice, one without
# {word_limit} the method's length draw.
PLACEHOLDERS: dict[str, frozenset[str]] = {
    "author_profile": frozenset({"text"}),
    "wi_request_all": _REQUEST_FIELDS,
    "wi_request_part": _REQUEST_FIELDS,
    "wr_request_all": _REQUEST_FIELDS,
    "wr_request_part": _REQUEST_FIELDS,
    # the `no-profile` variant's requests: the same asks, no author profile
    "wi_request_all_no_profile": _REQUEST_FIELDS - {"profile"},
    "wi_request_part_no_profile": _REQUEST_FIELDS - {"profile"},
    "wr_request_all_no_profile": _REQUEST_FIELDS - {"profile"},
    "wr_request_part_no_profile": _REQUEST_FIELDS - {"profile"},
    "wi_response": frozenset({"text", "request"}),
    "wr_answer": frozenset({"request"}),
    "wr_refine": frozenset({"text", "request", "answer"}),
}


_REQUEST_NAMES = {(WI, ALL): "wi_request_all", (WI, PART): "wi_request_part",
                  (WR, ALL): "wr_request_all", (WR, PART): "wr_request_part"}


class TemplateError(ValueError):
    """A templates file that cannot be used, with the template and placeholder at fault."""


@dataclass(frozen=True)
class Template:
    name: str
    body: str

    @property
    def version(self) -> str:
        """The first 8 hex digits of the SHA-256 of the text: changes exactly when it does."""
        return hashlib.sha256(self.body.encode("utf-8")).hexdigest()[:8]

    @property
    def tag(self) -> str:
        return f"{self.name}@{self.version}"

    def messages(self, **fields: object) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": SYSTEM_MESSAGE},
            {"role": "user", "content": self.body.format(**fields)},
        ]


@dataclass(frozen=True)
class TemplateSet:
    """One template per LLM call of the method."""

    author_profile: Template
    wi_request_all: Template
    wi_request_part: Template
    wr_request_all: Template
    wr_request_part: Template
    wi_response: Template
    wr_answer: Template
    wr_refine: Template
    wi_request_all_no_profile: Template
    wi_request_part_no_profile: Template
    wr_request_all_no_profile: Template
    wr_request_part_no_profile: Template

    def request(self, role: str, scope: str, profile: bool = True) -> Template:
        """The request template of a page's role (WI / WR) and scope (all / part); with
        ``profile=False``, its version without the author profile."""
        name = _REQUEST_NAMES[(role, scope)]
        return getattr(self, name if profile else f"{name}_no_profile")

    def __iter__(self):
        return (getattr(self, f.name) for f in fields(self))


def _placeholders(name: str, body: str, origin: str) -> set[str]:
    try:
        return {field for _, field, _, _ in string.Formatter().parse(body) if field is not None}
    except ValueError as exc:  # a lone "{" or "}"
        raise TemplateError(f"{origin}: template {name!r} is malformed ({exc}); write a "
                            "literal brace as {{ or }}") from None


def _template(name: str, body: object, origin: str) -> Template:
    if name not in PLACEHOLDERS:
        raise TemplateError(f"{origin}: unknown template {name!r}; the templates are "
                            f"{', '.join(PLACEHOLDERS)}")
    if not isinstance(body, str) or not body.strip():
        raise TemplateError(f"{origin}: template {name!r} must be a non-empty string")
    used, needed = _placeholders(name, body, origin), PLACEHOLDERS[name]

    def braced(names):
        return " ".join(f"{{{n}}}" for n in sorted(names))

    for problem, names in (("uses unknown placeholder", used - needed),
                           ("lacks placeholder", needed - used)):
        if names:
            raise TemplateError(f"{origin}: template {name!r} {problem} {braced(names)}; "
                                f"it must use exactly {braced(needed)}")
    return Template(name, body)


def _read(text: str, origin: str) -> dict[str, Template]:
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"{origin}: not valid TOML ({exc})") from None
    return {name: _template(name, body, origin) for name, body in table.items()}


def _defaults() -> TemplateSet:
    origin = "webr_dagster/webr/templates.toml"
    templates = _read(files(__package__).joinpath("templates.toml").read_text("utf-8"), origin)
    missing = [name for name in PLACEHOLDERS if name not in templates]
    if missing:
        raise TemplateError(f"{origin}: missing templates {', '.join(missing)}")
    return TemplateSet(**templates)


DEFAULT_TEMPLATES = _defaults()


def load_templates(path: str | Path | None) -> TemplateSet:
    """The templates of a run: the defaults, with those named in the TOML file at ``path``
    replaced. The file may hold any subset of the template names; an unknown name, or a
    template that lacks or adds a placeholder, raises :class:`TemplateError`."""
    if path is None or str(path) == "":
        return DEFAULT_TEMPLATES
    try:
        text = Path(path).read_text("utf-8")
    except OSError as exc:
        raise TemplateError(f"templates file {path}: cannot be read ({exc})") from None
    return replace(DEFAULT_TEMPLATES, **_read(text, f"templates file {path}"))


# The defaults under the names the rest of the code and the tests import.
AUTHOR_PROFILE = DEFAULT_TEMPLATES.author_profile
WI_REQUEST_ALL = DEFAULT_TEMPLATES.wi_request_all
WI_REQUEST_PART = DEFAULT_TEMPLATES.wi_request_part
WR_REQUEST_ALL = DEFAULT_TEMPLATES.wr_request_all
WR_REQUEST_PART = DEFAULT_TEMPLATES.wr_request_part
WI_RESPONSE = DEFAULT_TEMPLATES.wi_response
WR_ANSWER = DEFAULT_TEMPLATES.wr_answer
WR_REFINE = DEFAULT_TEMPLATES.wr_refine

REQUEST_TEMPLATES = {key: DEFAULT_TEMPLATES.request(*key) for key in _REQUEST_NAMES}


def request_template(role: str, scope: str, templates: TemplateSet | None = None) -> Template:
    return (templates or DEFAULT_TEMPLATES).request(role, scope)


def wi_user_turn(request: str, sampled_text: str, text_first: bool) -> str:
    """The user turn of a WI example: request and text joined by a blank line."""
    parts = (sampled_text, request) if text_first else (request, sampled_text)
    return "\n\n".join(parts)


def user_turn(role: str, request: str, sampled_text: str, text_first: bool) -> str:
    return wi_user_turn(request, sampled_text, text_first) if role == WI else request
