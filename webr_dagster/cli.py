"""`webr` command line: run the whole method in-process on crawl files, estimate its cost,
extract one page, or open the UI.

    webr run [PATH...] [--sample] [--limit N] [--max-cost USD] [--test-share F]
    webr estimate [PATH...] [--sample] [--limit N]
    webr extract FILE [--url URL]
    webr ui [--port 3000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path


SAMPLE_CRAWL = Path(__file__).resolve().parent / "sample_crawl"
STAGES = (("raw pages", "raw_pages", "pages"), ("cleaned pages", "cleaned_pages", "pages"),
          ("rejected at cleaning", "page_rejections", "rejected"),
          ("author profiles", "author_profiles", "pages"),
          ("WI pairs", "instruction_side_pairs", "pairs"),
          ("WR pairs", "response_side_pairs", "pairs"),
          ("kept after filters", "filtered_pairs", "kept"))
# The pair step's LLM usage is reported on both of its outputs: count it once.
USAGE_ASSETS = ("author_profiles", "instruction_side_pairs")
USAGE_KEYS = ("llm_calls_sent", "llm_calls_from_ledger", "llm_calls_failed",
              "llm_skipped_for_budget", "prompt_tokens", "completion_tokens", "cost_usd")


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
                  test_share=getattr(args, "test_share", None))


def _index(runner, sources):
    def progress(position, source, records, domains):
        _say(f"[index {position}/{len(sources)}] {source}: {records} records, "
             f"{sum(domains.values())} pages in {len(domains)} domains")

    return runner.index(sources, progress)


def run_command(args: argparse.Namespace) -> int:
    from .runner import metadata_of

    started = time.monotonic()
    sources = _sources(args)
    if not sources:
        _say("no crawl files found (WARC, WET, JSONL, WebR JSON, or folders of .html)")
        return 2
    runner = _runner(args)
    _say(f"webr: {len(sources)} crawl source(s); model {runner.llm.model_name}; "
         f"home {runner.home.root}")
    index = _index(runner, sources)
    domains = sorted(index.pages_by_domain)
    totals: Counter[str] = Counter()
    rejections: Counter[str] = Counter()
    failed_domains = 0
    for position, domain in enumerate(domains, 1):
        result = runner.run_domain(domain)
        if not result.success:
            failed_domains += 1
            _say(f"[domain {position}/{len(domains)}] {domain}: FAILED (run {result.run_id}; "
                 "see its logs in the Dagster UI)")
            continue
        stage = {label: metadata_of(result, asset, key) for label, asset, key in STAGES}
        totals.update(stage)
        rejections.update(metadata_of(result, "page_rejections", "reasons", {}) or {})
        for asset in USAGE_ASSETS:
            for key in USAGE_KEYS:
                totals[key] += metadata_of(result, asset, key)
        _say(f"[domain {position}/{len(domains)}] {domain}: {stage['raw pages']} pages -> "
             f"{stage['cleaned pages']} cleaned -> {stage['author profiles']} profiles -> "
             f"{stage['WI pairs']} WI + {stage['WR pairs']} WR -> "
             f"{stage['kept after filters']} kept")

    splits = runner.build_splits()
    if not splits.success:
        _say(f"building the splits FAILED (run {splits.run_id}; see its logs in the Dagster UI)")
    split_counts = metadata_of(splits, "sft_splits", "split_counts", {})
    not_pages = {k: v for k, v in index.statuses.items() if k != "kept"}
    _say("")
    _say("stage counts:")
    _say(f"  {'crawl records':<21}{index.records}")
    for label, _, _ in STAGES:
        _say(f"  {label:<21}{totals[label]}")
    _say(f"  {'train_sft':<21}{split_counts.get('train_sft', 0)}")
    _say(f"  {'test_sft':<21}{split_counts.get('test_sft', 0)}")
    if not_pages or rejections:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted((not_pages | rejections).items()))
        _say(f"not kept, by reason: {reasons}")
    _say(f"LLM: {totals['llm_calls_sent']} calls sent, {totals['llm_calls_from_ledger']} "
         f"answered from the ledger, {totals['llm_calls_failed']} failed; "
         f"{totals['prompt_tokens']} prompt + {totals['completion_tokens']} completion tokens; "
         f"${totals['cost_usd']:.4f}")
    if totals["llm_skipped_for_budget"]:
        _say(f"STOPPED AT THE SPENDING CAP (${runner.llm.max_cost_usd}): "
             f"{totals['llm_skipped_for_budget']} calls were not started. Everything paid for "
             "is kept in the ledger; raise the cap and run again to finish without paying twice.")
    export_dir = runner.resources["settings"].export_dir
    _say(f"dataset: {export_dir} (datasets.load_dataset('{export_dir}'))")
    _say(f"warehouse: {runner.home.warehouse}; took {time.monotonic() - started:.0f} s")
    return 1 if failed_domains or not splits.success else 0


def estimate_command(args: argparse.Namespace) -> int:
    """Index and clean (no LLM), then add up each page's expected calls and tokens."""
    import duckdb

    from .resources.storage import SCHEMA
    from .webr.estimate import CallEstimate, estimate_page
    from .webr.sampling import plan_page

    sources = _sources(args)
    if not sources:
        _say("no crawl files found")
        return 2
    runner = _runner(args)
    index = _index(runner, sources)
    for domain in sorted(index.pages_by_domain):
        runner.clean(domain)
    settings, llm = runner.resources["settings"], runner.llm
    domains = sorted(index.pages_by_domain)
    with duckdb.connect(str(runner.home.warehouse), read_only=True) as con:
        pages = con.execute(
            f"SELECT page_id, text FROM {SCHEMA}.cleaned_pages WHERE domain IN "
            "(SELECT unnest(?))", [domains]).fetchall()
    total = CallEstimate()
    for page_id, text in pages:
        plan = plan_page(page_id, text, settings.seed, settings.sampling_mode,
                         settings.max_input_chars)
        total += estimate_page(plan, text, settings.max_input_chars, llm.max_tokens)
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
    from .resources.llm import import_litellm

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


def ui_command(args: argparse.Namespace) -> int:
    """Start the Dagster UI and daemon on this package, with DAGSTER_HOME under WEBR_HOME."""
    from .instance import ensure_dagster_home
    from .resources.storage import WebRHome

    home = WebRHome.from_env().ensure()
    ensure_dagster_home(home)
    command = ["dagster", "dev", "-m", "webr_dagster.definitions", "-p", str(args.port)]
    _say(f"DAGSTER_HOME={os.environ['DAGSTER_HOME']}; landing folder {home.landing}")
    os.execvp(command[0], command)
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
    run.add_argument("--test-share", type=float, help="share of pages in test_sft (0.1)")
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
