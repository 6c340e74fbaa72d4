"""HTML -> main text and metadata (trafilatura), and plain text passed through.

Paragraphs in the output are separated by a blank line ("\\n\\n") because the
later section sampling splits a page on blank lines. Lines inside one block (list
items, table rows, ``<br>`` breaks) are separated by a single newline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

import trafilatura


def _trafilatura_version() -> str:
    try:
        return version("trafilatura")
    except PackageNotFoundError:  # pragma: no cover - installed without metadata
        return getattr(trafilatura, "__version__", "unknown")


# Bump the "+webrN" part whenever the settings or the text layout below change,
# so stored extractions made with other settings can be told apart.
EXTRACTOR_VERSION = f"trafilatura-{_trafilatura_version()}+webr1"

# Settings measured on the 121 aeb-dev benchmark pages (mean word-level F1 against
# the hand-made article bodies, trafilatura 2.3.1, comments off):
#   default 0.961 (worst page 0.44), favor_recall 0.964 (worst 0.62),
#   favor_precision 0.968 (but one page at 0.06), tables off 0.957.
# favor_recall: as good on average, no page lost, and the fastest of the three.
# Tables stay in: they are content on many pages and scored better than off.
_OPTIONS = dict(
    favor_recall=True,
    include_comments=False,
    include_tables=True,
    include_images=False,
    include_links=False,
    include_formatting=False,
    with_metadata=True,
    deduplicate=False,
)


@dataclass(frozen=True)
class Extracted:
    text: str
    title: str | None
    author: str | None
    date: str | None
    language: str | None
    words: int


# --------------------------------------------------------------------------- text layout

_SPACES = re.compile(r"[ \t\f\v\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_WHITESPACE = re.compile(r"\s+")
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"  # zero-width characters left alone on a line
_MANY_BREAKS = re.compile(r"\n{3,}")


def _tidy_lines(text: str) -> str:
    """Collapse spaces inside lines; a run of empty lines (``<br><br>``, which
    many pages use between paragraphs) becomes one paragraph break."""
    lines = [_SPACES.sub(" ", line).strip().strip(_INVISIBLE).strip() for line in text.split("\n")]
    return _MANY_BREAKS.sub("\n\n", "\n".join(lines)).strip()


def _inline(element, keep_newlines: bool = False) -> str:
    """Text of an element. Only trafilatura's <lb/> breaks become newlines; other
    whitespace in the markup is just a space (except inside code)."""

    def flat(text: str | None) -> str:
        if not text:
            return ""
        return text if keep_newlines else _WHITESPACE.sub(" ", text)

    parts = [flat(element.text)]
    for child in element:
        tag = child.tag if isinstance(child.tag, str) else ""
        if tag == "lb":
            parts.append("\n")
        elif tag == "list":
            parts.append("\n" + _list_text(child) + "\n")
        elif tag == "table":
            parts.append("\n" + _table_text(child) + "\n")
        else:
            parts.append(_inline(child, keep_newlines or tag == "code"))
        parts.append(flat(child.tail))
    return "".join(parts)


def _list_text(element) -> str:
    items = []
    for item in element:
        if item.tag == "item":
            text = _tidy_lines(_inline(item)).replace("\n\n", "\n")
            if text:
                items.append("- " + text.replace("\n", "\n  "))
        elif item.tag == "head":
            text = _tidy_lines(_inline(item))
            if text:
                items.append(text)
    return "\n".join(items)


def _table_text(element) -> str:
    rows = []
    for row in element.iter("row"):
        cells = [" ".join(_tidy_lines(_inline(cell)).split()) for cell in row if cell.tag == "cell"]
        cells = [c for c in cells if c]
        if cells:
            rows.append(" | ".join(cells))
    return "\n".join(rows)


def _blocks(body) -> list[str]:
    """Top-level blocks of trafilatura's output tree, each as tidy text."""
    blocks = []
    for element in body:
        tag = element.tag if isinstance(element.tag, str) else ""
        if tag == "list":
            text = _list_text(element)
        elif tag == "table":
            text = _table_text(element)
        elif tag == "code":  # keep indentation: it is part of the content
            text = "\n".join(line.rstrip() for line in _inline(element, True).strip("\n").split("\n"))
        elif tag in ("div", "section") and len(element):
            blocks.extend(_blocks(element))  # a wrapper: its children are the blocks
            continue
        else:
            text = _tidy_lines(_inline(element))
        if text.strip():
            blocks.append(text.strip())
        if element.tail and element.tail.strip():
            blocks.append(_tidy_lines(element.tail))
    return blocks


# --------------------------------------------------------------------------- language

_HTML_LANG = re.compile(r"<html\b[^>]*?\blang\s*=\s*[\"']?\s*([A-Za-z]{2,3})\b", re.I)
_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af]")
_HAN = re.compile(r"[\u4e00-\u9fff]")
_WORD = re.compile(r"[^\W\d_]+")
_STOPWORDS = {
    "en": {"the", "and", "of", "to", "in", "is", "that", "for", "it", "with", "as", "was", "on", "are", "this"},
    "de": {"der", "die", "und", "das", "ist", "nicht", "mit", "den", "von", "zu", "sich", "auf", "ein", "eine"},
    "fr": {"le", "la", "les", "et", "des", "est", "une", "dans", "que", "pour", "pas", "sur", "du", "qui"},
    "es": {"el", "la", "los", "las", "y", "que", "en", "del", "por", "una", "con", "para", "es", "se"},
    "it": {"il", "di", "che", "e", "la", "per", "non", "una", "sono", "del", "della", "con", "gli", "è"},
    "pt": {"o", "de", "que", "e", "do", "da", "em", "um", "para", "não", "uma", "os", "com", "se"},
    "nl": {"de", "het", "een", "en", "van", "is", "niet", "dat", "op", "te", "zijn", "voor", "met", "die"},
}
_MIN_STOPWORD_SHARE = 0.08


def guess_language(text: str, html: str | None = None) -> str | None:
    """A cheap language code: the page's ``<html lang>``, else script and stop words."""
    if html:
        match = _HTML_LANG.search(html[:4096])
        if match:
            return match.group(1).lower()
    sample = text[:5000]
    if not sample.strip():
        return None
    if len(_KANA.findall(sample)) > 20:
        return "ja"
    if len(_HANGUL.findall(sample)) > 20:
        return "ko"
    if len(_HAN.findall(sample)) > 50:
        return "zh"
    words = [w.lower() for w in _WORD.findall(sample)]
    if len(words) < 20:
        return None
    shares = {lang: sum(w in stop for w in words) / len(words) for lang, stop in _STOPWORDS.items()}
    lang, share = max(shares.items(), key=lambda kv: kv[1])
    return lang if share >= _MIN_STOPWORD_SHARE else None


# --------------------------------------------------------------------------- public API


def _clean_meta(value) -> str | None:
    if not isinstance(value, str):
        return None
    value = " ".join(value.split())
    return value or None


# Chinese and Japanese are written without spaces: count each character there as
# a word, so a length filter does not see a long Japanese page as a 50-word stub.
_CJK_CHAR = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD_TOKEN = re.compile(f"[{_CJK_CHAR}]|[^\\s{_CJK_CHAR}]+")


def _word_count(text: str) -> int:
    return len(_WORD_TOKEN.findall(text))


def extract_main_text(html: str, url: str | None = None) -> Extracted | None:
    """Main text and metadata of an HTML page, or None when nothing is found.

    Never raises: bad or hostile HTML gives None.
    """
    if not isinstance(html, str) or not html.strip():
        return None
    try:
        document = trafilatura.bare_extraction(html, url=url, **_OPTIONS)
        if document is None or document.body is None:
            return None
        text = "\n\n".join(_blocks(document.body))
    except Exception:  # lxml/trafilatura errors on broken markup: no text, not a crash
        return None
    if not text.strip():
        return None
    return Extracted(
        text=text,
        title=_clean_meta(document.title),
        author=_clean_meta(document.author),
        date=_clean_meta(document.date),
        language=_clean_meta(document.language) or guess_language(text, html),
        words=_word_count(text),
    )


def normalize_text(text: str) -> str:
    """Light whitespace clean-up that keeps blank-line paragraph breaks."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _MANY_BREAKS.sub("\n\n", "\n".join(lines)).strip()


def text_record(text: str) -> Extracted:
    """Plain text (WET, JSONL, WebR's JSON) passed through as an :class:`Extracted`."""
    text = normalize_text(text or "")
    return Extracted(text=text, title=None, author=None, date=None,
                     language=guess_language(text), words=_word_count(text))
