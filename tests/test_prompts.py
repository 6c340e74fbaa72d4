"""Prompt templates: every constraint of METHOD.md is stated, and messages are well formed."""

import pytest

from webr_dagster.webr.prompts import (
    AUTHOR_PROFILE, SYSTEM_MESSAGE, WI_RESPONSE, WR_ANSWER, WR_REFINE, request_template,
    user_turn,
)

FIELDS = dict(text="PAGE TEXT", profile="A keen gardener.", noun="instruction", word_limit=150)


@pytest.mark.parametrize("role,scope", [("WI", "all"), ("WI", "part"), ("WR", "all"), ("WR", "part")])
def test_request_templates_carry_the_method_constraints(role, scope):
    messages = request_template(role, scope).messages(**FIELDS)
    assert messages[0] == {"role": "system", "content": SYSTEM_MESSAGE}
    body = messages[1]["content"]
    assert body.startswith("PAGE TEXT")  # shared prefix for prompt caching
    assert "A keen gardener." in body and "instruction" in body and "150 words" in body
    assert "author's own voice" in body and "alone" in body
    for aspect in ("style", "format", "structure"):
        assert aspect in body
    if role == "WI":
        assert '"rewrite"' in body and '"new version"' in body
        assert "length" in body
    if scope == "part":
        assert "particular piece" in body
        assert ('"specific part"' in body) == (role == "WI")


def test_other_templates():
    assert "30 words" in AUTHOR_PROFILE.messages(text="T")[1]["content"]
    assert WI_RESPONSE.messages(text="T", request="R")[1]["content"] == "T\n\nR"
    assert WR_ANSWER.messages(request="R")[1]["content"] == "R"
    refine = WR_REFINE.messages(text="T", request="R", answer="A")[1]["content"]
    assert refine.startswith("T") and "[Request]\nR" in refine and "[Answer]\nA" in refine
    assert all(t.tag.endswith("@v1") for t in (AUTHOR_PROFILE, WI_RESPONSE, WR_ANSWER, WR_REFINE))


def test_user_turns():
    assert user_turn("WI", "R", "T", text_first=True) == "T\n\nR"
    assert user_turn("WI", "R", "T", text_first=False) == "R\n\nT"
    assert user_turn("WR", "R", "T", text_first=True) == "R"
