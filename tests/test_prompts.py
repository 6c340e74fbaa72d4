"""Prompt templates: every constraint of METHOD.md is stated, messages are well formed, and a
user's templates file replaces only what it names, or fails saying what is wrong."""

import json
import re
import string
import tomllib
from importlib.resources import files

import duckdb
import pytest

from webr_dagster.cli import main
from webr_dagster.resources.environment import settings_from_env
from webr_dagster.resources.storage import WebRHome
from webr_dagster.webr.estimate import estimate_page
from webr_dagster.webr.prompts import (
    AUTHOR_PROFILE, DEFAULT_TEMPLATES, PLACEHOLDERS, SYSTEM_MESSAGE, WI_RESPONSE, WR_ANSWER,
    WR_REFINE, TemplateError, load_templates, request_template, user_turn,
)
from webr_dagster.webr.sampling import plan_page

FIELDS = dict(text="PAGE TEXT", profile="A keen gardener.", noun="instruction", word_limit=150)
ROLES_SCOPES = [("WI", "all"), ("WI", "part"), ("WR", "all"), ("WR", "part")]


def _placeholders(body: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(body) if field is not None}


def _write(tmp_path, text: str) -> str:
    path = tmp_path / "mine.toml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("role,scope", ROLES_SCOPES)
def test_request_templates_carry_the_method_constraints(role, scope):
    messages = request_template(role, scope).messages(**FIELDS)
    assert messages[0] == {"role": "system", "content": SYSTEM_MESSAGE}
    body = messages[1]["content"]
    assert body.startswith("PAGE TEXT")  # shared prefix for prompt caching
    assert "A keen gardener." in body and "instruction" in body and "150 words" in body
    assert "author's own voice" in body and "alone" in body
    assert "detailed" in body and "specific" in body
    for aspect in ("style", "format", "structure"):
        assert aspect in body
    if role == "WI":
        assert '"rewrite"' in body and '"new version"' in body
        assert "length (in words, sentences or paragraphs)" in body
    else:
        assert "most likely instruction" in body and "great answer" in body
    if scope == "part":
        assert "particular piece" in body
        assert ('"specific part"' in body) == (role == "WI")


@pytest.mark.parametrize("scope", ["all", "part"])
def test_wi_requests_ask_to_rework_the_text_with_example_constraints(scope):
    body = request_template("WI", scope).messages(**FIELDS)[1]["content"]
    # The request asks for a reworked version of the text (or of one piece of it) ...
    assert "reworks" in body and "fresh version" in body
    # ... grounded in the text, with the constraints offered as examples, not all demanded.
    assert "grounded" in body.lower() or "ground the" in body.lower()
    assert "for example its length" in body and "not necessarily all" in body
    assert "a format and a structure" not in body  # the old wording demanded all four


def test_refine_asks_only_for_an_improved_factual_answer():
    body = WR_REFINE.messages(text="T", request="R", answer="A")[1]["content"]
    assert body.startswith("T") and "[Request]\nR" in body and "[Answer]\nA" in body
    assert "provided information" in body and "factually correct" in body
    assert "improved answer alone" in body
    assert "as asked" not in body


def test_author_profile_asks_for_at_most_30_words_and_nothing_more():
    body = AUTHOR_PROFILE.messages(text="T")[1]["content"]
    assert body.startswith("T") and "at most 30 words" in body and "profile" in body
    for facet in ("role", "occupation", "know", "why", "for whom"):
        assert not re.search(rf"\b{facet}", body), facet


def test_other_templates():
    assert WI_RESPONSE.messages(text="T", request="R")[1]["content"] == "T\n\nR"
    assert WR_ANSWER.messages(request="R")[1]["content"] == "R"


def test_default_file_loads_and_every_template_has_its_placeholders():
    raw = tomllib.loads(files("webr_dagster.webr").joinpath("templates.toml").read_text())
    assert set(raw) == set(PLACEHOLDERS)
    defaults = load_templates(None)
    assert defaults is DEFAULT_TEMPLATES
    for template in defaults:
        assert template.body == raw[template.name]
        assert _placeholders(template.body) == PLACEHOLDERS[template.name], template.name
        if "text" in PLACEHOLDERS[template.name]:
            assert template.body.startswith("{text}"), template.name  # prompt-prefix reuse
        assert re.fullmatch(rf"{template.name}@[0-9a-f]{{8}}", template.tag)
    assert len({t.tag for t in defaults}) == len(PLACEHOLDERS)


def test_a_user_file_changes_only_the_templates_it_names(tmp_path):
    mine = load_templates(_write(tmp_path, 'wr_answer = """Please help: {request}"""\n'))
    assert mine.wr_answer.messages(request="R")[1]["content"] == "Please help: R"
    assert mine.wr_answer.tag.startswith("wr_answer@")
    assert mine.wr_answer.tag != DEFAULT_TEMPLATES.wr_answer.tag
    changed = [d.name for d, m in zip(DEFAULT_TEMPLATES, mine) if d.tag != m.tag]
    assert changed == ["wr_answer"]
    # The version is the text's hash: the same text gives the same tag wherever it comes from.
    same = load_templates(_write(tmp_path, f"wr_answer = {WR_ANSWER.body!r}\n"))
    assert same.wr_answer.tag == WR_ANSWER.tag


@pytest.mark.parametrize("toml,named", [
    ('wr_refine = "{text} {request} answer it"', ["'wr_refine'", "{answer}"]),
    ('wi_request_all = "{text} {profile} {noun} {word_limit} {page}"',
     ["'wi_request_all'", "{page}"]),
    ('wr_answers = "{request}"', ["'wr_answers'"]),
    ('wr_answer = "{request"', ["'wr_answer'"]),
    ('wr_answer = 3', ["'wr_answer'"]),
    ('wr_answer = """{request}', ["not valid TOML"]),
])
def test_a_bad_user_file_fails_naming_the_template_and_placeholder(tmp_path, toml, named):
    path = _write(tmp_path, toml + "\n")
    with pytest.raises(TemplateError) as caught:
        load_templates(path)
    for name in [path, *named]:
        assert name in str(caught.value)


def test_webr_templates_reaches_the_settings(tmp_path, monkeypatch):
    home = WebRHome(tmp_path / "home")
    monkeypatch.delenv("WEBR_TEMPLATES", raising=False)
    assert settings_from_env(home).templates_path is None
    path = _write(tmp_path, 'author_profile = "{text} Who wrote this?"\n')
    monkeypatch.setenv("WEBR_TEMPLATES", path)
    settings = settings_from_env(home)
    assert settings.templates_path == path
    assert load_templates(settings.templates_path).author_profile.body == "{text} Who wrote this?"
    # A bad file stops before any run starts.
    monkeypatch.setenv("WEBR_TEMPLATES", _write(tmp_path, 'author_profile = "Who?"\n'))
    with pytest.raises(TemplateError, match=r"'author_profile' lacks placeholder \{text\}"):
        settings_from_env(home)


def test_a_user_template_reaches_the_calls_and_the_rows(webr_env, tmp_path, monkeypatch, capsys):
    """WEBR_TEMPLATES -> settings -> the assets: the calls render and record the user's text."""
    monkeypatch.setenv("WEBR_TEMPLATES", _write(tmp_path, """
author_profile = "{text}\\n\\nMY PROFILE PROMPT: who wrote this, in at most 30 words?"
wr_refine = "{text}\\n\\nMY REFINE PROMPT\\n{request}\\n{answer}"
"""))
    mine = load_templates(tmp_path / "mine.toml")
    assert main(["run", "--sample"]) == 0
    capsys.readouterr()
    con = duckdb.connect(str(webr_env / "llm_calls.duckdb"), read_only=True)
    calls = con.sql("SELECT stage, template, messages FROM llm_calls").fetchall()
    con.close()
    tags: dict[str, set[str]] = {}
    for stage, tag, _ in calls:
        tags.setdefault(stage, set()).add(tag)
    assert tags["author_profile"] == {mine.author_profile.tag}
    assert tags["wr_refine"] == {mine.wr_refine.tag}
    assert tags["wi_response"] == {DEFAULT_TEMPLATES.wi_response.tag}  # not in the file
    for stage, _, messages in calls:
        mark = {"author_profile": "MY PROFILE PROMPT", "wr_refine": "MY REFINE PROMPT"}.get(stage)
        assert mark is None or mark in json.loads(messages)[1]["content"]
    con = duckdb.connect(str(webr_env / "warehouse.duckdb"), read_only=True)
    templates = con.sql("SELECT templates FROM webr.response_side_pairs").fetchall()
    con.close()
    assert templates and all(mine.wr_refine.tag in row[0].split(",") for row in templates)


def test_the_estimate_counts_the_templates_it_is_given(tmp_path):
    text = "\n\n".join("A paragraph about a subject, of some length. " * 5 for _ in range(4))
    plan = next(p for p in (plan_page(f"p{i}", text, seed=1) for i in range(50)) if p.role == "WR")
    longer = load_templates(_write(tmp_path, f'wr_answer = "{{request}}{" Please." * 400}"\n'))
    default = estimate_page(plan, text, None, 1024)
    assert estimate_page(plan, text, None, 1024, longer).prompt_tokens > default.prompt_tokens
    assert estimate_page(plan, text, None, 1024, DEFAULT_TEMPLATES) == default


def test_user_turns():
    assert user_turn("WI", "R", "T", text_first=True) == "T\n\nR"
    assert user_turn("WI", "R", "T", text_first=False) == "R\n\nT"
    assert user_turn("WR", "R", "T", text_first=True) == "R"
