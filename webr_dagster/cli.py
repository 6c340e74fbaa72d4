"""`webr` command line: run the whole method in-process on crawl files, or extract one page.

    webr run [PATH...] [--sample] [--limit N] [--max-cost USD] [--test-share F]
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


# Dagster's own step-by-step DEBUG lines would drown the progress lines below.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
SAMPLE_CRAWL = Path(__file__).resolve().parent / "sample_crawl"


def _say(message: str) -> None:
    print(message, flush=True)


def _metadata_value(result, asset_name: str, key: str, default=0):
    for event in result.asset_materializations_for_node(asset_name) if asset_name else []:
        value = event.metadata.get(key)
        if value is not None:
            return getattr(value, "value", getattr(value, "data", value))
    return default


def _output_metadata(result, output_name: str, key: str, default=0):
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        if materialization.asset_key.path[-1] == output_name and key in materialization.metadata:
            value = materialization.metadata[key]
            return getattr(value, "value", getattr(value, "data", value))
    return default


def run_command(args: argparse.Namespace) -> int:
    from .resources.storage import WebRHome
    from .instance import ensure_dagster_home

    home = WebRHome.from_env().ensure()
    ensure_dagster_home(home)
    if args.max_cost is not None:
        os.environ["WEBR_MAX_COST_USD"] = str(args.max_cost)

    from dagster import DagsterInstance, materialize

    from .assets import ALL_ASSETS
    from .checks import ALL_CHECKS
    from .jobs import DOMAIN_ASSETS
    from .partitions import crawl_source_partitions, domain_partitions
    from .resources.environment import resources_from_env
    from .webr.readers import find_crawl_sources

    started = time.monotonic()
    paths = list(args.paths) + ([str(SAMPLE_CRAWL)] if args.sample else [])
    sources = find_crawl_sources(paths)
    if not sources:
        _say("no crawl files found (WARC, WET, JSONL, WebR JSON, or folders of .html)")
        return 2
    resources = resources_from_env(
        home, pages_per_domain_limit=args.limit, test_share=args.test_share
    )
    model = resources["llm"].model_name
    _say(f"webr: {len(sources)} crawl source(s); model {model}; home {home.root}")
    instance = DagsterInstance.get()
    definitions = [*ALL_ASSETS, *ALL_CHECKS]

    known = set(instance.get_dynamic_partitions(crawl_source_partitions.name))
    instance.add_dynamic_partitions(
        crawl_source_partitions.name, [s for s in sources if s not in known]
    )
    pages_by_domain: Counter[str] = Counter()
    records = rejected = 0
    for index, source in enumerate(sources, 1):
        result = materialize(definitions, selection=["crawl_index"], partition_key=source,
                             instance=instance, resources=resources,
                             run_config=QUIET_RUN_CONFIG)
        domains = _metadata_value(result, "crawl_index", "domains", {}) or {}
        pages_by_domain.update(domains)
        found = _metadata_value(result, "crawl_index", "records")
        records += found
        rejected += found - sum(domains.values())
        _say(f"[index {index}/{len(sources)}] {source}: {found} records, "
             f"{sum(domains.values())} pages in {len(domains)} domains")

    domains = sorted(pages_by_domain)
    known = set(instance.get_dynamic_partitions(domain_partitions.name))
    instance.add_dynamic_partitions(domain_partitions.name, [d for d in domains if d not in known])
    totals: Counter[str] = Counter()
    stopped_for_budget = False
    for index, domain in enumerate(domains, 1):
        result = materialize(definitions, selection=DOMAIN_ASSETS, partition_key=domain,
                             instance=instance, resources=resources, raise_on_error=False,
                             run_config=QUIET_RUN_CONFIG)
        if not result.success:
            _say(f"[domain {index}/{len(domains)}] {domain}: FAILED (see the run's logs in "
                 f"the Dagster UI; run id {result.run_id})")
            totals["failed_domains"] += 1
            continue
        stage = {
            "raw": _output_metadata(result, "raw_pages", "pages"),
            "cleaned": _output_metadata(result, "cleaned_pages", "pages"),
            "rejected": _output_metadata(result, "page_rejections", "rejected"),
            "profiles": _output_metadata(result, "author_profiles", "pages"),
            "wi": _output_metadata(result, "instruction_side_pairs", "pairs"),
            "wr": _output_metadata(result, "response_side_pairs", "pairs"),
            "kept": _output_metadata(result, "filtered_pairs", "kept"),
        }
        for asset_name in ("author_profiles", "instruction_side_pairs"):
            # The pair step's usage is reported on both of its outputs: count it once.
            for key in ("llm_calls_sent", "llm_calls_from_ledger", "llm_calls_failed",
                        "llm_skipped_for_budget", "prompt_tokens", "completion_tokens",
                        "cost_usd"):
                totals[key] += _output_metadata(result, asset_name, key)
        totals.update({k: v for k, v in stage.items()})
        stopped_for_budget |= totals["llm_skipped_for_budget"] > 0
        _say(f"[domain {index}/{len(domains)}] {domain}: {stage['raw']} pages -> "
             f"{stage['cleaned']} cleaned -> {stage['profiles']} profiles -> "
             f"{stage['wi']} WI + {stage['wr']} WR -> {stage['kept']} kept")

    result = materialize(definitions, selection=["sft_splits"], instance=instance,
                         resources=resources, run_config=QUIET_RUN_CONFIG)
    split_counts = _output_metadata(result, "sft_splits", "split_counts", {})
    export_dir = resources["settings"].export_dir
    _say("")
    _say("stage counts:")
    _say(f"  crawl records        {records} ({rejected} not pages)")
    for label, key in (("raw pages", "raw"), ("cleaned pages", "cleaned"),
                       ("rejected at cleaning", "rejected"), ("author profiles", "profiles"),
                       ("WI pairs", "wi"), ("WR pairs", "wr"), ("kept after filters", "kept")):
        _say(f"  {label:<20} {totals[key]}")
    _say(f"  train_sft            {split_counts.get('train_sft', 0)}")
    _say(f"  test_sft             {split_counts.get('test_sft', 0)}")
    _say(f"LLM: {totals['llm_calls_sent']} calls sent, {totals['llm_calls_from_ledger']} "
         f"answered from the ledger, {totals['llm_calls_failed']} failed; "
         f"{totals['prompt_tokens']} prompt + {totals['completion_tokens']} completion tokens; "
         f"${totals['cost_usd']:.4f}")
    if stopped_for_budget:
        _say(f"stopped at the spending cap (${os.environ.get('WEBR_MAX_COST_USD')}): what was "
             "paid for is kept; raise the cap and run again to continue")
    _say(f"dataset: {export_dir} (datasets.load_dataset('{export_dir}'))")
    _say(f"warehouse: {home.warehouse}; took {time.monotonic() - started:.0f} s")
    return 1 if totals["failed_domains"] else 0


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
