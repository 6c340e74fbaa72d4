"""Each blocking quality gate fails on purpose: the run says which gate and by how much,
the export is not written (the previous one stays byte for byte), and after the cause is
fixed the gate passes and the export is written again."""

import hashlib
import json
import zlib

import duckdb
import pytest

import webr_dagster.assets.filtered as filtered_module
import webr_dagster.assets.splits as splits_module
from tests.support.loopback_openai import LoopbackOpenAI, default_reply
from webr_dagster.checks import GATES
from webr_dagster.cli import main
from webr_dagster.runner import Runner, failed_gates, metadata_of

PAGES = "60"


@pytest.fixture
def web_en_1k(corpora):
    return str(corpora / "webr-sample" / "web_en_1k.json")


def snapshot(folder) -> dict[str, str]:
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def gate_verdicts(result) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def build_splits(only=None):
    """The splits stage as `webr run` (or the UI's job) runs it; ``only``: a subset of
    its assets, as a user may materialize in the UI."""
    runner = Runner()
    if only:
        return runner._materialize(only, raise_on_error=False)
    return runner.build_splits()


def cut_some(messages) -> bool:
    return zlib.crc32(json.dumps(messages, sort_keys=True).encode()) / 2**32 < 0.1


def assert_blocked(result, gate: str, export, before: dict) -> None:
    verdicts = gate_verdicts(result)
    assert set(verdicts) == set(GATES)
    assert verdicts[gate] is False, verdicts
    assert not result.success
    assert "sft_export" not in {e.asset_key.path[-1] for e in
                                (m.step_materialization_data.materialization for m in
                                 result.get_asset_materialization_events())}
    assert snapshot(export) == before  # the previous export, byte for byte
    assert any(line.startswith(gate) for line in failed_gates(result))


def assert_passes(result, export, before: dict) -> dict:
    assert result.success and all(gate_verdicts(result).values()), gate_verdicts(result)
    after = snapshot(export)
    assert (export / "README.md").exists()
    return after


def test_splits_stage_gates_block_the_export(webr_env, web_en_1k, tmp_path, monkeypatch, capsys):
    export = webr_env / "exports" / "webr-sft"
    with LoopbackOpenAI(length_fn=cut_some) as server:
        monkeypatch.setenv("WEBR_API_BASE", server.base_url)
        assert main(["run", web_en_1k, "--limit", PAGES]) == 0
        assert server.length_reply_keys  # some replies were cut, and dropped
        published = snapshot(export)

        # 1. A benchmark added after the set was decontaminated: the gate re-checks the
        # finished set, so a UI run of the splits alone cannot ship a stale set.
        con = duckdb.connect(str(webr_env / "warehouse.duckdb"), read_only=True)
        leaked = json.loads(
            con.execute("SELECT messages FROM webr.sft_splits LIMIT 1").fetchone()[0])
        con.close()
        quote = " ".join(leaked[1]["content"].split()[:30])
        private = tmp_path / "private_eval.jsonl"
        private.write_text(json.dumps({"id": "q1", "prompt": quote}) + "\n")
        monkeypatch.setenv("WEBR_DECONTAMINATE", str(private))
        result = build_splits(only=["sft_splits", "sft_export"])
        assert_blocked(result, "no_benchmark_contamination", export, published)
        fixed = build_splits()  # decontaminated_pairs again, with the new benchmark
        published = assert_passes(fixed, export, published)
        # The UI shows the card's plots on the splits' materialization.
        plots = metadata_of(fixed, "sft_splits", "turn_length_plots")
        assert plots.count("](data:image/png;base64,iVBOR") == 2
        con = duckdb.connect(str(webr_env / "warehouse.duckdb"), read_only=True)
        assert con.execute("SELECT count(*) FROM webr.decontaminated_pairs WHERE benchmark = "
                       "'private_eval' AND benchmark_prompt_id = 'q1'").fetchone()[0] == 1
        con.close()

        # 2. A page in both splits (a fault in the split assignment).
        real_split = splits_module.mixed_and_split

        def leaking_split(candidates, settings):
            rows, trimmed = real_split(candidates, settings)
            other = "test_sft" if rows[0]["split"] == "train_sft" else "train_sft"
            copy = {**rows[0], "split": other,
                    "messages": [rows[0]["messages"][0], {"role": "assistant",
                                                          "content": "another answer"}]}
            copy["prompt_id"] = "0" * 64
            return rows + [copy], trimmed

        monkeypatch.setattr(splits_module, "mixed_and_split", leaking_split)
        assert_blocked(build_splits(), "splits_are_page_disjoint", export, published)
        monkeypatch.setattr(splits_module, "mixed_and_split", real_split)
        published = assert_passes(build_splits(), export, published)

        # 3. An example with an empty assistant turn.
        real_messages = splits_module.sft_messages
        calls = []

        def one_empty(user, assistant):
            calls.append(1)
            return real_messages(user, "   " if len(calls) == 1 else assistant)

        monkeypatch.setattr(splits_module, "sft_messages", one_empty)
        assert_blocked(build_splits(), "examples_are_well_formed", export, published)
        monkeypatch.setattr(splits_module, "sft_messages", real_messages)
        published = assert_passes(build_splits(), export, published)

        # 4. Replies cut at the token cap let through by the filters: the gate reads the
        # ledger's finish_reason, not the filters' verdict.
        real_reason = filtered_module.generation_drop_reason
        monkeypatch.setattr(filtered_module, "generation_drop_reason",
                            lambda status: None if status == "truncated" else real_reason(status))
        capsys.readouterr()
        assert main(["run", web_en_1k, "--limit", PAGES]) == 1
        out = capsys.readouterr().out
        assert "QUALITY GATES FAILED" in out and "no_reply_cut_at_token_cap" in out
        assert "the export was not written" in out
        assert snapshot(export) == published
        monkeypatch.setattr(filtered_module, "generation_drop_reason", real_reason)
        assert main(["run", web_en_1k, "--limit", PAGES]) == 0
        assert snapshot(export) == published  # the same data as before the fault


def refuses_refinements(messages) -> str:
    """A model that answers everything but refuses every Web-as-Response refinement."""
    if "[End of answer]" in str(messages[-1].get("content")):
        return "I'm sorry, but I can't help with that."
    return default_reply(messages)


def refuses_most(messages) -> str:
    if zlib.crc32(json.dumps(messages, sort_keys=True).encode()) / 2**32 < 0.8:
        return "I'm sorry, but I can't help with that."
    return default_reply(messages)


@pytest.mark.parametrize("model, gate", [(refuses_refinements, "mix_within_tolerance"),
                                         (refuses_most, "drop_share_under_ceiling")])
def test_a_broken_model_is_stopped_at_the_gates(webr_env, web_en_1k, monkeypatch, capsys,
                                                model, gate):
    export = webr_env / "exports" / "webr-sft"
    with LoopbackOpenAI(reply_fn=model) as server:
        monkeypatch.setenv("WEBR_API_BASE", server.base_url)
        assert main(["run", web_en_1k, "--limit", PAGES]) == 1
        out = capsys.readouterr().out
        assert "QUALITY GATES FAILED" in out and gate in out
        assert not export.exists()  # nothing was ever published
    # The fix: a model that does not refuse (a new model name: new calls, not the ledger's).
    with LoopbackOpenAI() as server:
        monkeypatch.setenv("WEBR_API_BASE", server.base_url)
        monkeypatch.setenv("WEBR_MODEL", "openai/loopback-fixed")
        assert main(["run", web_en_1k, "--limit", PAGES]) == 0
        assert (export / "README.md").exists()
