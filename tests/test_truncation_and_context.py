"""Replies cut at max_tokens (finish_reason "length") and the page cut sized from the model's
context window: kept in the ledger, marked on what is built from them, never asked again;
the cut, the token cap and top_p as the WEBR_* variables set them."""

import asyncio
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import litellm
import pytest

from tests.support.loopback_openai import LoopbackOpenAI
from webr_dagster.assets.pairs import generate_pair
from webr_dagster.cli import main
from webr_dagster.resources import local_model
from webr_dagster.resources.call_ledger import LEDGER_COLUMNS, CallLedger
from webr_dagster.resources.completion import complete_once, read_reply
from webr_dagster.resources.environment import (
    LOCAL_MAX_INPUT_CHARS,
    LOCAL_MAX_TOKENS,
    llm_from_env,
    settings_from_env,
)
from webr_dagster.resources.llm import (
    CUT_CHARS_PER_TOKEN,
    PROMPT_OVERHEAD_TOKENS,
    CallResult,
    LLMResource,
    LLMSession,
)
from webr_dagster.resources.settings import WebRSettings
from webr_dagster.resources.storage import WebRHome
from webr_dagster.webr.sampling import plan_page


def _resource(server, tmp_path, **overrides):
    options = dict(model="openai/loopback", api_base=server.base_url, api_key="sk-test",
                   ledger_path=str(tmp_path / "ledger.duckdb"), concurrency=8, timeout_s=5,
                   call_processes=0)
    options.update(overrides)
    return LLMResource(**options)


def _messages(i, cut=False):
    marker = "cut-me" if cut else "whole"
    return [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": f"page {i} {marker}: "
             + " ".join(f"word{i}x{j}" for j in range(40))}]


def _asks_for_cut(messages) -> bool:
    return "cut-me" in messages[-1]["content"]


def _run(resource, calls, run_id="run"):
    with resource.open_session(run_id) as session:
        async def one(messages, i):
            return await session.call(messages, stage="t", page_id=str(i), template="t@v1")
        results = session.run((lambda m=m, i=i: one(m, i)) for i, m in enumerate(calls))
    return results, session.stats


# -- finish_reason: read, kept, served ---------------------------------------------------


def test_finish_reason_is_kept_in_the_ledger_and_served_from_it(tmp_path):
    calls = [_messages(i, cut=i % 2 == 0) for i in range(6)]
    with LoopbackOpenAI(length_fn=_asks_for_cut) as server:
        resource = _resource(server, tmp_path)
        results, stats = _run(resource, calls)
        assert all(r.ok for r in results)
        assert [r.finish_reason for r in results] == ["length", "stop"] * 3
        assert [r.truncated for r in results] == [True, False] * 3
        assert stats.truncated == 3
        con = duckdb.connect(str(tmp_path / "ledger.duckdb"), read_only=True)
        recorded = dict(con.execute(
            "SELECT call_key, finish_reason FROM llm_calls WHERE status = 'ok'").fetchall())
        con.close()
        assert recorded == {r.key: r.finish_reason for r in results}
        assert sum(server.length_reply_keys.values()) == 3

        # A rerun pays for nothing: the cut replies are answers too, and come back cut.
        again, stats = _run(resource, calls, run_id="again")
        assert server.requests_total == 6 and stats.cached == 6
        assert [r.finish_reason for r in again] == ["length", "stop"] * 3
        assert [r.content for r in again] == [r.content for r in results]


def test_the_journal_carries_finish_reason(tmp_path, monkeypatch):
    # Nothing reaches DuckDB: what a killed process leaves behind is its journal alone.
    monkeypatch.setattr(LLMSession, "flush", lambda self: None)
    with LoopbackOpenAI(length_fn=_asks_for_cut) as server:
        _run(_resource(server, tmp_path), [_messages(1, cut=True), _messages(2)])
    [journal] = (tmp_path / "ledger-journal").glob("*.jsonl")
    rows = [json.loads(line) for line in journal.read_text().splitlines()]
    assert sorted(row["finish_reason"] for row in rows) == ["length", "stop"]


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_ledger_and_a_journal_from_before_finish_reason_still_open(tmp_path):
    path = tmp_path / "ledger.duckdb"
    old_columns = {name: kind for name, kind in LEDGER_COLUMNS.items() if name != "finish_reason"}
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE llm_calls ("
                + ", ".join(f"{name} {kind}" for name, kind in old_columns.items()) + ")")
    con.execute("INSERT INTO llm_calls (call_key, status, reply, created_at, attempts) "
                "VALUES ('old', 'ok', 'an old reply', TIMESTAMP '2024-01-01', 1)")
    con.close()
    journal_dir = tmp_path / "ledger-journal"
    journal_dir.mkdir()
    row = {"call_key": "journalled", "status": "ok", "reply": "from a killed process",
           "finish_reason": "length", "attempts": 1, "created_at": "2024-01-02 00:00:00"}
    old_row = {k: v for k, v in row.items() if k != "finish_reason"} | {"call_key": "older"}
    (journal_dir / f"{_dead_pid()}-x.jsonl").write_text(
        json.dumps(row) + "\n" + json.dumps(old_row) + "\n")

    ledger = CallLedger(path)  # adds the column, folds the dead process's journal in
    replies = ledger.replies(["old", "journalled", "older"])
    ledger.close()
    assert replies["old"]["reply"] == "an old reply" and replies["old"]["finish_reason"] is None
    assert replies["journalled"]["finish_reason"] == "length"
    assert replies["older"]["finish_reason"] is None
    con = duckdb.connect(str(path), read_only=True)
    columns = [r[0] for r in con.execute("DESCRIBE llm_calls").fetchall()]
    con.close()
    assert "finish_reason" in columns


def test_the_built_in_model_passes_length_through(monkeypatch):
    class CutShort:
        def chat(self, messages, temperature, top_p, max_tokens, seed=None):
            return {"choices": [{"finish_reason": "length",
                                 "message": {"content": "a reply that ran out"}}],
                    "usage": {"prompt_tokens": 7, "completion_tokens": max_tokens,
                              "total_tokens": 7 + max_tokens}}

    from webr_dagster.resources.litellm_setup import prepare_litellm

    monkeypatch.setattr(local_model, "_model", CutShort())  # no GGUF is loaded
    ready = prepare_litellm(local_model_threads=1)
    reply = asyncio.run(complete_once(ready, {
        "model": "webr-local/smollm2-135m-instruct", "max_tokens": 5,
        "messages": [{"role": "user", "content": "Name one colour."}]}))
    assert reply.ok and reply.finish_reason == "length" and reply.completion_tokens == 5


def test_read_reply_without_a_finish_reason_says_none():
    response = litellm.ModelResponse(model="m", choices=[
        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "x"}}])
    assert read_reply(response).finish_reason == "stop"
    response.choices[0].finish_reason = None
    assert read_reply(response).finish_reason is None


# -- which cut makes a pair truncated --------------------------------------------------


class ScriptedSession:
    """Answers each stage's call with a reply, cut at max_tokens for the stages in ``cut``."""

    def __init__(self, cut=()):
        self.cut, self.stages = set(cut), []

    async def call(self, messages, *, stage, page_id, template, sample_index=0):
        self.stages.append(stage)
        return CallResult(f"key-{stage}", True, f"the {stage} reply",
                          finish_reason="length" if stage in self.cut else "stop")


def _plan(role):
    return next(plan for plan in (plan_page(f"p{i}", "Some text.\n\nMore text.", seed=1)
                                  for i in range(100)) if plan.role == role)


@pytest.mark.parametrize("role, cut, status, stages", [
    ("WI", (), "ok", ["request", "wi_response"]),
    ("WI", ("request",), "truncated", ["request"]),  # nothing more is paid for
    ("WI", ("wi_response",), "truncated", ["request", "wi_response"]),
    ("WR", ("wr_answer",), "ok", ["request", "wr_answer", "wr_refine"]),  # refined from it
    ("WR", ("wr_refine",), "truncated", ["request", "wr_answer", "wr_refine"]),
    ("WR", ("request",), "truncated", ["request"]),
])
def test_a_pair_is_truncated_when_its_request_or_response_was_cut(role, cut, status, stages):
    session = ScriptedSession(cut)
    pair = asyncio.run(generate_pair(session, _plan(role), "a profile"))
    assert pair["status"] == status and session.stages == stages
    assert pair["request"] == "the request reply"  # paid for, so kept
    if status == "truncated":
        assert pair["error"].startswith("request" if "request" in cut else "response")
    if "request" not in cut:
        assert pair["response"] == f"the {stages[-1]} reply"


# -- the pipeline: cut replies make truncated pairs, and a rerun asks nothing --------------


def _cut_a_quarter(messages) -> bool:
    digest = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).digest()
    return digest[0] % 4 == 0


def _tables(home: Path):
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        pairs = con.sql("SELECT * FROM webr.instruction_side_pairs UNION ALL BY NAME "
                        "SELECT * FROM webr.response_side_pairs").df()
        profiles = con.sql("SELECT page_id, status, profile, call_key "
                           "FROM webr.author_profiles").df()
        filtered = con.sql("SELECT page_id, kept FROM webr.filtered_pairs").df()
    finally:
        con.close()
    return pairs, profiles, filtered


def test_pairs_from_cut_replies_are_truncated_and_never_asked_again(
        webr_env, corpora, monkeypatch, capsys):
    from dagster import AssetKey, AssetRecordsFilter, DagsterInstance

    web_en_1k = str(corpora / "webr-sample" / "web_en_1k.json")
    # A small window: (2700 - 1000 - 1024) tokens x 3.5 = 2366 characters of page text.
    monkeypatch.setenv("WEBR_CONTEXT_TOKENS", "2700")
    monkeypatch.setenv("WEBR_MAX_TOKENS", "1000")
    with LoopbackOpenAI(length_fn=_cut_a_quarter) as server:
        monkeypatch.setenv("WEBR_API_BASE", server.base_url)
        assert main(["run", web_en_1k, "--limit", "60"]) == 0
        con = duckdb.connect(str(webr_env / "llm_calls.duckdb"), read_only=True)
        cut = {key for (key,) in con.execute(
            "SELECT call_key FROM llm_calls WHERE status = 'ok' AND finish_reason = 'length'"
        ).fetchall()}
        con.close()
        assert len(cut) == len(server.length_reply_keys) > 0
        pairs, profiles, filtered = _tables(webr_env)

        profile_cut = set(profiles.loc[profiles["call_key"].isin(cut), "page_id"])
        expected = profiles["page_id"].map(lambda p: "truncated" if p in profile_cut else "ok")
        assert (profiles["status"] == expected).all()
        request_cut = pairs["request_call_key"].isin(cut)
        response_cut = ~request_cut & pairs["response_call_key"].isin(cut)
        whole = ~request_cut & ~response_cut
        assert (pairs.loc[request_cut, "status"] == "truncated").all()
        assert pairs.loc[request_cut, "response"].isna().all()  # no answer paid for a cut request
        assert pairs.loc[request_cut, "request"].notna().all()  # but the cut request is kept
        assert (pairs.loc[response_cut, "status"] == "truncated").all()
        assert pairs.loc[response_cut, "response"].notna().all()
        # A cut profile or first answer only steers: the pair's own texts decide.
        assert (pairs.loc[whole, "status"] == "ok").all()
        assert request_cut.sum() and response_cut.sum()
        assert (whole & pairs["page_id"].isin(profile_cut)).sum()
        truncated_pages = set(pairs.loc[pairs["status"] == "truncated", "page_id"])
        assert not filtered.loc[filtered["page_id"].isin(truncated_pages), "kept"].any()

        # The page cut sized from WEBR_CONTEXT_TOKENS reached the sampled texts, and the
        # per-domain metadata counts the pages it cut.
        assert pairs["sampled_text"].str.len().max() <= 2366
        assert 0 < pairs["truncated"].sum() < len(pairs)
        instance = DagsterInstance.get()
        counted = 0
        for asset in ("instruction_side_pairs", "response_side_pairs"):
            for domain in pairs["domain"].unique():
                [record] = instance.fetch_materializations(AssetRecordsFilter(
                    asset_key=AssetKey(asset), asset_partitions=[domain]), limit=1).records
                counted += record.asset_materialization.metadata["input_truncated"].value
        assert counted == pairs["truncated"].sum()

        statuses = pairs.set_index("page_id")["status"]
        server.reset_counters()
        assert main(["run", web_en_1k, "--limit", "60"]) == 0
        assert server.requests_total == 0  # the cut replies were paid for once
        again, _, _ = _tables(webr_env)
        assert again.set_index("page_id")["status"].sort_index().equals(statuses.sort_index())


# -- the page cut --------------------------------------------------------------------------


def test_a_model_litellm_knows_gets_a_cut_from_its_context_window():
    window = litellm.get_model_info("gpt-4o-mini")["max_input_tokens"]
    cut = LLMResource(model="gpt-4o-mini").input_cut(None)
    assert cut.chars == int((window - 4096 - PROMPT_OVERHEAD_TOKENS) * CUT_CHARS_PER_TOKEN)
    assert str(window) in cut.reason
    smaller = LLMResource(model="gpt-4o-mini", max_tokens=1000).input_cut(None)
    assert smaller.chars - cut.chars == int(3096 * CUT_CHARS_PER_TOKEN)


@pytest.fixture
def home(tmp_path, monkeypatch):
    for name in ("WEBR_MODEL", "WEBR_MAX_TOKENS", "WEBR_CONTEXT_TOKENS", "WEBR_MAX_INPUT_CHARS",
                 "WEBR_TOP_P", "WEBR_TEMPLATES"):
        monkeypatch.delenv(name, raising=False)
    return WebRHome(tmp_path / "home").ensure()


def _cut(home):
    return llm_from_env(home).input_cut(settings_from_env(home).max_input_chars)


def test_an_unknown_model_is_cut_only_when_its_window_is_set(home, monkeypatch):
    monkeypatch.setenv("WEBR_MODEL", "openai/my-own-vllm-model")
    uncut = _cut(home)
    assert uncut.chars is None and "unknown" in uncut.reason
    monkeypatch.setenv("WEBR_CONTEXT_TOKENS", "8192")
    monkeypatch.setenv("WEBR_MAX_TOKENS", "2048")
    assert _cut(home).chars == int((8192 - 2048 - PROMPT_OVERHEAD_TOKENS) * CUT_CHARS_PER_TOKEN)
    monkeypatch.setenv("WEBR_MAX_INPUT_CHARS", "5000")  # an explicit cut wins
    assert _cut(home).chars == 5000
    monkeypatch.setenv("WEBR_MAX_INPUT_CHARS", "0")  # 0: the method's own no cut
    assert _cut(home).chars is None


def test_a_window_too_small_for_the_reply_is_refused():
    with pytest.raises(ValueError, match="WEBR_MAX_TOKENS"):
        LLMResource(model="openai/x", context_tokens=4096, max_tokens=4096).input_cut(None)


def test_token_cap_and_cut_defaults(home, monkeypatch):
    assert WebRSettings().max_input_chars is None  # sized from the model, not a fixed 12000
    built_in = llm_from_env(home)
    assert built_in.max_tokens == LOCAL_MAX_TOKENS
    assert _cut(home).chars == LOCAL_MAX_INPUT_CHARS  # the built-in model's small cut
    monkeypatch.setenv("WEBR_MODEL", "openai/gpt-4o-mini")
    assert llm_from_env(home).max_tokens == 4096
    assert LLMResource(model="openai/x").max_tokens == 4096
    monkeypatch.setenv("WEBR_MAX_TOKENS", "512")
    assert llm_from_env(home).max_tokens == 512


def test_estimate_uses_the_cut_the_stages_use(webr_env, corpora, monkeypatch, capsys):
    web_en_1k = str(corpora / "webr-sample" / "web_en_1k.json")

    def prompt_tokens() -> int:
        assert main(["estimate", web_en_1k, "--limit", "30"]) == 0
        return int(re.search(r"prompt tokens\s+(\d+)", capsys.readouterr().out).group(1))

    uncut = prompt_tokens()  # openai/loopback: window unknown, no cut
    monkeypatch.setenv("WEBR_CONTEXT_TOKENS", "2700")
    monkeypatch.setenv("WEBR_MAX_TOKENS", "1000")
    assert prompt_tokens() < uncut


# -- top_p ---------------------------------------------------------------------------------


def test_top_p_from_the_environment_reaches_the_server(webr_env, loopback, monkeypatch):
    def one_call(i):
        # (the key in place of its EnvVar, which only a Dagster run resolves)
        resource = llm_from_env(WebRHome(webr_env), call_processes=0, api_key="sk-test")
        with resource.open_session("r") as session:
            async def one():
                return await session.call(_messages(i), stage="t", page_id="p", template="t@v1")
            [result] = session.run([one])
        assert result.ok

    one_call(1)
    assert [top_p for _, top_p, _ in loopback.sampling_seen] == [None]  # unset: not sent
    loopback.reset_counters()
    monkeypatch.setenv("WEBR_TOP_P", "0.9")
    monkeypatch.setenv("WEBR_TEMPERATURE", "0.6")
    one_call(2)
    assert dict(loopback.sampling_seen) == {(0.6, 0.9, 4096): 1}
