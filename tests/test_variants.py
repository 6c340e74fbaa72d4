"""The paper's ablations as run variants: each variant's role/scope rule, its prompts, where
its data goes, and, end to end, that a variant pays only for the calls no other run made."""

import json
import re
import string
from collections import Counter

import duckdb
import pytest

from webr_dagster.cli import main
from webr_dagster.resources.environment import resources_from_env, settings_from_env
from webr_dagster.resources.storage import WebRHome
from webr_dagster.webr.prompts import (
    DEFAULT_TEMPLATES, PLACEHOLDERS, TemplateError, load_templates,
)
from webr_dagster.webr.sampling import (
    ALL, PART, REQUEST_NOUNS, WI, WR, assign_role_scope, plan_page,
)
from webr_dagster.webr.variants import VARIANTS, plan_variant, variant_role_scope

SEED = 42
PAGES = [f"page-{i}" for i in range(3000)]
TEXT = "\n\n".join(f"# Part {i}\nSome words about topic {i}, of a useful length." for i in range(6))


def _placeholders(body: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(body) if field is not None}


def _share(values, wanted) -> float:
    values = list(values)
    return sum(v == wanted for v in values) / len(values)


# -- the role / scope rule ---------------------------------------------------------------

@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_is_deterministic(variant):
    first = [variant_role_scope(p, SEED, variant) for p in PAGES[:500]]
    assert first == [variant_role_scope(p, SEED, variant) for p in PAGES[:500]]
    # ... and the seed matters, as for the assignment itself
    assert first != [variant_role_scope(p, SEED + 1, variant) for p in PAGES[:500]]


@pytest.mark.parametrize("variant", ["default", "wr-no-refine", "no-profile"])
def test_variants_that_keep_the_assignment(variant):
    assert all(variant_role_scope(p, SEED, variant) == assign_role_scope(p, SEED)
               for p in PAGES)


@pytest.mark.parametrize("variant,role", [("wi-only", WI), ("wr-only", WR)])
def test_a_forced_role_keeps_matching_scopes_and_draws_the_rest_half_and_half(variant, role):
    got = {p: variant_role_scope(p, SEED, variant) for p in PAGES}
    assert {r for r, _ in got.values()} == {role}
    assert _share((s for _, s in got.values()), ALL) == pytest.approx(0.5, abs=0.03)
    assigned = {p: assign_role_scope(p, SEED) for p in PAGES}
    kept = [p for p in PAGES if assigned[p][0] == role]
    moved = [p for p in PAGES if assigned[p][0] != role]
    assert kept and moved
    assert all(got[p] == assigned[p] for p in kept)
    # the moved pages' scopes are their own 1:1 draw, not a copy of the assigned scope
    assert _share((got[p][1] for p in moved), ALL) == pytest.approx(0.5, abs=0.05)
    assert 0.3 < _share((got[p][1] == assigned[p][1] for p in moved), True) < 0.7


@pytest.mark.parametrize("variant,scope", [("all-only", ALL), ("part-only", PART)])
def test_a_forced_scope_keeps_matching_roles_and_draws_the_rest_two_to_one(variant, scope):
    got = {p: variant_role_scope(p, SEED, variant) for p in PAGES}
    assert {s for _, s in got.values()} == {scope}
    assert _share((r for r, _ in got.values()), WI) == pytest.approx(2 / 3, abs=0.03)
    assigned = {p: assign_role_scope(p, SEED) for p in PAGES}
    kept = [p for p in PAGES if assigned[p][1] == scope]
    moved = [p for p in PAGES if assigned[p][1] != scope]
    assert kept and moved
    assert all(got[p] == assigned[p] for p in kept)
    assert _share((got[p][0] for p in moved), WI) == pytest.approx(2 / 3, abs=0.05)


def test_default_plans_are_todays_plans():
    for page_id in PAGES[:500]:
        assert plan_variant(page_id, TEXT, SEED, "uniform", 200) == \
            plan_page(page_id, TEXT, SEED, "uniform", 200)


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v != "default"])
def test_a_variant_changes_only_role_scope_and_the_noun_of_a_new_role(variant):
    changed = 0
    for page_id in PAGES[:500]:
        mine, own = plan_variant(page_id, TEXT, SEED, variant=variant), plan_page(page_id, TEXT, SEED)
        assert (mine.role, mine.scope) == variant_role_scope(page_id, SEED, variant)
        assert mine.noun in REQUEST_NOUNS[mine.role]
        same = {k: v for k, v in own.as_dict().items() if k not in ("role", "scope", "noun")}
        assert {k: v for k, v in mine.as_dict().items() if k in same} == same
        if mine.role == own.role:
            assert mine.noun == own.noun
        changed += (mine.role, mine.scope) != (own.role, own.scope)
    assert changed == 0 if variant in ("wr-no-refine", "no-profile") else changed > 50


def test_an_unknown_variant_fails_before_any_run(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="wi-only"):
        variant_role_scope("p", SEED, "wi_only")
    monkeypatch.setenv("WEBR_VARIANT", "no-profiles")
    with pytest.raises(ValueError, match="unknown variant 'no-profiles'"):
        settings_from_env(WebRHome(tmp_path / "home"))


def test_a_variant_gets_its_own_schema_and_export_folder(tmp_path, monkeypatch):
    home = WebRHome(tmp_path / "home")
    monkeypatch.delenv("WEBR_VARIANT", raising=False)
    default = resources_from_env(home)
    assert default["settings"].variant == "default"
    assert default["io_manager"].schema_ == "webr"
    assert default["settings"].export_dir == str(home.exports / "webr-sft")
    monkeypatch.setenv("WEBR_VARIANT", "wi-only")
    wi_only = resources_from_env(home)
    assert wi_only["io_manager"].schema_ == "webr_wi_only"
    assert wi_only["settings"].export_dir == str(home.exports / "webr-sft-wi-only")
    # `webr run --variant` passes an override, which wins over WEBR_VARIANT
    assert resources_from_env(home, variant="no-profile")["io_manager"].schema_ == \
        "webr_no_profile"
    assert wi_only["io_manager"].database == default["io_manager"].database  # one file


# -- the no-profile templates ------------------------------------------------------------

@pytest.mark.parametrize("role,scope", [(WI, ALL), (WI, PART), (WR, ALL), (WR, PART)])
def test_no_profile_templates_ask_the_same_without_the_author(role, scope):
    plain = DEFAULT_TEMPLATES.request(role, scope, profile=False)
    with_profile = DEFAULT_TEMPLATES.request(role, scope)
    assert plain.name == f"{with_profile.name}_no_profile"
    assert _placeholders(plain.body) == {"text", "noun", "word_limit"}
    assert "author" not in plain.body.lower() and "profile" not in plain.body.lower()
    body = plain.messages(text="PAGE TEXT", noun="question", word_limit=150)[1]["content"]
    assert body.startswith("PAGE TEXT")  # the same prompt-prefix reuse as the others
    assert "150 words" in body and "question alone" in body and "user" in body
    assert "detailed" in body and "specific" in body
    for aspect in ("style", "format", "structure"):
        assert aspect in body
    if role == WI:
        assert '"rewrite"' in body and '"new version"' in body and "reworks" in body
        assert "length (in words, sentences or paragraphs)" in body
    else:
        assert "most likely question" in body and "great answer" in body
    if scope == PART:
        assert "particular piece" in body
        assert ('"specific part"' in body) == (role == WI)


def test_the_default_set_validates_with_the_new_names(tmp_path):
    names = [t.name for t in load_templates(None)]
    assert len(names) == len(set(names)) == len(PLACEHOLDERS) == 12
    for name in names:
        assert ("profile" in PLACEHOLDERS[name]) == name.endswith(("all", "part"))
    # WEBR_TEMPLATES may replace them like any other ...
    path = tmp_path / "mine.toml"
    path.write_text('wr_request_all_no_profile = "{text} Ask a {noun} in {word_limit} words."\n')
    mine = load_templates(path)
    assert mine.request(WR, ALL, profile=False).body.endswith("in {word_limit} words.")
    assert mine.request(WR, ALL).tag == DEFAULT_TEMPLATES.request(WR, ALL).tag
    # ... and a no-profile template that asks for the profile is refused
    path.write_text('wr_request_all_no_profile = "{text} {profile} {noun} {word_limit}"\n')
    with pytest.raises(TemplateError, match=r"unknown placeholder \{profile\}"):
        load_templates(path)


# -- end to end: variants reuse every paid call ------------------------------------------

def _tables(home, schema: str) -> dict[str, list[dict]]:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    out = {}
    for table in ("author_profiles", "instruction_side_pairs", "response_side_pairs"):
        frame = con.sql(f"SELECT * FROM {schema}.{table}").df()
        out[table] = frame.to_dict("records")
    con.close()
    out["pairs"] = out["instruction_side_pairs"] + out["response_side_pairs"]
    return out


def _ledger(home) -> list[tuple]:
    if not (home / "llm_calls.duckdb").exists():
        return []
    con = duckdb.connect(str(home / "llm_calls.duckdb"), read_only=True)
    rows = con.execute("SELECT call_key, stage, page_id FROM llm_calls").fetchall()
    con.close()
    return rows


def _export_counts(folder) -> dict[str, int]:
    return {split: len((folder / "jsonl" / f"{split}.jsonl").read_text().splitlines())
            for split in ("train_sft", "test_sft")}


def _split_counts(output: str) -> dict[str, int]:
    return {split: int(re.search(rf"^  {split}\s+(\d+)", output, re.M)[1])
            for split in ("train_sft", "test_sft")}


def test_variants_reuse_every_paid_call(webr_env, loopback, capsys):
    exports = webr_env / "exports"
    requests_sent = {}

    def run(*options):
        sent_before, ledger_before = loopback.requests_total, {r[0] for r in _ledger(webr_env)}
        assert main(["run", "--sample", *options]) == 0
        output = capsys.readouterr().out
        new = [(stage, page) for key, stage, page in _ledger(webr_env)
               if key not in ledger_before]
        sent = loopback.requests_total - sent_before
        assert len(new) == sent and f"{sent} calls sent" in output  # no retries, no faults
        requests_sent[" ".join(options) or "default"] = sent
        return sent, new, output

    # 1. The method as published.
    sent, _, output = run()
    default = _tables(webr_env, "webr")
    roles = {row["page_id"]: row["role"] for row in default["pairs"]}
    wr_pages = {page for page, role in roles.items() if role == WR}
    assert wr_pages and len(wr_pages) < len(roles)
    assert sent == 2 * len(roles) + len(roles) - len(wr_pages) + 2 * len(wr_pages)
    assert "variant default" in output and f"{exports / 'webr-sft'}" in output
    first_export = {name: (exports / "webr-sft" / "jsonl" / name).read_bytes()
                    for name in ("train_sft.jsonl", "test_sft.jsonl")}
    assert _export_counts(exports / "webr-sft") == _split_counts(output)

    # 2. wi-only: only the pages that were WR need calls: a WI request and its response.
    sent, new, output = run("--variant", "wi-only")
    assert sent == 2 * len(wr_pages)
    assert Counter(stage for stage, _ in new) == {"request": len(wr_pages),
                                                  "wi_response": len(wr_pages)}
    assert {page for _, page in new} == wr_pages
    wi_only = _tables(webr_env, "webr_wi_only")
    assert {row["role"] for row in wi_only["pairs"]} == {WI} and not wi_only["response_side_pairs"]
    assert {row["page_id"] for row in wi_only["pairs"]} == set(roles)
    assert "variant wi-only" in output and f"{exports / 'webr-sft-wi-only'}" in output
    assert _export_counts(exports / "webr-sft-wi-only") == _split_counts(output)
    assert "- variant: wi-only" in (exports / "webr-sft-wi-only" / "README.md").read_text()

    # 3. wr-no-refine: requests and first answers of the WR pages were paid for by (1).
    sent, new, output = run("--variant", "wr-no-refine")
    assert sent == 0 and not new
    no_refine = _tables(webr_env, "webr_wr_no_refine")
    assert len(no_refine["response_side_pairs"]) == len(wr_pages)
    for row in no_refine["response_side_pairs"]:
        assert row["response"] == row["first_answer"]
        assert row["response_call_key"] == row["answer_call_key"]
        assert "wr_refine@" not in row["templates"]
    refined = {row["page_id"]: row["response"] for row in default["response_side_pairs"]}
    assert all(refined[row["page_id"]] != row["response"]
               for row in no_refine["response_side_pairs"])
    assert _export_counts(exports / "webr-sft-wr-no-refine") == _split_counts(output)

    # 4. The default again: nothing is sent and the export is the same, byte for byte.
    sent, _, output = run("--variant", "default")
    assert sent == 0
    assert {name: (exports / "webr-sft" / "jsonl" / name).read_bytes()
            for name in first_export} == first_export

    # 5. no-profile: a new request per page (no profile is asked for), then only the
    # response calls whose messages changed: those after a request that changed.
    sent, new, output = run("--variant", "no-profile")
    no_profile = _tables(webr_env, "webr_no_profile")
    asked_before = {row["page_id"]: row["request"] for row in default["pairs"]}
    changed = [row for row in no_profile["pairs"]
               if row["request"].strip() != asked_before[row["page_id"]].strip()]
    expected = len(roles) + sum(1 if row["role"] == WI else 2 for row in changed)
    assert sent == expected
    assert Counter(stage for stage, _ in new)["request"] == len(roles)
    assert "author_profile" not in {stage for stage, _ in new}
    assert {row["status"] for row in no_profile["author_profiles"]} == {"skipped"}
    assert all(row["profile"] is None and "_no_profile@" in row["templates"]
               for row in no_profile["pairs"])
    assert _export_counts(exports / "webr-sft-no-profile") == _split_counts(output)

    exported = {name: _export_counts(exports / name) for name in sorted(
        p.name for p in exports.iterdir() if p.is_dir())}
    print(json.dumps({"pages": len(roles), "wr_pages": len(wr_pages),
                      "requests_sent": requests_sent, "exports": exported}))
