"""Mutation testing: break each feature the README promises, one at a time, and see which
test notices.

    .venv/bin/python bench/mutants.py [--only NAME ...] [--list] [--no-baseline] [--timeout S]

The repository's files (``git ls-files``, tracked and untracked but not ignored) are
copied once into a snapshot, so every mutant sees the same code even while someone edits
the working tree (which is never touched). For every mutant the snapshot is copied to
``/tmp/webr-mutants/<name>/main`` beside a ``shared`` symlink to the corpora, one exact
search/replace is made in one source file (a search text that is not there exactly once
is an error, so a mutant cannot go stale without a sound), and the few tests that should
catch it run with ``pytest -x`` in that copy. Prints: feature | mutation | tests run |
caught by (the first failing test) or SURVIVED. A test file that does not even import
counts as broken, not as a catch. Exits 1 if a mutant survived, 2 if one could not be
applied or its tests could not run.

A baseline first runs every selected test on an unmutated copy: a test that already fails
there would "catch" every mutant, so the table would mean nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PYTHON = ROOT / ".venv" / "bin" / "python"
WORK = Path("/tmp/webr-mutants")

LLM = "webr_dagster/resources/llm.py"
RESOURCE_TESTS = "tests/test_llm_resource.py"
ASSET_TESTS = "tests/test_filtered_and_split_assets.py"
DECONTAMINATED = "webr_dagster/assets/decontaminated.py"
GATES = "webr_dagster/webr/quality_gates.py"
GATE_TESTS = "tests/test_quality_gates.py"


@dataclass
class Mutant:
    name: str
    feature: str
    mutation: str
    path: str
    edits: list[tuple[str, str]]  # exact (search, replace) pairs, each found exactly once
    tests: list[str]


MUTANTS = [
    Mutant("ledger-reuse-off", "ledger reuse", "answered_keys() returns an empty set",
           "webr_dagster/resources/call_ledger.py",
           [("return {row[0] for row in rows}", "return set()")],
           [f"{RESOURCE_TESTS}::test_calls_are_concurrent_and_answered_from_ledger_on_rerun"]),
    Mutant("ledger-at-end", "ledger written during a stage",
           "no periodic or batch flush: rows written when the stage ends", LLM,
           [("            await asyncio.sleep(LEDGER_FLUSH_SECONDS)\n            self.flush()",
             "            await asyncio.sleep(LEDGER_FLUSH_SECONDS)"),
            ("        if len(self._pending_rows) >= LEDGER_BATCH:\n            self.flush()",
             "        if len(self._pending_rows) >= LEDGER_BATCH:\n            pass")],
           [f"{RESOURCE_TESTS}::test_replies_reach_the_ledger_file_while_the_stage_runs"]),
    Mutant("no-retries", "retries", "a failed attempt is never retried", LLM,
           [("if not reply.retry or attempts >= res.max_attempts:", "if True:")],
           [f"{RESOURCE_TESTS}::test_faults_are_retried_and_nothing_is_paid_twice"]),
    Mutant("backoff-zero", "exponential backoff", "the wait between attempts is 0 s", LLM,
           [("await asyncio.sleep(backoff_seconds(attempts,",
             "await asyncio.sleep(0 * backoff_seconds(attempts,")],
           [f"{RESOURCE_TESTS}::test_each_retry_waits_the_backoff_of_its_attempt",
            f"{RESOURCE_TESTS}::test_retry_after_is_waited_before_the_next_attempt"]),
    Mutant("backoff-flat", "exponential backoff", "the backoff bound does not grow", LLM,
           [("min(cap, base * 2 ** (attempt - 1))", "min(cap, base)")],
           [f"{RESOURCE_TESTS}::test_backoff_grows_to_its_cap_with_full_jitter",
            f"{RESOURCE_TESTS}::test_each_retry_waits_the_backoff_of_its_attempt"]),
    Mutant("retry-after-ignored", "Retry-After honoured",
           "the session passes no Retry-After to the backoff", LLM,
           [("res.backoff_cap_s, reply.retry_after))", "res.backoff_cap_s, None))")],
           [f"{RESOURCE_TESTS}::test_retry_after_is_waited_before_the_next_attempt"]),
    Mutant("retry-after-unread", "Retry-After honoured",
           "the Retry-After header is not read from the failure",
           "webr_dagster/resources/completion.py",
           [("                return float(value)", "                return None")],
           [f"{RESOURCE_TESTS}::test_failures_from_a_real_server_are_classified",
            f"{RESOURCE_TESTS}::test_retry_after_is_waited_before_the_next_attempt"]),
    Mutant("rate-limiter-noop", "RPM and TPM limits", "the session never waits for the limiter",
           LLM, [("await self._limiter.acquire(prompt_chars // 4 + res.max_tokens)", "pass")],
           ["tests/test_rate_limit.py"]),
    Mutant("tpm-ignored", "RPM and TPM limits", "the limiter gets no tokens-per-minute limit",
           LLM, [("res.requests_per_minute, res.tokens_per_minute)",
                  "res.requests_per_minute, None)")],
           ["tests/test_rate_limit.py"]),
    Mutant("spending-cap-off", "spending cap", "the cap is never checked", LLM,
           [("        cap = self.resource.max_cost_usd\n        if cap is None:",
             "        cap = None\n        if cap is None:")],
           [f"{RESOURCE_TESTS}::test_spending_cap_stops_new_calls_and_keeps_paid_ones"]),
    Mutant("dedup-off-filtered", "near-duplicates removed (filtered_pairs, per domain)",
           "filtered_pairs does not call mark_near_duplicates",
           "webr_dagster/assets/filtered.py",
           [("    frame = mark_near_duplicates(ruled, settings.dedup_threshold, "
             "settings.dedup_permutations,\n                                 settings.dedup_features)",
             "    frame = ruled")],
           [ASSET_TESTS]),
    Mutant("dedup-3gram-default", "near-duplicates on word unigrams (the method's features)",
           "the default features are word 3-grams", "webr_dagster/webr/postprocess.py",
           [('DEDUP_FEATURES = "unigram"', 'DEDUP_FEATURES = "3gram"')],
           ["tests/test_postprocess.py", ASSET_TESTS]),
    Mutant("truncated-kept", "replies cut at the token cap are dropped",
           "a truncated pair counts as generated", "webr_dagster/webr/postprocess.py",
           [('    if status == "ok":\n        return None',
             '    if status in ("ok", TRUNCATED):\n        return None')],
           [ASSET_TESTS, "tests/test_chatty_and_cut_replies_end_to_end.py"]),
    Mutant("finish-reason-unread", "replies cut at the token cap are dropped",
           "the reply's finish_reason is not read", "webr_dagster/resources/completion.py",
           [('    finish_reason = getattr(choice, "finish_reason", None)',
             "    finish_reason = None")],
           ["tests/test_truncation_and_context.py"]),
    Mutant("chatty-kept", "chatty preambles and wrapping quotes stripped",
           "a 'Here is ...:' line is never recognised", "webr_dagster/webr/postprocess.py",
           [("    if _PREAMBLE.fullmatch(first.strip()):", "    if False:")],
           ["tests/test_postprocess.py", ASSET_TESTS]),
    Mutant("language-not-identified", "language identified from the text",
           "every text's language is unknown", "webr_dagster/webr/quality.py",
           [("    sample = (text or \"\")[:_LANGUAGE_SAMPLE_CHARS]\n",
             "    return UNKNOWN_LANGUAGE\n")],
           ["tests/test_language_id.py"]),
    Mutant("event-batches-half-written", "Dagster's event log writes a batch whole",
           "each event of a batch is committed on its own",
           "webr_dagster/event_log_storage.py",
           [("        self._batch.connections = {}\n", "        self._batch.connections = None\n")],
           ["tests/test_event_log_storage.py"]),
    Mutant("url-secrets-published", "the export publishes no credentials",
           "the export writes source_url as crawled", "webr_dagster/webr/export.py",
           [('        rows = [{**row, "source_url": public_url(row.get("source_url"))} for row in rows]',
             "        pass")],
           ["tests/test_public_url.py"]),
    Mutant("explain-without-pair-calls", "webr explain shows every call behind an example",
           "only the profile call is looked up", "webr_dagster/explain.py",
           [('        keys += [story["pair"][column] for column in CALL_KEY_COLUMNS]',
             "        pass")],
           ["tests/test_explain.py"]),
    Mutant("warehouse-insert-by-position", "a new column does not break an old warehouse",
           "rows are inserted by position", "webr_dagster/resources/storage.py",
           [("INSERT INTO {table} BY NAME SELECT", "INSERT INTO {table} SELECT")],
           ["tests/test_warehouse_schema.py"]),
    Mutant("dedup-off-splits", "near-duplicates removed (across domains, before the splits)",
           "decontaminated_pairs skips mark_cross_domain_duplicates", DECONTAMINATED,
           [("    mark_cross_domain_duplicates(rows, settings)\n", "")],
           [ASSET_TESTS]),
    Mutant("contamination-off", "no benchmark prompt reaches the splits",
           "decontaminated_pairs marks nothing contaminated", DECONTAMINATED,
           [("    mark_contaminated(rows, index)\n", "")],
           ["tests/test_decontamination_end_to_end.py"]),
    Mutant("mix-off", "WI : WR = 2 : 1", "sft_splits keeps every pair, no mixing",
           "webr_dagster/assets/splits.py",
           [('mixed, trimmed = take_by_targets(candidates, targets, "mix_rank")',
             "mixed, trimmed = candidates, []")],
           [ASSET_TESTS]),
    Mutant("split-per-row", "page-disjoint splits", "each example draws its own split",
           "webr_dagster/assets/splits.py",
           [('"split": page_split[r["page_id"]],',
             '"split": "test_sft" if unit_hash(settings.seed, r["user_content"], "split") '
             '< settings.test_share else "train_sft",')],
           [f"{ASSET_TESTS}::test_a_page_keeps_its_split_when_its_example_is_regenerated",
            "tests/test_splits.py"]),
    Mutant("no-stratification", "domain-stratified splits", "all domains ranked as one",
           "webr_dagster/webr/splits.py",
           [('strata[(1, domain) if big else (0, "")].extend(domain_pages)',
             'strata[(0, "")].extend(domain_pages)')],
           [f"{ASSET_TESTS}::test_sft_splits_are_stratified_by_domain", "tests/test_splits.py"]),
    Mutant("rejection-dropped", "every rejection in page_rejections",
           "low_quality pages are left out of page_rejections", "webr_dagster/assets/pages.py",
           [('            rejected.append({**base, "stage": "clean", "reason": verdict[0],',
             '            verdict[0] == "low_quality" or rejected.append({**base, '
             '"stage": "clean", "reason": verdict[0],')],
           ["tests/test_cleaning_asset.py"]),
    Mutant("too-large-dropped", "every rejection in page_rejections",
           "too_large pages are left out of page_rejections", "webr_dagster/assets/pages.py",
           [('for page in raw_pages[oversized].to_dict("records")\n    ]',
             'for page in raw_pages[oversized].to_dict("records") if False\n    ]')],
           ["tests/test_cleaning_asset.py"]),
    Mutant("run-key-unsigned", "landing sensor run keys",
           "the run key is the path, without the file signature", "webr_dagster/sensors.py",
           [('RunRequest(run_key=f"{source}@{signature}", partition_key=source)',
             "RunRequest(run_key=source, partition_key=source)")],
           ["tests/test_sensors.py"]),
    Mutant("no-source-partition", "landing sensor partition requests",
           "no crawl_source partition is added", "webr_dagster/sensors.py",
           [("crawl_source_partitions.build_add_request(sorted(set(ready) - known))",
             "crawl_source_partitions.build_add_request([])")],
           ["tests/test_sensors.py"]),
    Mutant("domain-run-key", "domain sensor run keys",
           "the run key is the domain range, without the index event", "webr_dagster/sensors.py",
           [('RunRequest(run_key=f"{part[0]}..{part[-1]}@{max(latest_event[d] for d in part)}",',
             'RunRequest(run_key=f"{part[0]}..{part[-1]}",')],
           ["tests/test_sensors.py"]),
    Mutant("no-domain-partition", "domain sensor partition requests",
           "no domain partition is added", "webr_dagster/sensors.py",
           [("domain_partitions.build_add_request(new)", "domain_partitions.build_add_request([])")],
           ["tests/test_sensors.py"]),
    Mutant("check-disjoint-passes", "quality gates",
           "splits_are_page_disjoint always passes", GATES,
           [("return GateVerdict(not leaking,", "return GateVerdict(True,")], [GATE_TESTS]),
    Mutant("check-well-formed-passes", "quality gates",
           "examples_are_well_formed always passes", GATES,
           [("return GateVerdict(not bad,", "return GateVerdict(True,")], [GATE_TESTS]),
    Mutant("contamination-gate-passes", "quality gates",
           "no_benchmark_contamination always passes", GATES,
           [("return GateVerdict(not hits,", "return GateVerdict(True,")], [GATE_TESTS]),
    Mutant("capped-gate-blind", "quality gates",
           "no_reply_cut_at_token_cap ignores the ledger's finish_reason", GATES,
           [("if any(finish_reasons.get(key) == LENGTH",
             "if any(False and finish_reasons.get(key) == LENGTH")],
           [GATE_TESTS]),
    Mutant("mix-gate-passes", "quality gates", "mix_within_tolerance always passes", GATES,
           [("passed = off <= tolerance or p_value >= CHANCE_P_VALUE", "passed = True")],
           [GATE_TESTS]),
    Mutant("drop-gate-passes", "quality gates", "drop_share_under_ceiling always passes",
           GATES, [("return GateVerdict(not over,", "return GateVerdict(True,")], [GATE_TESTS]),
    Mutant("gates-not-blocking", "a failed gate stops the export",
           "the gates are not blocking", "webr_dagster/checks.py",
           [("description=text, blocking=True)", "description=text, blocking=False)")],
           ["tests/test_quality_gates_end_to_end.py::test_splits_stage_gates_block_the_export"]),
    Mutant("lake-conflict-not-retried", "a lake write conflict is retried whole",
           "in_transaction re-raises every error", "webr_dagster/resources/lake.py",
           [("                if not is_conflict(error):\n                    raise",
             "                if True:\n                    raise")],
           ["tests/test_lake_transactions.py"]),
    Mutant("ledger-not-in-lake", "the ledger lives in the lake", "open_ledger ignores the lake",
           LLM, [("        return CallLedger(self.ledger_path, location)",
                  "        return CallLedger(self.ledger_path)")],
           ["tests/test_ducklake_storage.py"]),
    Mutant("lake-files-kept", "lake maintenance", "maintenance deletes no old files",
           "webr_dagster/resources/lake.py",
           [("f\"CALL ducklake_cleanup_old_files('{LAKE}', cleanup_all => true)\"",
             "f\"SELECT 1 WHERE false\"")],
           ["tests/test_lake_maintenance.py"]),
    Mutant("card-without-plots", "the card shows the data", "the PNGs are not written",
           "webr_dagster/webr/export.py",
           [("        (staging / name).write_bytes(content)", "        pass")],
           [f"{ASSET_TESTS}::test_the_splits_are_exported_with_their_messages_card_and_plots"]),
    Mutant("checks-not-run", "asset checks' results",
           "the CLI's runs leave the asset checks out", "webr_dagster/runner.py",
           [("self.definitions = [*ALL_ASSETS, *ALL_CHECKS]", "self.definitions = [*ALL_ASSETS]")],
           ["tests/test_pipeline_webr_sample.py::test_web_en_1k_end_to_end_and_resume"]),
    Mutant("threshold-ignored", "quality thresholds",
           "the symbol rule uses a literal, not its constant", "webr_dagster/webr/quality.py",
           [("if symbols / n > MAX_SYMBOL_WORD_RATIO:", "if symbols / n > 0.1:")],
           ["tests/test_quality.py"]),
    Mutant("reader-eager", "readers stream", "the JSONL reader reads the whole file first",
           "webr_dagster/webr/readers.py",
           [("        yield from _iter_jsonl(source)\n    elif",
             "        yield from list(_iter_jsonl(source))\n    elif")],
           ["tests/test_readers.py"]),
    Mutant("cli-exit-0", "CLI exit codes", "webr run exits 0 when every call fails",
           "webr_dagster/cli.py",
           [('        print(f"webr run FAILED: {verdict}", file=sys.stderr, flush=True)\n'
             "        return 1",
             '        print(f"webr run FAILED: {verdict}", file=sys.stderr, flush=True)\n'
             "        return 0")],
           ["tests/test_cli_exit_and_signals.py::test_endpoint_down_exits_non_zero_with_the_reason"]),
    Mutant("sigterm-ignored", "stopping", "a stop request is never seen by the LLM sessions",
           "webr_dagster/resources/stop_request.py",
           [("    return _reason if _requested.is_set() else None", "    return None")],
           ["tests/test_cli_exit_and_signals.py::test_ctrl_c_exits_130",
            "tests/test_cli_exit_and_signals.py::"
            "test_sigterm_stops_a_many_domain_run_and_a_rerun_pays_nothing_twice"]),
    Mutant("worker-not-replaced", "dead call workers", "a dead worker is not replaced",
           "webr_dagster/resources/call_workers.py",
           [("restart = self.restarts < self.max_restarts", "restart = False")],
           ["tests/test_call_workers.py"]),
    Mutant("reply-journal-off", "no reply paid twice after SIGKILL",
           "replies reach only the DuckDB batches, not the journal", LLM,
           [("        self.ledger.journal(row)\n", "")],
           ["tests/test_llm_stage_faults_and_resume.py::"
            "test_sigkill_mid_stage_then_rerun_pays_nothing_twice"]),
    Mutant("budget-per-process", "rate limits across processes",
           "each process keeps a rate budget of its own", LLM,
           [('f"{budget_name(res.model_name, res.api_base, res.api_key)}.json"',
             'f"{budget_name(res.model_name, res.api_base, res.api_key)}-{os.getpid()}.json"')],
           ["tests/test_shared_rate_limit.py::test_two_processes_share_one_budget"]),
    Mutant("cli-ignores-pool", "launch paths queue on the pool",
           "webr run does not wait for runs launched elsewhere", "webr_dagster/runner.py",
           [("        told = False\n", "        return\n")],
           ["tests/test_launch_safety.py::"
            "test_webr_run_waits_for_a_run_that_holds_the_pool_and_frees_a_killed_ones"]),
    Mutant("sensor-reruns-queued", "the sensor does not redo others' work",
           "a run planned after the index is not taken into account", "webr_dagster/sensors.py",
           [("                       DagsterEventType.ASSET_MATERIALIZATION_PLANNED):",
             "                       ):")],
           ["tests/test_domain_batches.py::"
            "test_the_domain_sensor_leaves_alone_domains_a_queued_run_will_build"]),
    Mutant("batch-dedup-across-domains", "domains in batches give the same data",
           "filtered_pairs removes near-duplicates across the run's domains",
           "webr_dagster/assets/filtered.py",
           [('            groups[(row["domain"], row["role"])].append(row)',
             '            groups[(None, row["role"])].append(row)')],
           ["tests/test_domain_batches.py::"
            "test_filtered_pairs_in_a_batch_removes_near_duplicates_within_each_domain_only",
            "tests/test_domain_batches.py::"
            "test_one_batch_gives_the_data_and_metadata_of_one_run_per_domain"]),
]


def repository_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    return [name for name in listed if name and (ROOT / name).is_file()]


def take_snapshot(files: list[str]) -> Path:
    snapshot = WORK / "_snapshot"
    shutil.rmtree(snapshot, ignore_errors=True)
    for relative in files:
        target = snapshot / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, target)
    return snapshot


def make_copy(name: str, snapshot: Path) -> Path:
    home = WORK / name
    shutil.rmtree(home, ignore_errors=True)
    copy = home / "main"
    shutil.copytree(snapshot, copy)
    (home / "shared").symlink_to(SHARED)  # the tests look for ../shared/corpora
    return copy


def apply(mutant: Mutant, copy: Path) -> None:
    path = copy / mutant.path
    text = path.read_text()
    for search, replace in mutant.edits:
        found = text.count(search)
        if found != 1:
            raise LookupError(f"{mutant.path}: search text found {found} times, expected once:"
                              f"\n{search}")
        text = text.replace(search, replace)
    path.write_text(text)


def environment(copy: Path) -> dict[str, str]:
    # The venv's editable install points at the working tree: put the copy first.
    return {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}


def check_imports_from(copy: Path) -> None:
    where = subprocess.run(
        [str(PYTHON), "-c", "import webr_dagster; print(webr_dagster.__file__)"],
        cwd=copy, env=environment(copy), capture_output=True, text=True, check=True).stdout
    if not where.strip().startswith(str(copy)):
        raise RuntimeError(f"the copy imports webr_dagster from {where.strip()}, not {copy}")


def run_tests(copy: Path, tests: list[str], timeout: float) -> tuple[str, float]:
    """'' when every test passed, else the first failing test id, or BROKEN: ... when the
    tests could not run (a file that does not import, a timeout)."""
    command = [str(PYTHON), "-m", "pytest", "-x", "-q", "-rfE", "-p", "no:cacheprovider",
               "-p", "no:warnings", *tests]
    started = time.monotonic()
    try:
        done = subprocess.run(command, cwd=copy, env=environment(copy), capture_output=True,
                              text=True, timeout=timeout, start_new_session=True)
    except subprocess.TimeoutExpired:
        return f"BROKEN: timeout after {timeout:.0f} s", time.monotonic() - started
    took = time.monotonic() - started
    if done.returncode == 0:
        return "", took
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", done.stdout, re.M)
    if failed and "::" in failed[0]:
        return failed[0], took
    return (f"BROKEN: pytest exit {done.returncode} without a failing test: "
            f"{done.stdout[-400:]}{done.stderr[-400:]}", took)


def short(tests: list[str]) -> str:
    return ", ".join(t.replace("tests/", "") for t in tests)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run these mutants only")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the unmutated run of the selected tests")
    parser.add_argument("--timeout", type=float, default=420.0, help="seconds per mutant")
    args = parser.parse_args(argv)

    mutants = [m for m in MUTANTS if not args.only or m.name in args.only]
    if args.list:
        for m in MUTANTS:
            print(f"{m.name:26} {m.feature}: {m.mutation}")
        return 0
    if args.only and len(mutants) != len(args.only):
        parser.error(f"unknown mutant in {args.only}; see --list")
    WORK.mkdir(parents=True, exist_ok=True)
    snapshot = take_snapshot(repository_files())

    def present(copy: Path, tests: list[str]) -> list[str]:
        return [t for t in tests if (copy / t.split("::")[0]).is_file()]

    if not args.no_baseline:
        copy = make_copy("baseline", snapshot)
        check_imports_from(copy)
        tests = present(copy, sorted({t for m in mutants for t in m.tests}))
        print(f"baseline: {len(tests)} test selections on an unmutated copy ...", flush=True)
        failed, took = run_tests(copy, tests, args.timeout * 2)
        if failed:
            print(f"baseline FAILED ({failed}): fix that first; no mutant result would mean "
                  "anything.", file=sys.stderr)
            return 2
        print(f"baseline passed in {took:.0f} s", flush=True)

    rows, survived, broken, pending = [], 0, 0, 0
    for mutant in mutants:
        copy = make_copy(mutant.name, snapshot)
        try:
            apply(mutant, copy)
        except LookupError as error:
            print(f"MUTANT {mutant.name} COULD NOT BE APPLIED: {error}", file=sys.stderr)
            rows.append((mutant, "-", "NOT APPLIED (search text changed)"))
            broken += 1
            continue
        check_imports_from(copy)
        tests = present(copy, mutant.tests)
        if not tests:
            rows.append((mutant, short(mutant.tests), "pending: test file not written yet"))
            pending += 1
            continue
        caught, took = run_tests(copy, tests, args.timeout)
        verdict = caught or "SURVIVED"
        if caught.startswith("BROKEN"):
            print(f"MUTANT {mutant.name}: {caught}", file=sys.stderr)
            verdict, broken = "BROKEN (see above)", broken + 1
        survived += not caught
        rows.append((mutant, short(tests), verdict))
        print(f"  {mutant.name}: {verdict} ({took:.0f} s)", flush=True)
        shutil.rmtree(WORK / mutant.name, ignore_errors=True)

    print()
    print("| feature | mutation | tests run | caught by |")
    print("| --- | --- | --- | --- |")
    for mutant, tests, verdict in rows:
        shown = verdict.replace("tests/", "") if verdict != "SURVIVED" else "**SURVIVED**"
        print(f"| {mutant.feature} | {mutant.mutation} (`{mutant.name}`) | {tests} | {shown} |")
    caught_count = len(rows) - survived - broken - pending
    print(f"\n{len(rows)} mutants: {caught_count} caught, {survived} survived, "
          f"{broken} not applied or not run, {pending} pending")
    return 2 if broken else 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
