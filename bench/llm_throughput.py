"""LLM-stage throughput against the loopback server: wall time vs the floor.

Runs the WebR LLM stages (author profiles, then WI/WR pairs) on the paper's 1,000-page
sample at concurrency 50 against the project's loopback OpenAI-compatible server, which
answers every call after 200 ms. The floor of a stage is what perfect scheduling would
take: max(calls x latency / concurrency, longest chain of calls of one page x latency).
Prints each stage's wall time, its floor, and wall / floor.

    python bench/llm_throughput.py [--pages 1000] [--latency 0.2] [--concurrency 50]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

SAMPLE = ROOT.parent / "shared" / "corpora" / "webr-sample" / "web_en_1k.json"
CHAIN = {"WI": 2, "WR": 3}  # sequential calls per page in the pairs stage


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--processes", type=int, default=None,
                        help="call worker processes (default: the resource's automatic choice)")
    args = parser.parse_args()

    from bench._loopback import loopback_server

    home = Path(tempfile.mkdtemp(prefix="webr-bench-"))
    os.environ.update({"WEBR_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
                       "WEBR_MODEL": "openai/loopback", "WEBR_API_KEY": "sk-bench",
                       "WEBR_CONCURRENCY": str(args.concurrency),
                       # a self-hosted model's price, as a user would configure it
                       "WEBR_INPUT_USD_PER_MTOK": "0.10", "WEBR_OUTPUT_USD_PER_MTOK": "0.40"})
    from dagster import DagsterInstance, materialize

    from webr_dagster.assets import ALL_ASSETS
    from webr_dagster.instance import ensure_dagster_home
    from webr_dagster.resources.environment import resources_from_env
    from webr_dagster.resources.storage import WebRHome

    ensure_dagster_home(WebRHome(home).ensure())
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    with loopback_server(args.latency) as base:
        os.environ["WEBR_API_BASE"] = base
        resources = resources_from_env(
            llm_overrides={"call_processes": args.processes}, pages_per_domain_limit=args.pages)
        instance = DagsterInstance.get()
        source, domain = str(SAMPLE), "web_en_1k"
        instance.add_dynamic_partitions("crawl_source", [source])
        instance.add_dynamic_partitions("domain", [domain])
        run = lambda selection, key: materialize(  # noqa: E731
            ALL_ASSETS, selection=selection, partition_key=key, instance=instance,
            resources=resources, run_config=quiet)
        run(["crawl_index"], source)
        run(["raw_pages", "cleaned_pages", "page_rejections"], domain)

        rows = []
        stages = (("author profiles", ["author_profiles"]),
                  ("WI/WR pairs", ["instruction_side_pairs", "response_side_pairs"]))
        for label, selection in stages:
            started = time.monotonic()
            result = run(selection, domain)
            wall = time.monotonic() - started
            events = {e.asset_key.path[-1]: e.metadata
                      for e in result.get_asset_materialization_events()
                      for e in [e.step_materialization_data.materialization]}
            first = events[selection[0]]
            sent = first["llm_calls_sent"].value
            startup = first["llm_startup_s"].value
            calls_s = first["llm_calls_s"].value
            if label == "author profiles":
                chain = 1
            else:
                chain = CHAIN["WR"] if events[selection[1]]["pairs"].value else CHAIN["WI"]
            floor = max(sent * args.latency / args.concurrency, chain * args.latency)
            rows.append([label, sent, wall, startup, calls_s, floor])
        # The same steps again, every call answered from the ledger (a resumed run).
        for row, (label, selection) in zip(rows, stages):
            started = time.monotonic()
            run(selection, domain)
            row.append(time.monotonic() - started)

    print(f"loopback latency {args.latency * 1000:.0f} ms, concurrency {args.concurrency}, "
          f"{args.pages} pages, {os.cpu_count()} cores")
    print(f"{'stage':<16} {'calls':>6} {'wall s':>7} {'start-up':>8} {'calls s':>8} "
          f"{'floor s':>7} {'calls/floor':>11} {'wall/floor':>10} {'rerun s':>8}")
    totals = [0, 0.0, 0.0, 0.0, 0.0, 0.0]
    for label, sent, wall, startup, calls_s, floor, rerun in rows:
        print(f"{label:<16} {sent:>6} {wall:>7.1f} {startup:>8.1f} {calls_s:>8.1f} "
              f"{floor:>7.1f} {calls_s / floor:>11.2f} {wall / floor:>10.2f} {rerun:>8.1f}")
        for index, value in enumerate((sent, wall, startup, calls_s, floor, rerun)):
            totals[index] += value
    sent, wall, startup, calls_s, floor, rerun = totals
    print(f"{'total':<16} {sent:>6} {wall:>7.1f} {startup:>8.1f} {calls_s:>8.1f} "
          f"{floor:>7.1f} {calls_s / floor:>11.2f} {wall / floor:>10.2f} {rerun:>8.1f}")
    fixed = wall - calls_s
    print("start-up: litellm import or call-worker start; calls s: first call started to last "
          "call settled; wall - calls s = the steps' fixed cost (start-up, Dagster, DuckDB "
          "reads and writes); rerun s: the same steps with every call answered from the ledger")
    print(f"target wall <= 1.5 x floor + fixed start-up: {wall:.1f} <= {1.5 * floor:.1f} + "
          f"{fixed:.1f} -> {wall <= 1.5 * floor + fixed}")


if __name__ == "__main__":
    main()
