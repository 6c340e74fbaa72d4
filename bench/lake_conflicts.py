"""Commit conflicts in a DuckLake on PostgreSQL, bare: N processes each commit `DELETE` +
`INSERT` of one partition of one shared table, through lake.in_transaction. "new": every
commit writes a partition nobody has written (a crawl's first pass); "rewrite": each
writer re-writes its own existing partition (a re-run). Prints commits a second, the
share of commits retried at least once, and the retries in all. Needs PostgreSQL: `eval "$(.ci/start-services)"`.

    python bench/lake_conflicts.py [--writers 2 4 8] [--commits 20]
"""

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.postgres import new_database  # noqa: E402
from webr_dagster.resources import lake  # noqa: E402

ROWS = 100


def writer(location, index: int, commits: int, mode: str, results) -> None:
    retried = retries = 0
    for number in range(commits):
        domain = f"d{index}" if mode == "rewrite" else f"d{index}-{number}"
        failures = []

        def rewrite(con):
            con.execute("DELETE FROM webr.pages WHERE domain = ?", [domain])
            con.execute(f"INSERT INTO webr.pages SELECT ?, range FROM range({ROWS})", [domain])

        lake.in_transaction(location, rewrite,
                            on_retry=lambda attempt, error: failures.append(attempt))
        retried += bool(failures)
        retries += len(failures)
    results.put((retried, retries))


def measure(dsn: str, mode: str, writers: int, commits: int) -> tuple[float, int, int]:
    """(seconds, commits retried at least once, retries in all)."""
    catalog = f"postgres:dbname={new_database(dsn, 'webr_conflicts')} {dsn}"
    folder = Path(tempfile.mkdtemp(prefix="webr-conflicts-"))
    location = lake.LakeLocation(catalog, str(folder / "data"), str(folder / "ext"))
    with lake.connection(location) as con:
        con.execute("CREATE SCHEMA webr")
        con.execute("CREATE TABLE webr.pages (domain VARCHAR, n BIGINT)")
        con.execute(f"INSERT INTO webr.pages SELECT 'd' || i, range FROM range({ROWS}), "
                    f"range({writers}) t(i)")  # the partitions a re-write replaces
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [context.Process(target=writer, args=(location, i, commits, mode, results))
                 for i in range(writers)]
    started = time.monotonic()
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    seconds = time.monotonic() - started
    counts = [results.get() for _ in processes]
    return seconds, sum(c[0] for c in counts), sum(c[1] for c in counts)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writers", type=int, nargs="*", default=[2, 4, 8])
    parser.add_argument("--commits", type=int, default=20, help="per writer")
    args = parser.parse_args()
    dsn = os.environ.get("WEBR_TEST_POSTGRES")
    if not dsn:
        raise SystemExit('PostgreSQL is not running: eval "$(.ci/start-services)" first')
    print(f"{'partitions':<10} {'writers':>7} {'commits':>8} {'s':>6} {'commits/s':>10} "
          f"{'retried':>8} {'retries':>8}")
    for mode in ("new", "rewrite"):
        for writers in args.writers:
            seconds, retried, retries = measure(dsn, mode, writers, args.commits)
            total = writers * args.commits
            print(f"{mode:<10} {writers:>7} {total:>8} {seconds:>6.1f} {total / seconds:>10.1f} "
                  f"{retried / total:>8.0%} {retries:>8}")


if __name__ == "__main__":
    main()
