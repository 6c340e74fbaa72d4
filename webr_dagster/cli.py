"""`webr` command line: run the whole method in-process on crawl files, estimate its cost,
extract one page, open the UI, or write a multi-machine deployment's files.

    webr run [PATH...] [--sample] [--limit N] [--max-cost USD] [--test-share F]
             [--variant NAME] [--workers N]
    webr estimate [PATH...] [--sample] [--limit N]
    webr extract FILE [--url URL]
    webr explain PROMPT_ID | --url URL [--json] [--variant NAME]
    webr doctor
    webr ui [--port 3000]
    webr deploy print-config --dagster-postgres URL --redis URL --lake-catalog C
                             --lake-data PATH [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


SAMPLE_CRAWL = Path(__file__).resolve().parent / "sample_crawl"
STAGES = (("raw pages", "raw_pages", "pages"), ("cleaned pages", "cleaned_pages", "pages"),
          ("rejected at cleaning", "page_rejections", "rejected"),
          ("author profiles", "author_profiles", "pages"),
          ("WI pairs", "instruction_side_pairs", "pairs"),
          ("WR pairs", "response_side_pairs", "pairs"),
          ("kept after filters", "filtered_pairs", "kept"))
# Failures that every further domain would meet too: the run stops at the first.
FATAL_ERRORS = ("CallWorkersFailed", "ModelNotAnswering")


def _say(message: str) -> None:
    print(message, flush=True)


def _sources(args) -> list[str]:
    from .webr.readers import find_crawl_sources

    paths = list(args.paths) + ([str(SAMPLE_CRAWL)] if args.sample else [])
    return find_crawl_sources(paths)


def _runner(args):
    from .runner import Runner

    return Runner(max_cost_usd=getattr(args, "max_cost", None),
                  pages_per_domain_limit=args.limit,
                  test_share=getattr(args, "test_share", None),
                  variant=getattr(args, "variant", None))


def _index(runner, sources):
    def progress(position, source, records, domains):
        _say(f"[index {position}/{len(sources)}] {source}: {records} records, "
             f"{sum(domains.values())} pages in {len(domains)} domains")

    return runner.index(sources, progress)


@dataclass
class RunOutcome:
    """What one `webr run` did, for its summary and its exit status."""

    domains: int = 0
    domains_done: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (domain, cause)
    fatal: str | None = None  # a cause that stops every further domain
    splits_failure: str | None = None
    totals: Counter = field(default_factory=Counter)
    rejections: Counter = field(default_factory=Counter)
    split_counts: dict = field(default_factory=dict)


def _describe_failure(result) -> str:
    from .runner import failure_of

    failure = failure_of(result)
    return f"{failure[0]}: {failure[1]}" if failure else "unknown error"


@dataclass
class BatchResult:
    """What one domain run came to, as plain data (it may come from another process)."""

    run_id: str
    success: bool
    failure: tuple[str, str] | None
    by_domain: dict


def _run_batch(runner, batch: list[str]) -> BatchResult:
    from .runner import failure_of, metadata_by_domain

    result = runner.run_domains(batch)
    return BatchResult(result.run_id, result.success, failure_of(result),
                       metadata_by_domain(result) if result.success else {})


def _run_batch_in_worker(runner_options: dict, batch: list[str]) -> BatchResult:
    """A `--workers` process: its own Runner (Dagster instance, LLM workers), one batch."""
    from .runner import Runner

    return _run_batch(Runner(**runner_options), batch)


def _batch_results(runner, batches: list[list[str]], workers: int):
    """(batch, BatchResult) in batch order; with ``workers`` > 1, that many runs at once,
    each in a process of its own (only a DuckLake takes several writers)."""
    from .resources.stop_request import stop_reason

    if workers <= 1:
        for batch in batches:
            if stop_reason():
                return
            yield batch, _run_batch(runner, batch)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers,
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_run_batch_in_worker, runner.options, batch)
                   for batch in batches]
        for batch, future in zip(batches, futures):
            if stop_reason():
                for pending in futures:
                    pending.cancel()
                return
            yield batch, future.result()


def _run_domains(runner, domains: list[str], outcome: RunOutcome, workers: int = 1) -> None:
    """Run the domains in batches (one Dagster run per contiguous range of partitions)."""
    from .resources.stop_request import stop_reason

    done = 0
    batches = runner.domain_batches(domains, workers)
    for batch, result in _batch_results(runner, batches, workers):
        first = done + 1
        done += len(batch)
        where = (f"[domains {first}-{done}/{len(domains)}]" if len(batch) > 1
                 else f"[domain {first}/{len(domains)}] {batch[0]}:")
        if not result.success:
            if stop_reason():
                runner.mark_canceled(result.run_id, stop_reason())
                _say(f"{where} CANCELED (run {result.run_id}); its replies so far are in "
                     "the ledger")
                return
            cause = f"{result.failure[0]}: {result.failure[1]}" if result.failure \
                else "unknown error"
            outcome.failures.extend((domain, cause) for domain in batch)
            _say(f"{where} FAILED: {cause} (run {result.run_id})")
            if (result.failure or ("",))[0] in FATAL_ERRORS:
                outcome.fatal = cause
                return
            continue
        by_domain = result.by_domain
        for position, domain in enumerate(batch, first):
            metadata = by_domain.get(domain, {})
            stage = {label: (metadata.get(asset) or {}).get(key, 0)
                     for label, asset, key in STAGES}
            outcome.domains_done += 1
            outcome.totals.update(stage)
            outcome.rejections.update(
                (metadata.get("page_rejections") or {}).get("reasons") or {})
            _say(f"[domain {position}/{len(domains)}] {domain}: {stage['raw pages']} pages -> "
                 f"{stage['cleaned pages']} cleaned -> {stage['author profiles']} profiles -> "
                 f"{stage['WI pairs']} WI + {stage['WR pairs']} WR -> "
                 f"{stage['kept after filters']} kept")


def _run_all(runner, sources: list[str], outcome: RunOutcome, workers: int = 1) -> None:
    from .resources.stop_request import stop_reason
    from .runner import failed_gates, metadata_of

    index = _index(runner, sources)
    outcome.totals["crawl records"] = index.records
    outcome.rejections.update({k: v for k, v in index.statuses.items() if k != "kept"})
    domains = sorted(index.pages_by_domain)
    outcome.domains = len(domains)
    if domains and workers <= 1:  # --workers processes start their own
        first_batch = runner.domain_batches(domains)[0]
        runner.llm.start_call_workers(sum(index.pages_by_domain[d] for d in first_batch))
    _run_domains(runner, domains, outcome, workers)
    if stop_reason() or outcome.fatal:
        return
    splits = runner.build_splits()
    gates = failed_gates(splits)
    if gates:
        export_dir = runner.resources["settings"].export_dir
        outcome.splits_failure = (
            f"quality gate{'s' if len(gates) > 1 else ''} failed, so the export was not "
            f"written ({export_dir} is as it was): " + "; ".join(gates))
        _say(f"QUALITY GATES FAILED (run {splits.run_id}):")
        for gate in gates:
            _say(f"  {gate}")
        _say(f"the export was not written; {export_dir} is as it was. The splits are in "
             "the warehouse (sft_splits) for inspection.")
    elif not splits.success:
        outcome.splits_failure = _describe_failure(splits)
        _say(f"building the splits FAILED: {outcome.splits_failure} (run {splits.run_id})")
    outcome.split_counts = metadata_of(splits, "sft_splits", "split_counts", {}) or {}


def _print_summary(runner, outcome: RunOutcome, llm: dict) -> None:
    _say("")
    _say("stage counts:")
    _say(f"  {'crawl records':<21}{outcome.totals['crawl records']}")
    for label, _, _ in STAGES:
        _say(f"  {label:<21}{outcome.totals[label]}")
    for split in ("train_sft", "test_sft"):
        _say(f"  {split:<21}{outcome.split_counts.get(split, 0)}")
    if outcome.rejections:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(outcome.rejections.items()))
        _say(f"not kept, by reason: {reasons}")
    _say(f"LLM: {llm['sent']} calls sent, {llm['cached']} answered from the ledger, "
         f"{llm['failed']} failed; {llm['prompt_tokens']} prompt + "
         f"{llm['completion_tokens']} completion tokens; ${llm['cost_usd']:.4f}"
         + (f" (price unknown for {llm['unpriced']} calls: set WEBR_INPUT_USD_PER_MTOK and "
            "WEBR_OUTPUT_USD_PER_MTOK)" if llm["unpriced"] else ""))
    if llm["errors"]:
        _say("LLM failures, by reason: " + ", ".join(
            f"{reason} {count}" for reason, count in Counter(llm["errors"]).most_common()))
    if llm["skipped_for_budget"]:
        _say(f"STOPPED AT THE SPENDING CAP (${runner.llm.max_cost_usd}): "
             f"{llm['skipped_for_budget']} calls were not started. Everything paid for "
             "is kept in the ledger; raise the cap and run again to finish without paying twice.")
    export_dir = runner.resources["settings"].export_dir
    _say(f"dataset: {export_dir} (datasets.load_dataset('{export_dir}'))")
    _say(f"warehouse: {runner.home.warehouse}")


def failure_verdict(outcome: RunOutcome, llm: dict, max_failed_share: float) -> str | None:
    """Why this run must not count as a success, in one line with the next step; None if
    it succeeded."""
    common = ", ".join(f"{reason} x{count}"
                       for reason, count in Counter(llm["errors"]).most_common(1))
    attempted = llm["sent"] + llm["failed"]
    if outcome.fatal:
        return (f"stopped: {outcome.fatal}. Next: check WEBR_MODEL / WEBR_API_BASE / "
                "WEBR_API_KEY with 'webr doctor', then run again (answered calls are not "
                "sent twice)")
    if outcome.failures:
        causes = Counter(cause for _, cause in outcome.failures)
        cause, count = causes.most_common(1)[0]
        return (f"{len(outcome.failures)} of {outcome.domains} domains failed (most "
                f"common, {count}x: {cause}). Next: read the failed run's log in 'webr ui', "
                "fix the cause, run again (finished domains reuse the ledger)")
    if attempted and llm["failed"] / attempted > max_failed_share:
        return (f"{llm['failed']} of {attempted} LLM calls failed, more than the "
                f"--max-failed-share of {max_failed_share:g} (most common: {common}). Next: "
                "check the provider with 'webr doctor', then run again: only the failed "
                "calls are sent")
    if outcome.splits_failure:
        if llm["skipped_for_budget"]:  # the partial set the cap left is what failed
            return (f"stopped at the spending cap, and the partial set failed: "
                    f"{outcome.splits_failure}. Next: raise --max-cost and run again "
                    "(paid calls are not sent twice)")
        return f"building the splits failed: {outcome.splits_failure}"
    examples = sum(outcome.split_counts.values())
    if outcome.totals["cleaned pages"] and not examples:
        return (f"{outcome.totals['cleaned pages']} pages were cleaned but no example reached "
                f"the splits ({outcome.totals['kept after filters']} pairs kept after "
                f"filters; LLM failures: {common or 'none'}). Next: look at filtered_pairs' "
                "drop_reason in the warehouse, or at the LLM failures above")
    return None


def run_command(args: argparse.Namespace) -> int:
    started = time.monotonic()
    sources = _sources(args)
    if not sources:
        _say("no crawl files found (WARC, WET, JSONL, WebR JSON, or folders of .html)")
        return 2
    runner = _runner(args)
    workers = args.workers or 1
    if workers > 1 and runner.home.lake is None:
        _say("--workers needs WEBR_STORAGE=ducklake: the DuckDB file takes one writer")
        return 2
    _say(f"webr: {len(sources)} crawl source(s); model {runner.llm.model_name}; "
         f"home {runner.home.root}" + (f"; {workers} domain runs at once" if workers > 1
                                       else ""))
    _say(_variant_line(runner))
    outcome = RunOutcome()
    signum = run_stoppable(lambda: _run_all(runner, sources, outcome, workers))
    llm = runner.llm_totals()
    _print_summary(runner, outcome, llm)
    _say(f"took {time.monotonic() - started:.0f} s")
    if signum is not None:
        name = signal.Signals(signum).name
        _say(f"STOPPED by {name} after {outcome.domains_done} of {outcome.domains} domains. "
             "Every reply that came back is in the ledger: run the same command again to "
             "finish without paying twice.")
        return 128 + signum
    verdict = failure_verdict(outcome, llm, args.max_failed_share)
    if verdict:
        print(f"webr run FAILED: {verdict}", file=sys.stderr, flush=True)
        return 1
    return 0


def _variant_line(runner) -> str:
    from .resources.environment import variant_schema
    from .webr.variants import get_variant

    settings = runner.resources["settings"]
    return (f"variant {settings.variant} ({get_variant(settings.variant).description}): "
            f"export folder {settings.export_dir}, warehouse schema "
            f"{variant_schema(settings.variant)}; calls other variants paid for come from "
            "the ledger")


def run_stoppable(work) -> int | None:
    """Run ``work()`` in a thread while this thread waits for Ctrl-C or SIGTERM, which ask
    every LLM session to stop (see resources/stop_request.py); a second signal quits at
    once. Returns the signal that stopped the work, or None.

    The work runs off the main thread so Dagster's in-process execution does not take
    the signals over (it only does so on the main thread)."""
    from .resources.stop_request import clear_stop, request_stop

    received: list[int] = []
    errors: list[BaseException] = []

    def on_signal(signum, _frame):
        if received:
            os._exit(128 + signum)
        received.append(signum)
        name = signal.Signals(signum).name
        _say(f"\n{name}: stopping; replies in flight are kept (send it again to quit at once)")
        request_stop(name)

    def target():
        try:
            work()
        except BaseException as error:  # noqa: BLE001 - re-raised in the main thread
            errors.append(error)

    if threading.current_thread() is not threading.main_thread():
        work()
        return None
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    worker = threading.Thread(target=target, name="webr-run", daemon=True)
    try:
        worker.start()
        while worker.is_alive():
            worker.join(0.2)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        clear_stop()
    if errors and not received:
        raise errors[0]
    return received[0] if received else None


def explain_command(args: argparse.Namespace) -> int:
    from .explain import explain, render
    from .resources.storage import WebRHome, variant_schema
    from .webr.variants import DEFAULT

    if (args.prompt_id is None) == (args.url is None):
        _say("give a prompt_id or --url (one of them)")
        return 2
    home = WebRHome.from_env()
    variant = args.variant or os.environ.get("WEBR_VARIANT") or DEFAULT
    try:
        story = explain(home, variant_schema(variant),
                        prompt_id=args.prompt_id, url=args.url)
    except LookupError as missing:
        _say(str(missing))
        return 1
    _say(json.dumps(story, default=str, ensure_ascii=False, indent=2) if args.json
         else render(story))
    return 0


def estimate_command(args: argparse.Namespace) -> int:
    """Index and clean (no LLM), then add up each page's expected calls and tokens."""
    from .resources.storage import variant_schema
    from .webr.estimate import CallEstimate, estimate_page
    from .webr.prompts import load_templates
    from .webr.variants import plan_variant

    sources = _sources(args)
    if not sources:
        _say("no crawl files found")
        return 2
    runner = _runner(args)
    index = _index(runner, sources)
    domains = sorted(index.pages_by_domain)
    for batch in runner.domain_batches(domains):
        runner.clean(batch)
    settings, llm = runner.resources["settings"], runner.llm
    with runner.home.warehouse_connection() as con:
        pages = con.execute(
            f"SELECT page_id, text FROM {variant_schema(settings.variant)}.cleaned_pages "
            "WHERE domain IN "
            "(SELECT unnest(?))", [domains]).fetchall()
    total = CallEstimate()
    templates = load_templates(settings.templates_path)
    cut = llm.input_cut(settings.max_input_chars).chars  # the cut the LLM stages use
    for page_id, text in pages:
        plan = plan_variant(page_id, text, settings.seed, settings.sampling_mode, cut,
                            settings.variant)
        total += estimate_page(plan, text, cut, llm.max_tokens, templates, settings.variant)
    cost = estimated_cost(llm, total)
    _say(f"estimate for {len(pages)} pages in {len(domains)} domains, model {llm.model_name}:")
    _say(f"  calls              {total.calls}")
    _say(f"  prompt tokens      {total.prompt_tokens}")
    _say(f"  completion tokens  {total.completion_tokens} (at most; replies are often shorter)")
    _say(f"  cost               {'$%.4f' % cost if cost is not None else 'unknown price'}"
         " (calls already in the ledger will not be paid again)")
    return 0


def estimated_cost(llm, estimate) -> float | None:
    if llm.input_usd_per_million_tokens is not None:
        return (estimate.prompt_tokens * llm.input_usd_per_million_tokens
                + estimate.completion_tokens * (llm.output_usd_per_million_tokens or 0)) / 1e6
    if llm.model is None:
        return 0.0  # the built-in model costs nothing but time
    from .resources.litellm_setup import import_litellm

    try:
        prompt, completion = import_litellm().cost_per_token(
            model=llm.model_name, prompt_tokens=estimate.prompt_tokens,
            completion_tokens=estimate.completion_tokens)
        return prompt + completion
    except Exception:  # noqa: BLE001 - a model litellm has no price for
        return None


def extract_command(args: argparse.Namespace) -> int:
    import gzip

    from .webr.extract import extract_main_text
    from .webr.readers import decode_bytes

    data = Path(args.file).read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    html = decode_bytes(data)
    extracted = extract_main_text(html, args.url)
    if extracted is None:
        print("no main text found", file=sys.stderr)
        return 1
    print(extracted.text)
    return 0


def doctor_command(args: argparse.Namespace) -> int:
    """Check what a run needs; exit 1 if anything is wrong."""
    from .doctor import run_checks
    from .resources.environment import llm_from_env
    from .resources.storage import WebRHome

    home = WebRHome.from_env()
    checks = run_checks(home, llm_from_env(home).process_config_and_initialize())
    for check in checks:
        _say(f"{'ok  ' if check.ok else 'FAIL'}  {check.name}: {check.detail}")
    failed = [check for check in checks if not check.ok]
    _say(f"{len(failed)} problem(s) found" if failed else "everything a run needs is in place")
    return 1 if failed else 0


def deploy_command(args: argparse.Namespace) -> int:
    """Write the files of a Dagster-on-PostgreSQL, Celery, DuckLake deployment."""
    from .deploy import START_COMMANDS, write_deployment
    from .resources.storage import WebRHome

    out_dir = Path(args.out) if args.out else WebRHome.from_env().root / "deploy"
    written = write_deployment(out_dir, dagster_pg_url=args.dagster_postgres,
                               broker=args.redis, lake_catalog=args.lake_catalog,
                               lake_data=args.lake_data, writers=args.writers,
                               domains_per_run=args.domains_per_run)
    for path in written:
        _say(f"wrote {path}")
    _say(START_COMMANDS.format(env=out_dir / "webr.env", celery=out_dir / "celery.yaml"))
    return 0


def ui_command(args: argparse.Namespace) -> int:
    """Start the Dagster UI and daemon on this package, with DAGSTER_HOME under WEBR_HOME."""
    from .instance import ensure_dagster_home
    from .resources.storage import WebRHome

    home = WebRHome.from_env().ensure()
    ensure_dagster_home(home)
    # This interpreter's dagster: the venv need not be activated for `webr ui` to work.
    command = [sys.executable, "-m", "dagster", "dev", "-m", "webr_dagster.definitions",
               "-p", str(args.port)]
    _say(f"DAGSTER_HOME={os.environ['DAGSTER_HOME']}; landing folder {home.landing}")
    os.execv(command[0], command)
    return 0  # not reached


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="webr", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="index, synthesise, filter, split and export")
    run.add_argument("paths", nargs="*", help="crawl files or folders")
    run.add_argument("--sample", action="store_true",
                     help="also run on the small sample crawl shipped with webr-dagster")
    run.add_argument("--limit", type=int, help="at most N pages per domain")
    run.add_argument("--max-cost", type=float, help="spending cap in USD for this run")
    run.add_argument("--workers", type=int, help="domain runs at once, each in a process "
                     "of its own (needs WEBR_STORAGE=ducklake)")
    run.add_argument("--test-share", type=float, help="share of pages in test_sft (0.1)")
    run.add_argument("--max-failed-share", type=float, default=0.5,
                     help="exit non-zero when more than this share of the LLM calls sent "
                     "failed (0.5)")
    from .webr.variants import VARIANTS

    run.add_argument("--variant", choices=list(VARIANTS),
                     help="one of the paper's ablations, for this run (WEBR_VARIANT; "
                     "default: the method as published); its own export folder "
                     "(exports/webr-sft-NAME) and warehouse schema (webr_NAME)")
    run.set_defaults(handler=run_command)
    ui = commands.add_parser("ui", help="open the Dagster UI (dagster dev) on this project")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(handler=ui_command)
    estimate = commands.add_parser("estimate", help="expected calls, tokens and cost; "
                                   "indexes and cleans but calls no model")
    estimate.add_argument("paths", nargs="*")
    estimate.add_argument("--sample", action="store_true")
    estimate.add_argument("--limit", type=int)
    estimate.set_defaults(handler=estimate_command)
    deploy = commands.add_parser("deploy", help="files for Dagster on PostgreSQL with "
                                 "Celery workers and a DuckLake (README: Deployment)")
    deploy_commands = deploy.add_subparsers(dest="deploy_command", required=True)
    print_config = deploy_commands.add_parser("print-config", help="write dagster.yaml, "
                                              "celery.yaml and webr.env")
    print_config.add_argument("--dagster-postgres", required=True, metavar="URL",
                              help="postgresql://user@host:port/db for Dagster's storage "
                              "(a password goes in DAGSTER_PG_URL, not on the command line)")
    print_config.add_argument("--redis", required=True, metavar="URL",
                              help="the Celery broker, e.g. redis://host:6379/0")
    print_config.add_argument("--lake-catalog", required=True, help="WEBR_LAKE_CATALOG, "
                              "e.g. 'postgres:dbname=webr_lake host=db user=webr'")
    print_config.add_argument("--lake-data", required=True,
                              help="WEBR_LAKE_DATA: a folder every worker mounts, or s3://")
    print_config.add_argument("--writers", type=int, default=8,
                              help="domain runs writing at once (8)")
    print_config.add_argument("--domains-per-run", type=int, default=50,
                              help="domains per backfill run: the unit workers share (50)")
    print_config.add_argument("--out", help="folder to write to ($WEBR_HOME/deploy)")
    print_config.set_defaults(handler=deploy_command)
    doctor = commands.add_parser("doctor", help="check the model, the files and the "
                                 "Dagster home, and say what is wrong")
    doctor.set_defaults(handler=doctor_command)
    explain = commands.add_parser("explain", help="the stored story of one example (by "
                                  "prompt_id) or one page (--url), with every LLM call behind it")
    explain.add_argument("prompt_id", nargs="?")
    explain.add_argument("--url", help="a crawled page's URL instead of an example")
    explain.add_argument("--variant", help="the run variant whose tables to read")
    explain.add_argument("--json", action="store_true", help="machine-readable output")
    explain.set_defaults(handler=explain_command)
    extract = commands.add_parser("extract", help="print the main text of one HTML file")
    extract.add_argument("file")
    extract.add_argument("--url")
    extract.set_defaults(handler=extract_command)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
