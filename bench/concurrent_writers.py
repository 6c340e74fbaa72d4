"""Domain runs per minute with 1, 2, 4 (and 8) concurrent writers on DuckLake-on-PostgreSQL,
against the embedded DuckDB file's one writer at a time, in the same run, on crawl-shaped
data (many hosts with a page or two each). Also the share of commits that hit a write
conflict and were retried.

Each configuration is a whole `webr run` in a fresh process with a fresh WEBR_HOME (and
a fresh lake catalog database) against the loopback LLM server, with
WEBR_DOMAINS_PER_RUN small enough that there are many runs to share out; `--workers N`
runs N of them at once. Needs PostgreSQL: `eval "$(.ci/start-services)"` first.

    python bench/concurrent_writers.py [--pages 240] [--hosts 120] [--per-run 10]
                                       [--writers 1 2 4] [--latency 0.05] [--rounds 1]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.postgres import new_database  # noqa: E402


def commit_retries(home: Path) -> tuple[int, int]:
    """(commits retried, commits) of the lake IO manager, from the runs' metadata."""
    from dagster import AssetKey, DagsterInstance

    from webr_dagster.assets import ALL_ASSETS

    retried = commits = 0
    seen = set()
    with DagsterInstance.from_config(str(home / "dagster")) as instance:
        for key in (key for asset in ALL_ASSETS for key in asset.keys):
            for record in instance.fetch_materializations(AssetKey(key.path), 10000).records:
                materialization = record.asset_materialization
                value = materialization.metadata.get("commit_retries")
                # A batch's output metadata is on each of its partitions: count it once.
                if value is None or (record.run_id, key) in seen:
                    continue
                seen.add((record.run_id, key))
                commits += 1
                retried += int(value.value) > 0
    return retried, commits


def timed_run(crawl: Path, base_url: str, per_run: int, workers: int | None,
              dsn: str | None) -> tuple[float, tuple[int, int] | None]:
    """(seconds, (retried, commits) or None for the file)."""
    home = Path(tempfile.mkdtemp(prefix="webr-bench-"))
    env = {**os.environ, "WEBR_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
           "WEBR_MODEL": "openai/loopback", "WEBR_API_BASE": base_url,
           "WEBR_API_KEY": "sk-bench", "WEBR_DOMAINS_PER_RUN": str(per_run)}
    command = [sys.executable, "-m", "webr_dagster.cli", "run", str(crawl)]
    if workers is not None:
        env.update(WEBR_STORAGE="ducklake", WEBR_LAKE_DATA=str(home / "lake_data"),
                   WEBR_LAKE_CATALOG=f"postgres:dbname={new_database(dsn, 'webr_bench')} {dsn}")
        command += ["--workers", str(workers)]
    started = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"webr run failed ({done.returncode}):\n{done.stdout[-3000:]}"
                         f"\n{done.stderr[-3000:]}")
    return elapsed, commit_retries(home) if workers is not None else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=240)
    parser.add_argument("--hosts", type=int, default=120)
    parser.add_argument("--per-run", type=int, default=10, help="WEBR_DOMAINS_PER_RUN")
    parser.add_argument("--writers", type=int, nargs="*", default=[1, 2, 4])
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--rounds", type=int, default=1,
                        help="alternate the configurations this many times; best of each")
    args = parser.parse_args()
    dsn = os.environ.get("WEBR_TEST_POSTGRES")
    if not dsn:
        raise SystemExit('PostgreSQL is not running: eval "$(.ci/start-services)" first')

    from bench._loopback import loopback_server
    from bench.many_domains import write_crawl

    crawl = write_crawl(Path(tempfile.mkdtemp(prefix="webr-crawls-")) / "hosts.jsonl",
                        args.pages, args.hosts)
    runs = -(-args.hosts // args.per_run)
    print(f"{args.pages} pages on {args.hosts} hosts, {args.per_run} domains per run "
          f"({runs} domain runs), loopback latency {args.latency * 1000:.0f} ms, "
          f"{os.cpu_count()} cores")
    configurations = [("DuckDB file, 1 writer (baseline)", None)] + [
        (f"DuckLake on PostgreSQL, {n} writer(s)", n) for n in args.writers]
    best: dict[str, tuple[float, tuple[int, int] | None]] = {}
    with loopback_server(args.latency) as base_url:
        for _ in range(args.rounds):  # alternated: a slow spell of the machine hits all
            for name, writers in configurations:
                seconds, retries = timed_run(crawl, base_url, args.per_run, writers, dsn)
                if name not in best or seconds < best[name][0]:
                    best[name] = (seconds, retries)
    rows = [(name, *best[name]) for name, _ in configurations]
    baseline = rows[0][1]
    print(f"{'storage':<36} {'wall s':>7} {'runs/min':>9} {'vs file':>8} {'retried commits':>16}")
    for name, seconds, retries in rows:
        retried = f"{retries[0]}/{retries[1]} ({retries[0] / max(retries[1], 1):.0%})" \
            if retries else "-"
        print(f"{name:<36} {seconds:>7.1f} {runs * 60 / seconds:>9.1f} "
              f"{baseline / seconds:>7.2f}x {retried:>16}")


if __name__ == "__main__":
    main()
