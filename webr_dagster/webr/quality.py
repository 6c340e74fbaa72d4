"""Page-level keep/reject decisions on cleaned text, and the exact-dedup hash.

Pure functions, no Dagster. :func:`assess` returns ``None`` to keep a page or a
``(reason, detail)`` pair: ``reason`` is one of :data:`REASONS` (stored in the
rejections table and counted), ``detail`` says why in words, with the numbers.

The ``low_quality`` rules are simple and cheap, after the Gopher rules (Rae et
al. 2021, "Scaling Language Models", appendix A): symbol-to-word ratio, mean word
length, English stop words, duplicated lines and bullet lines. Thresholds are the
module constants below.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter

REASONS = ("too_short", "too_long", "language", "low_quality")

# --------------------------------------------------------------------------- thresholds

MAX_SYMBOL_WORD_RATIO = 0.1  # ("#" + ellipses) per word
MIN_MEAN_WORD_LENGTH = 3.0  # characters, over words of space-separated scripts
MAX_MEAN_WORD_LENGTH = 10.0
MIN_ENGLISH_STOP_WORDS = 2  # distinct words of ENGLISH_STOP_WORDS an English page must use
ENGLISH_STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
MAX_DUPLICATE_LINE_SHARE = 0.3  # lines repeating an earlier line / lines
MAX_BULLET_LINE_SHARE = 0.9  # lines starting with a bullet / lines
# The stop-word language guess needs this many words to say anything.
LANGUAGE_GUESS_MIN_WORDS = 20
# ... and the winning language's stop words must be this share of the words,
# and this many times the runner-up's share.
LANGUAGE_GUESS_MIN_SHARE = 0.08
LANGUAGE_GUESS_MIN_LEAD = 1.5
# Text in these scripts (share of letters) is not judged on word length:
# CJK and Thai-like scripts do not put spaces between words.
_UNSPACED_SHARE = 0.3

# --------------------------------------------------------------------------- words

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD_TOKEN = re.compile(f"[{_CJK}]|[^\\s{_CJK}]+")
_UNSPACED = re.compile(f"[{_CJK}\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff]")  # + Thai, Lao, Myanmar, Khmer
_LETTERS = re.compile(r"[^\W\d_]")
_ALPHA_WORD = re.compile(r"[^\W\d_]+")


def count_words(text: str) -> int:
    """Whitespace-separated words; each Chinese or Japanese character counts as one."""
    return len(_WORD_TOKEN.findall(text or ""))


# --------------------------------------------------------------------------- language

_STOP_WORDS = {
    "en": {"the", "and", "of", "to", "in", "is", "that", "for", "it", "with", "as", "was", "on", "are", "this"},
    "de": {"der", "die", "und", "das", "ist", "nicht", "mit", "den", "von", "zu", "sich", "auf", "ein", "eine"},
    "fr": {"le", "la", "les", "et", "des", "est", "une", "dans", "que", "pour", "pas", "sur", "du", "qui"},
    "es": {"el", "la", "los", "las", "y", "que", "en", "del", "por", "una", "con", "para", "es", "se"},
    "it": {"il", "di", "che", "e", "la", "per", "non", "una", "sono", "del", "della", "con", "gli", "è"},
    "pt": {"o", "de", "que", "e", "do", "da", "em", "um", "para", "não", "uma", "os", "com", "se"},
    "nl": {"de", "het", "een", "en", "van", "is", "niet", "dat", "op", "te", "zijn", "voor", "met", "die"},
    "sv": {"och", "att", "det", "som", "en", "är", "av", "för", "med", "på", "den", "till", "har", "inte"},
    "pl": {"się", "nie", "na", "jest", "że", "w", "z", "i", "do", "jak", "ale", "o", "co", "po"},
    "id": {"yang", "dan", "di", "ini", "itu", "dengan", "untuk", "tidak", "dari", "dalam", "akan", "pada", "juga"},
    "tr": {"ve", "bir", "bu", "için", "ile", "çok", "olarak", "daha", "gibi", "ama", "kadar", "olan", "sonra"},
}
# Non-Latin scripts, each as the most common language written in it: enough to
# tell a page is not in a wanted Latin-script language.
_SCRIPTS = (
    ("ja", re.compile(r"[\u3040-\u30ff]")),  # kana before Han: Japanese also uses Han
    ("ko", re.compile(r"[\uac00-\ud7af\u1100-\u11ff]")),
    ("zh", re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]")),
    ("ru", re.compile(r"[\u0400-\u04ff]")),
    ("el", re.compile(r"[\u0370-\u03ff]")),
    ("ar", re.compile(r"[\u0600-\u06ff]")),
    ("he", re.compile(r"[\u0590-\u05ff]")),
    ("hi", re.compile(r"[\u0900-\u097f]")),
    ("th", re.compile(r"[\u0e00-\u0e7f]")),
)
_NON_LATIN = re.compile(r"[\u0370-\u03ff\u0400-\u04ff\u0590-\u06ff\u0900-\u097f\u0e00-\u0e7f"
                        r"\u1100-\u11ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
_SCRIPT_MIN_SHARE = 0.3  # of the letters
_SAMPLE_CHARS = 20_000  # for the quality checks
_LANGUAGE_SAMPLE_CHARS = 6_000  # plenty for stop words


def guess_text_language(text: str) -> str | None:
    """A cheap ISO 639-1 guess from the text alone, or None when undecidable.

    A non-Latin script that makes up a good share of the letters gives its most
    common language (kana -> ja, Cyrillic -> ru, ...). Otherwise stop words of a
    few European languages (and Indonesian, Turkish) are counted; the clear
    winner is returned if its stop words are frequent enough.
    """
    sample = (text or "")[:_LANGUAGE_SAMPLE_CHARS]
    words = _ALPHA_WORD.findall(sample)
    letters = sum(map(len, words))
    if not letters:
        return None
    if len(_NON_LATIN.findall(sample)) >= _SCRIPT_MIN_SHARE * letters:
        for code, script in _SCRIPTS:
            if len(script.findall(sample)) >= _SCRIPT_MIN_SHARE * letters:
                return code
    words = [w.lower() for w in words]
    if len(words) < LANGUAGE_GUESS_MIN_WORDS:
        return None
    counts = Counter(words)
    shares = sorted(
        ((sum(counts[w] for w in stop) / len(words), code) for code, stop in _STOP_WORDS.items()), reverse=True
    )
    (best, code), (second, _) = shares[0], shares[1]
    if best >= LANGUAGE_GUESS_MIN_SHARE and best >= LANGUAGE_GUESS_MIN_LEAD * second:
        return code
    return None


def _primary(code: str | None) -> str | None:
    """"en-US", "EN", "en_gb" -> "en"; junk -> None."""
    if not code or not isinstance(code, str):
        return None
    head = re.split(r"[-_]", code.strip().lower(), maxsplit=1)[0]
    return head if head.isalpha() and 2 <= len(head) <= 3 else None


# --------------------------------------------------------------------------- checks

_BULLET = re.compile(r"^\s*[-*+\u2022\u00b7\u2023\u2043\u25aa\u25cf\u25e6\u2013\u2014\u25ba\u27a2\u2192]\s")
_ELLIPSIS = re.compile(r"\.\.\.|\u2026")


def _low_quality(text: str, language: str | None) -> tuple[str, str] | None:
    words = text.split()
    n = len(words)
    if not n:
        return "low_quality", "no words"

    symbols = text.count("#") + len(_ELLIPSIS.findall(text))
    if symbols / n > MAX_SYMBOL_WORD_RATIO:
        return "low_quality", f"symbol-to-word ratio {symbols / n:.2f} > {MAX_SYMBOL_WORD_RATIO} ({symbols} '#' or ellipses)"

    letters = len(_LETTERS.findall(text[:_SAMPLE_CHARS]))
    unspaced = len(_UNSPACED.findall(text[:_SAMPLE_CHARS]))
    if letters and unspaced < _UNSPACED_SHARE * letters:
        mean = sum(len(w) for w in words) / n
        if not MIN_MEAN_WORD_LENGTH <= mean <= MAX_MEAN_WORD_LENGTH:
            return "low_quality", (f"mean word length {mean:.1f} outside "
                                   f"{MIN_MEAN_WORD_LENGTH:g}..{MAX_MEAN_WORD_LENGTH:g}")

    if language == "en":
        used = ENGLISH_STOP_WORDS & {w.lower() for w in _ALPHA_WORD.findall(text)}
        if len(used) < MIN_ENGLISH_STOP_WORDS:
            return "low_quality", (f"{len(used)} distinct English stop words ({', '.join(sorted(used)) or 'none'}) "
                                   f"< {MIN_ENGLISH_STOP_WORDS}")

    lines = [line.strip() for line in text.split("\n") if line.strip()]
    if lines:
        repeats = len(lines) - len(set(lines))
        if repeats / len(lines) > MAX_DUPLICATE_LINE_SHARE:
            return "low_quality", (f"{repeats} of {len(lines)} lines repeat an earlier line "
                                   f"({repeats / len(lines):.2f} > {MAX_DUPLICATE_LINE_SHARE})")
        bullets = sum(bool(_BULLET.match(line)) for line in lines)
        if bullets / len(lines) > MAX_BULLET_LINE_SHARE:
            return "low_quality", (f"{bullets} of {len(lines)} lines start with a bullet "
                                   f"({bullets / len(lines):.2f} > {MAX_BULLET_LINE_SHARE})")
    return None


def assess(
    text: str,
    language: str | None,
    *,
    languages: tuple[str, ...] | list[str] | None = ("en",),
    min_words: int = 20,
    max_words: int = 100_000,
) -> tuple[str, str] | None:
    """``None`` to keep the page, else ``(reason, detail)``.

    Checks in order: ``too_short`` and ``too_long`` (:func:`count_words`);
    ``language``: the page's language (``language``, e.g. from ``<html lang>``,
    else a stop-word guess from the text) is not in ``languages`` (``None`` or
    empty turns the check off; a page whose language cannot be told is kept);
    ``low_quality``: see the module constants.
    """
    text = text or ""
    words = count_words(text)
    if words < min_words:
        return "too_short", f"{words} words < {min_words}"
    if words > max_words:
        return "too_long", f"{words} words > {max_words}"

    declared = _primary(language)
    detected = declared or (guess_text_language(text) if words >= LANGUAGE_GUESS_MIN_WORDS else None)
    if languages:
        wanted = {_primary(code) for code in languages} - {None}
        if detected and wanted and detected not in wanted:
            how = "page language" if declared else "guessed from stop words"
            return "language", f"{how} {detected}, wanted {', '.join(sorted(wanted))}"

    return _low_quality(text, detected)


# --------------------------------------------------------------------------- exact dedup

_PUNCTUATION = re.compile(r"[^\w\s]|_")


def normalized_text_hash(text: str) -> str:
    """SHA-256 (hex) of the text lower-cased, NFKC-normalised, with punctuation removed
    and whitespace collapsed: pages that differ only in case, spacing or punctuation
    get the same hash."""
    norm = unicodedata.normalize("NFKC", text or "").lower()
    norm = " ".join(_PUNCTUATION.sub("", norm).split())
    return hashlib.sha256(norm.encode("utf-8")).hexdigest()
