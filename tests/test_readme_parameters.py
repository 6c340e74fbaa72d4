"""README.md's "The method's parameters" table agrees with the code, row by row.

Every expected value below is read from the code (settings and resource defaults, module
constants, the environment wiring), never typed in here: changing a default without the
README, or the README without the code, fails a test naming the row.
"""

from __future__ import annotations

import inspect
import math
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from webr_dagster.resources import environment
from webr_dagster.resources.environment import LOCAL_MAX_INPUT_CHARS, LOCAL_MAX_TOKENS
from webr_dagster.resources.llm import (
    CUT_CHARS_PER_TOKEN,
    PROMPT_OVERHEAD_TOKENS,
    LLMResource,
)
from webr_dagster.resources.settings import WebRSettings
from webr_dagster.checks import GATES
from webr_dagster.webr import postprocess, quality, quality_gates, sampling
from webr_dagster.webr.decontaminate import DecontaminationRules
from webr_dagster.webr.prompts import AUTHOR_PROFILE, SYSTEM_MESSAGE

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "webr_dagster"
README = ROOT / "README.md"
SECTION = "## The method's parameters"
COLUMNS = ["parameter", "value", "where"]

_NUMBER = re.compile(r"(?<![\w.])\d+(?:,\d{3})*(?:\.\d+)?")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*%")


# ----------------------------------------------------------------------------- the table


def parameter_table(text: str) -> dict[str, tuple[str, str]]:
    """{parameter: (value, where)} of the table under SECTION."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == SECTION]
    assert len(starts) == 1, f"README.md must have exactly one {SECTION!r} section"
    table: list[str] = []
    for line in lines[starts[0] + 1:]:
        if line.startswith("## "):
            break
        if line.lstrip().startswith("|"):
            table.append(line.strip())
        elif table:  # the table has ended
            break
    assert len(table) >= 3, f"no table under {SECTION!r}"
    header, separator, *body = ([c.strip() for c in row.strip("|").split("|")] for row in table)
    assert header == COLUMNS, f"table columns {header}, expected {COLUMNS}"
    assert all(set(cell) <= set("-: ") for cell in separator), f"bad separator row {separator}"
    rows: dict[str, tuple[str, str]] = {}
    for cells in body:
        assert len(cells) == len(COLUMNS), f"row {cells[0]!r}: {len(cells)} cells, expected 3"
        name, value, where = cells
        assert name not in rows, f"parameter {name!r} has two rows"
        rows[name] = (value, where)
    return rows


@pytest.fixture(scope="module")
def table() -> dict[str, tuple[str, str]]:
    return parameter_table(README.read_text("utf-8"))


def numbers(cell: str) -> list[float]:
    """The numbers written in a cell ("100,000" is one number)."""
    return [float(n.replace(",", "")) for n in _NUMBER.findall(cell)]


def spaced(text: str) -> str:
    return " ".join(text.split())


# ----------------------------------------------------------------------------- from the code


def env_vars_by_field() -> dict[str, str]:
    """The WEBR_* variable that sets each resource field, as environment.py wires them."""
    source = inspect.getsource(environment)
    found = dict((key, name) for name, key in re.findall(r'\("(WEBR_\w+)",\s*"(\w+)"', source))
    found.update((key, name) for name, key in re.findall(
        r'if "(WEBR_\w+)" in os\.environ:\s*options\["(\w+)"\]', source))
    found.update((key, name) for name, key in re.findall(
        r'if os\.environ\.get\("(WEBR_\w+)"\):\s*options\["(\w+)"\]', source))
    return found


def gaussian_parameters() -> tuple[str, str]:
    """(mean, sd) of the gaussian section count, as sample_sections draws it."""
    source = inspect.getsource(sampling.sample_sections)
    match = re.search(r"rng\.gauss\(\s*n\s*/\s*(\d+)\s*,\s*n\s*/\s*(\d+)\s*\)", source)
    assert match, "sample_sections no longer draws rng.gauss(n / a, n / b): update this test"
    return match.group(1), match.group(2)


def whole_text_share(mode: str, sections: int = 8, draws: int = 4000) -> float:
    text = "\n\n".join(f"section {i}" for i in range(sections))
    rng = random.Random(0)
    kept = [sampling.sample_sections(text, rng, mode).sections_kept for _ in range(draws)]
    return sum(k == sections for k in kept) / draws


@dataclass
class Expect:
    """What one row's value (and where) cell must say, each item read from the code."""

    numbers: list[float] = field(default_factory=list)
    phrases: list[str] = field(default_factory=list)  # substrings, whitespace-normalised
    phrases_any_case: list[str] = field(default_factory=list)
    percents: list[float] = field(default_factory=list)
    env_fields: list[str] = field(default_factory=list)  # the row names their WEBR_* variable


def expectations() -> dict[str, Expect]:
    settings = WebRSettings()
    llm = LLMResource()
    WI, WR, ALL, PART = sampling.WI, sampling.WR, sampling.ALL, sampling.PART
    weights = sampling.ROLE_SCOPE_WEIGHTS
    rules = DecontaminationRules()  # the pure defaults: the settings must agree
    order = [(WI, ALL), (WI, PART), (WR, ALL), (WR, PART)]
    assert set(order) == set(weights), "roles and scopes changed: update this test"
    mean, sd = gaussian_parameters()
    profile_words = re.search(r"at most (\d+) words", AUTHOR_PROFILE.body)
    assert profile_words, "the author profile template no longer asks for 'at most N words'"
    other_features = [name for name in postprocess.FEATURE_NAMES if name != settings.dedup_features]
    other_modes = [mode for mode in sampling.SAMPLING_MODES if mode != settings.sampling_mode]
    return {
        "page length": Expect(
            numbers=[settings.min_words, settings.max_words],
            phrases=["`min_words`", "`max_words`"],
        ),
        "page language": Expect(
            numbers=[quality._LANGUAGE_SAMPLE_CHARS, quality.LANGUAGE_MIN_WORDS,
                     quality.LANGUAGE_MIN_SCORE, quality.LANGUAGE_MIN_WANTED_SCORE],
            phrases=[f"`{code}`" for code in settings.languages],
            env_fields=["languages"],
        ),
        "author profile": Expect(numbers=[int(profile_words.group(1))]),
        "section sampling": Expect(
            numbers=[sampling.KEEP_WHOLE_PROBABILITY],
            phrases=[f"N(n/{mean}, n/{sd})", "U{1..n}", "clipped to 1..n"]
            + [f'sampling_mode="{mode}"' for mode in other_modes],
        ),
        "roles and scopes": Expect(phrases=[
            " : ".join(f"{role}-{scope}" for role, scope in order)
            + " = " + " : ".join(str(weights[key]) for key in order),
        ]),
        "request noun / word limit": Expect(
            phrases=[f"{role}: {', '.join(nouns)}" for role, nouns in sampling.REQUEST_NOUNS.items()]
            + [", ".join(map(str, sampling.WORD_LIMITS))],
        ),
        "system message": Expect(phrases=[f'"{SYSTEM_MESSAGE}"']),
        "sampling": Expect(
            numbers=[llm.temperature] + ([llm.top_p] if llm.top_p is not None else []),
            phrases=[f"temperature {llm.temperature:.1f}"]
            + (["provider's default"] if llm.top_p is None else []),
            env_fields=["temperature", "top_p"],
        ),
        "reply cap": Expect(
            numbers=[llm.max_tokens, LOCAL_MAX_TOKENS],
            phrases=[f"max_tokens {llm.max_tokens}", f"built-in model {LOCAL_MAX_TOKENS}"],
            env_fields=["max_tokens"],
        ),
        "page cut": Expect(
            numbers=[PROMPT_OVERHEAD_TOKENS, CUT_CHARS_PER_TOKEN, LOCAL_MAX_INPUT_CHARS],
            phrases=[f"{PROMPT_OVERHEAD_TOKENS} prompt tokens",
                     f"x {CUT_CHARS_PER_TOKEN:g} characters",
                     f"built-in model {LOCAL_MAX_INPUT_CHARS}", "`max_input_chars`"]
            + (["sized from the context window"] if settings.max_input_chars is None else []),
            env_fields=["max_input_chars", "context_tokens", "max_tokens"],
        ),
        "filters": Expect(phrases_any_case=[f'"{opening}"' for opening in postprocess.REFUSAL_OPENINGS]),
        "near-duplicates": Expect(
            numbers=[settings.dedup_threshold, settings.dedup_permutations,
                     postprocess.DEDUP_THRESHOLD, postprocess.DEDUP_PERMUTATIONS],
            phrases=[f'`dedup_features="{settings.dedup_features}"`', "`dedup_threshold`",
                     "`dedup_permutations`"]
            + [f'"{name}"' for name in other_features],
        ),
        "final mix": Expect(
            percents=[settings.mix_tolerance * 100],
            phrases=["`mix_tolerance`",
                     f"WI : WR = {sampling.ROLE_WEIGHTS[WI]} : {sampling.ROLE_WEIGHTS[WR]}"],
        ),
        "splits": Expect(numbers=[settings.test_share], phrases=["`test_share`"],
                         env_fields=["test_share"]),
        "seed": Expect(numbers=[settings.seed], phrases=["`seed`"], env_fields=["seed"]),
        "decontamination": Expect(
            numbers=[settings.decontam_long_n, settings.decontam_short_n,
                     settings.decontam_min_prompt_words, rules.long_n, rules.short_n,
                     rules.min_prompt_words],
            percents=[settings.decontam_short_coverage * 100, rules.short_coverage * 100],
            phrases=[f"`{name}`" for name in settings.benchmarks] + ["`WEBR_DECONTAMINATE`"],
            env_fields=["decontam_long_n", "decontam_short_n", "decontam_short_coverage",
                        "decontam_min_prompt_words"],
        ),
        "quality gates": Expect(
            numbers=[settings.gate_min_pairs],
            percents=[settings.mix_tolerance * 100, settings.scope_tolerance * 100,
                      settings.max_drop_share * 100, quality_gates.CHANCE_P_VALUE * 100],
            phrases=[f"`{gate}`" for gate in GATES],
            env_fields=["mix_tolerance", "scope_tolerance", "max_drop_share", "gate_min_pairs"],
        ),
    }


EXPECTATIONS = expectations()
# Rows the table must keep (deleting one fails), checked or not.
REQUIRED_ROWS = sorted(EXPECTATIONS) + ["format"]


# ----------------------------------------------------------------------------- the tests


def test_every_required_row_is_present(table):
    missing = [name for name in REQUIRED_ROWS if name not in table]
    assert not missing, f"README parameter rows missing: {missing}"


@pytest.mark.parametrize("name", sorted(EXPECTATIONS))
def test_row_matches_the_code(table, name):
    assert name in table, f"README has no {name!r} row"
    value, where = table[name]
    row = f"{value} | {where}"
    expect = EXPECTATIONS[name]
    written = numbers(value)
    for number in expect.numbers:
        assert any(math.isclose(number, n) for n in written), (
            f"{name!r}: the code says {number:g}, the README value cell has {written}")
    for phrase in expect.phrases:
        assert spaced(phrase) in spaced(row), f"{name!r}: the README row lacks {phrase!r}"
    for phrase in expect.phrases_any_case:
        assert spaced(phrase).lower() in spaced(row).lower(), (
            f"{name!r}: the README row lacks {phrase!r}")
    percents = [float(p) for p in _PERCENT.findall(value)]
    for percent in expect.percents:
        assert any(math.isclose(percent, p) for p in percents), (
            f"{name!r}: the code says {percent:g} %, the README value cell has {percents} %")
    env = env_vars_by_field()
    for field_name in expect.env_fields:
        assert field_name in env, f"environment.py sets {field_name!r} from no WEBR_* variable"
        assert f"`{env[field_name]}`" in row, f"{name!r}: the README row lacks `{env[field_name]}`"


def test_section_sampling_variant_has_no_keep_whole_draw(table):
    """The README says the gaussian variant has no keep-whole draw: its whole-text share
    must then be far under KEEP_WHOLE_PROBABILITY, which the uniform rule exceeds."""
    assert "no keep-whole draw" in table["section sampling"][0]
    assert whole_text_share("uniform") >= sampling.KEEP_WHOLE_PROBABILITY
    assert whole_text_share("gaussian") < sampling.KEEP_WHOLE_PROBABILITY / 4


def test_env_vars_and_files_named_in_the_table_exist(table):
    source = "\n".join(p.read_text("utf-8") for p in PACKAGE.rglob("*.py"))
    for name, (value, where) in table.items():
        for var in set(re.findall(r"WEBR_\w+", f"{value} {where}")):
            assert f'"{var}"' in source, f"{name!r} names {var}, which the code never reads"
        for path in re.findall(r"`([\w/.-]+\.(?:py|toml))`", where):
            assert (PACKAGE / path).is_file(), f"{name!r} points at webr_dagster/{path}: no such file"
