"""HTML -> main text and metadata (trafilatura), and plain text passed through.

Paragraphs in the output are separated by a blank line ("\\n\\n") because the
later section sampling splits a page on blank lines. Lines inside one block (list
items, table rows, ``<br>`` breaks) are separated by a single newline.

How a page is extracted (measured on the 121 aeb-dev pages, see
``bench/extract_quality.py``; mean word F1 after each step in brackets, bare
trafilatura defaults score 0.953):

1. The page is parsed once. Title, author and date (of pages with text) come
   from trafilatura's and htmldate's metadata extractors (htmldate in its fast
   mode).
2. trafilatura in precision mode without its fallback extractors, comments off
   (0.953). Precision mode leaves out most related-article lists, newsletter
   boxes and captions that the other modes keep, but sometimes keeps almost
   nothing.
3. A second, independent extractor (resiliparse's main-content plain text, a
   C++ HTML5 parser: about 3 ms a page) says how much text the page holds. When
   the precision result has less than :data:`SHORT_SHARE` of its words (and at
   least :data:`RETRY_MIN_GAIN` fewer), trafilatura is asked again, with its
   fallback extractors, then in recall mode; the longer answer wins (0.974).
4. An article split in two by an ad or a newsletter box often comes out cut
   after its first part. When the reference text goes on, after the last
   paragraph kept, with at least :data:`CONTINUATION_MIN_PARAGRAPHS` prose
   paragraphs, they are appended (0.977).
5. Lines that are page furniture by their form alone ("Advertisement", "Share
   this article", "12 comments", a short copyright notice, a shortcode...) are
   dropped (0.979). Lone URLs stay: on link-list pages they are the content.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version

import trafilatura
from htmldate import find_date
from lxml.etree import XPath
from trafilatura.metadata import examine_meta, extract_author, extract_meta_json, extract_title
from trafilatura.utils import load_html

from .quality import UNKNOWN_LANGUAGE, LanguageGuess, count_words, identify_language

try:  # optional at import time: without it, steps 3 and 4 use trafilatura alone
    from resiliparse.extract.html2text import extract_plain_text as _resiliparse_text
except ImportError:  # pragma: no cover - resiliparse is a declared dependency
    _resiliparse_text = None


def _trafilatura_version() -> str:
    try:
        return version("trafilatura")
    except PackageNotFoundError:  # pragma: no cover - installed without metadata
        return getattr(trafilatura, "__version__", "unknown")


# Bump the "+webrN" part whenever the settings or the text layout below change,
# so stored extractions made with other settings can be told apart.
EXTRACTOR_VERSION = f"trafilatura-{_trafilatura_version()}+webr2"

# Mean word F1 on aeb-dev of single settings (trafilatura 2.3.1): defaults 0.953,
# favor_recall 0.956 (0.964 without comments), favor_precision 0.968 without
# comments but 0.06 on a page it cuts short; this module 0.979.
_COMMON = dict(
    include_comments=False,
    include_tables=True,  # tables are content on many pages
    include_images=False,
    include_links=False,
    include_formatting=False,
    deduplicate=False,
)
# The first try is always run; the retries only on a short result, in order.
_PRIMARY = dict(favor_precision=True, fast=True, **_COMMON)
_RETRIES = (
    dict(favor_precision=True, fast=False, **_COMMON),  # with trafilatura's fallback extractors
    dict(favor_recall=True, fast=True, **_COMMON),  # (its fallbacks changed nothing here)
)

# The precision result is "short" below this share of the reference's words,
# and worth a retry if the reference also has this many words more (a retry can
# only find what the reference has beyond it), or when it is empty.
SHORT_SHARE = 0.5
RETRY_MIN_GAIN = 100
# Without a reference extractor: retry when the first result has fewer words.
SHORT_WITHOUT_REFERENCE = 50
# Continuation: at least this many prose paragraphs of at least this many words,
# with at most this many other lines between two of them.
CONTINUATION_MIN_PARAGRAPHS = 3
CONTINUATION_MIN_WORDS = 20
CONTINUATION_MAX_GAP = 2
# Reference texts longer than this (a book-sized page) are not used.
REFERENCE_MAX_CHARS = 1_000_000


@dataclass(frozen=True)
class Extracted:
    text: str
    title: str | None
    author: str | None
    date: str | None
    words: int
    identified: LanguageGuess = UNKNOWN_LANGUAGE  # the text's language (quality.identify_language)
    declared_language: str | None = None  # the page's <html lang>: stored, never the verdict

    @property
    def language(self) -> str | None:
        """The identified language code; None when unknown."""
        return self.identified.code

    @property
    def language_score(self) -> float | None:
        """The identifier's probability for its best label."""
        return self.identified.score


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


def declared_language(html: str | None) -> str | None:
    """The page's ``<html lang>`` (primary subtag, lower-case), if any."""
    match = _HTML_LANG.search(html[:4096]) if html else None
    return match.group(1).lower() if match else None


def guess_language(text: str, html: str | None = None) -> str | None:
    """One label for display: the language identified from the text, else the page's
    ``<html lang>``. The text goes first: templates often keep a site-wide ``lang`` on
    pages written in another language. The language filter uses the identified
    language alone (:attr:`Extracted.identified`).
    """
    return identify_language(text).code or declared_language(html)


# --------------------------------------------------------------------------- reference text

_TOKEN = re.compile(r"\w+")


def _bag(text: str) -> Counter:
    return Counter(_TOKEN.findall(text.lower()))


def _size(blocks: list[str]) -> int:
    return sum(len(_TOKEN.findall(block)) for block in blocks)


def _reference_text(html: str) -> str | None:
    """Main-content text of a second extractor, one block per line; None if unavailable."""
    if _resiliparse_text is None:
        return None
    try:
        text = _resiliparse_text(
            html, preserve_formatting=True, main_content=True, list_bullets=False,
            alt_texts=False, comments=False, post_meta=False,
        )
    except Exception:  # a parser error must not lose the page: trafilatura alone then
        return None
    if len(text) > REFERENCE_MAX_CHARS:
        return None  # a giant page: comparing with it would cost more than it can help
    return text


def _lines(text: str) -> list[str]:
    return [line for line in (_tidy_lines(raw) for raw in text.split("\n")) if line]


_SENTENCE_END = re.compile(r"[.!?\u2026\u3002][\"'\u201d\u2019)\]]*$")


def _is_prose(line: str) -> bool:
    return len(_TOKEN.findall(line)) >= CONTINUATION_MIN_WORDS and bool(_SENTENCE_END.search(line))


def _contained(line_bag: Counter, bag: Counter, share: float = 0.9) -> bool:
    total = sum(line_bag.values())
    return total > 0 and sum((line_bag & bag).values()) >= share * total


def _continuation(blocks: list[str], reference: list[str]) -> list[str]:
    """Prose paragraphs that follow, in the reference, the last paragraph we kept.

    Empty unless there are at least :data:`CONTINUATION_MIN_PARAGRAPHS` of them
    in a row (with at most :data:`CONTINUATION_MAX_GAP` other lines between two):
    one stray paragraph is more often an author bio or a teaser than article.
    """
    kept = _bag("\n".join(blocks))
    bags = [_bag(line) for line in reference]
    last = -1
    for index, line_bag in enumerate(bags):
        if sum(line_bag.values()) >= 5 and _contained(line_bag, kept):
            last = index
    if last < 0:
        return []
    found, gap = [], 0
    for line, line_bag in zip(reference[last + 1:], bags[last + 1:]):
        if _contained(line_bag, kept):
            continue
        if _is_prose(line):
            found.append(line)
            gap = 0
            continue
        gap += 1
        if gap > CONTINUATION_MAX_GAP:
            break
    return found if len(found) >= CONTINUATION_MIN_PARAGRAPHS else []


# --------------------------------------------------------------------------- page furniture

# Whole lines (case-insensitive, list bullet removed) that are navigation, sharing,
# subscription or ad labels. Only short, fixed phrases: a sentence that merely
# mentions "comments" or "newsletter" is never dropped.
_FURNITURE = re.compile(
    r"""^(?:
        advertisements?|advertising|ad|sponsored(?:\s+content)?|paid\s+content
      | (?:\d+\s+|no\s+|view\s+|show\s+|load\s+more\s+|leave\s+an?\s+|add\s+an?\s+|post\s+an?\s+)?comments?
      | leave\s+a\s+reply|tell\s+us\s+what\s+you\s+think|join\s+the\s+(?:conversation|discussion)
      | tags?|topics|categories|filed\s+under|keywords
      | related(?:\s+(?:posts?|articles?|stories|content|links|topics|coverage|videos?))?|see\s+also|more
      | (?:you\s+(?:may|might)\s+(?:also\s+)?like|recommended(?:\s+for\s+you)?|most\s+(?:read|popular|viewed)
         |trending(?:\s+now)?|don'?t\s+miss|read\s+(?:more|next|also)|continue\s+reading|up\s+next)
      | share(?:\s+(?:this|the)\s+(?:article|story|post|page))?(?:\s+on\s+\w+)?|tweet|pin\s+it|e-?mail|whatsapp
      | print(?:\s+(?:this\s+)?(?:article|page|story))?|order\s+reprints|reprints?|text\s+size|font\s+size
      | (?:sign\s+up|subscribe)(?:\s+(?:now|today|here))?|newsletters?|log\s*in|sign\s+in|register
      | back\s+to\s+top|skip\s+to\s+(?:main\s+)?content|scroll\s+to\s+top|close|menu|search
      | click\s+here(?:\s+for\s+more(?:\s+information)?)?
      | an\s+error\s+(?:has\s+)?occurred(?:,?\s+please\s+try\s+again(?:\s+later)?)?
      | \d+\s*(?:min|minute)s?\s+read|reading\s+time:?\s*\d+\s*(?:min|minute)s?
    )[\s.:!|>»…-]*$""",
    re.I | re.X,
)
_COPYRIGHT = re.compile(r"^(?:©|\(c\)|copyright\b|all\s+rights\s+reserved)", re.I)
_COPYRIGHT_MAX_WORDS = 25
# WordPress-style shortcodes left as text: [button link="..."] ... [/button]
# (an opening tag needs an attribute, so editorial brackets like "[We]" stay).
_SHORTCODE = re.compile(r"\[[a-z_][\w-]*(?:\s+[\w-]+\s*=\s*[^\]]*)+\]|\[/[a-z_][\w-]*\]", re.I)
_LIST_MARK = re.compile(r"^(?:[-*\u2022\u00b7]\s+)")
_TAG_LIST = re.compile(r"^[^.!?]{1,300}(?:,[^.!?,]{1,60}){2,}$")  # "a, b, c" without a sentence end


_TAGS_HEADING = re.compile(r"^(?:tags?|topics|keywords|filed\s+under)\W*$", re.I)


def _is_furniture(line: str) -> bool:
    bare = _LIST_MARK.sub("", line.strip())
    if not bare:
        return False
    if _FURNITURE.match(bare):
        return True
    return bool(_COPYRIGHT.match(bare)) and len(_TOKEN.findall(bare)) <= _COPYRIGHT_MAX_WORDS


def _drop_furniture(blocks: list[str]) -> list[str]:
    """The blocks without furniture lines (and shortcodes); indented lines (code,
    continued list items) are left as they are."""
    kept: list[str] = []
    after_tags = False
    for block in blocks:
        lines = []
        for line in block.split("\n"):
            if line[:1].isspace():
                lines.append(line)
                continue
            if "[" in line:
                bare = _SHORTCODE.sub("", line)
                if bare != line:
                    line = bare.strip()
                    if not line:
                        continue
            if after_tags and _TAG_LIST.match(line.strip()):
                after_tags = False
                continue  # the list of tags under a "Tags" heading
            after_tags = False
            if _is_furniture(line):
                after_tags = bool(_TAGS_HEADING.match(line.strip()))
                continue
            lines.append(line)
        text = "\n".join(lines).strip()
        if text:
            kept.append(text)
    return kept


# --------------------------------------------------------------------------- public API


def _clean_meta(value) -> str | None:
    if not isinstance(value, str):
        return None
    value = " ".join(value.split())
    return value or None


def _word_count(text: str) -> int:
    # Chinese and Japanese are written without spaces: each character counts as a
    # word there, so a length filter does not see a long Japanese page as a stub.
    return count_words(text)


def _trafilatura(tree, url: str | None, options: dict) -> list[str]:
    """Blocks of one trafilatura run on a parsed page (trafilatura works on a copy)."""
    try:
        document = trafilatura.bare_extraction(tree, url=url, with_metadata=False, **options)
    except Exception:  # lxml/trafilatura errors on broken markup: no text, not a crash
        return []
    if document is None or document.body is None:
        return []
    return _blocks(document.body)


# trafilatura's author search looks for elements whose class, id, rel, itemprop,
# data-component or data-testid name an author or byline (or an <author> element),
# after a deep copy and a pruning of the tree: about 8 ms a page. When none of these
# attributes anywhere in the page holds any of its words, it cannot find anything:
# this check (under 1 ms, case-insensitive, so a superset of what it matches) spares
# the search on about a third of the pages, with the same results.
_AUTHOR_ATTRIBUTES = XPath("//@class|//@id|//@rel|//@itemprop|//@data-component|//@data-testid",
                           smart_strings=False)
_AUTHOR_ELEMENT = XPath("//author[1]")
_AUTHOR_WORDS = re.compile(
    r"author|byl|bbl|writer|screenname|username|zuozhe|bianji|xiaobian|channel-name|submitted-by"
    r"|posted-by|journalist"
)


def _may_name_an_author(tree) -> bool:
    if _AUTHOR_ELEMENT(tree):
        return True
    return bool(_AUTHOR_WORDS.search(" ".join(_AUTHOR_ATTRIBUTES(tree)).lower()))


def _metadata(tree, url: str | None) -> tuple[str | None, str | None, str | None]:
    """Title, author and publication date, by trafilatura's and htmldate's extractors.

    Only the three fields the pipeline keeps, as trafilatura's metadata pass
    finds them (meta tags, then JSON-LD, then the page), without the categories,
    tags, licence and site name that it also looks for and that cost about as
    much again.
    """
    title = author = date = None
    try:
        meta = examine_meta(tree)  # <meta> tags
        if meta.author and " " not in meta.author:
            meta.author = None  # a lone word in <meta name=author> is mostly a handle
        try:
            meta = extract_meta_json(tree, meta)  # JSON-LD overrides
        except Exception:
            pass
        title = meta.title or extract_title(tree)
        author = meta.author or (extract_author(tree) if _may_name_an_author(tree) else None)
        # htmldate's fast mode: markup, URL and common date patterns. The
        # extensive mode hands odd strings to dateparser, whose first such call
        # in a process compiles patterns for 200 locales (2-6 s, in every worker
        # of a pool), to find dates mostly on pages that have none.
        date = find_date(tree, url=meta.url or url, original_date=True, extensive_search=False,
                         max_date=_today())
    except Exception:  # metadata is a bonus: never lose the text over it
        pass
    return title, author, date


def _today() -> str:
    return datetime.now().astimezone().strftime("%Y-%m-%d")


def extract_main_text(html: str, url: str | None = None) -> Extracted | None:
    """Main text and metadata of an HTML page, or None when nothing is found.

    Never raises: bad or hostile HTML gives None.
    """
    if not isinstance(html, str) or not html.strip():
        return None
    try:
        tree = load_html(html)
        if tree is None:
            return None
        blocks = _trafilatura(tree, url, _PRIMARY)  # trafilatura works on a copy of the tree
        reference = _reference_text(html)
        if reference is None:
            short = _size(blocks) < SHORT_WITHOUT_REFERENCE
        else:
            reference_size = len(_TOKEN.findall(reference))
            size = _size(blocks)
            short = size < SHORT_SHARE * reference_size and (
                not size or reference_size - size >= RETRY_MIN_GAIN)
        for options in _RETRIES if short else ():
            retry = _trafilatura(tree, url, options)
            if _size(retry) > _size(blocks):
                blocks = retry
            if reference is not None and _size(blocks) >= SHORT_SHARE * reference_size:
                break
        # A cut-short article is shorter than the reference by at least the
        # continuation it misses (a cheap test that spares most pages the search).
        missing = CONTINUATION_MIN_PARAGRAPHS * CONTINUATION_MIN_WORDS
        if blocks and reference and reference_size - _size(blocks) >= missing:
            blocks = blocks + _continuation(blocks, _lines(reference))
        blocks = _drop_furniture(blocks)
        text = "\n\n".join(blocks)
        if not text.strip():
            return None
        title, author, date = _metadata(tree, url)
    except Exception:  # anything unexpected on hostile input: no text, not a crash
        return None
    return Extracted(
        text=text,
        title=_clean_meta(title),
        author=_clean_meta(author),
        date=_clean_meta(date),
        words=_word_count(text),
        identified=identify_language(text),
        declared_language=declared_language(html),
    )


def normalize_text(text: str) -> str:
    """Light whitespace clean-up that keeps blank-line paragraph breaks."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _MANY_BREAKS.sub("\n\n", "\n".join(lines)).strip()


def text_record(text: str) -> Extracted:
    """Plain text (WET, JSONL, WebR's JSON) passed through as an :class:`Extracted`."""
    text = normalize_text(text or "")
    return Extracted(text=text, title=None, author=None, date=None, words=_word_count(text),
                     identified=identify_language(text))
