"""Crawl-shaped data: the whole `webr run` on the same pages under one host and spread over
many hosts with a page or two each (the shape of a Common Crawl WARC).

Both crawls are JSONL files made from `web_en_1k.json`; each `webr run` is a fresh process
with a fresh WEBR_HOME against the loopback server (its own process), timed from start to
exit. Prints both wall times and many-hosts / one-host; then the per-domain cost at larger
domain counts (one page per host, loopback at 0 ms), measured as
(wall - one-host wall for the same pages) / domains.

    python bench/many_domains.py [--pages 600] [--hosts 300] [--latency 0.01] [--rounds 2]
                                 [--scale 100 1000]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SAMPLE = ROOT.parent / "shared" / "corpora" / "webr-sample" / "web_en_1k.json"


def write_crawl(path: Path, pages: int, hosts: int) -> Path:
    """``pages`` pages spread round-robin over ``hosts`` hosts. Beyond the sample's 1,000
    texts a page gets a sentence of its own, so no page is an exact copy of another."""
    texts = [r["webpage"] for r in json.loads(SAMPLE.read_text())]
    with path.open("w") as out:
        for i in range(pages):
            text = texts[i % len(texts)]
            if i >= len(texts):
                text += f"\n\nThis copy, number {i}, was published on mirror site {i % hosts}."
            out.write(json.dumps({"url": f"https://site{i % hosts}.example/page/{i}",
                                  "text": text}) + "\n")
    return path


def first_request_time(base_url: str) -> float | None:
    """Wall time of the first chat request the server got since the last ask."""
    with urllib.request.urlopen(f"{base_url}/first-request", timeout=5) as reply:
        return json.loads(reply.read())["unix_time"]


def timed_run(crawl: Path, base_url: str, concurrency: int) -> tuple[float, str, float]:
    """(seconds to exit, stdout, seconds from start to the first LLM request)."""
    home = Path(tempfile.mkdtemp(prefix="webr-bench-"))
    env = {**os.environ, "WEBR_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
           "WEBR_MODEL": "openai/loopback", "WEBR_API_BASE": base_url,
           "WEBR_API_KEY": "sk-bench", "WEBR_CONCURRENCY": str(concurrency)}
    first_request_time(base_url)  # forget the previous run's
    started, started_unix = time.monotonic(), time.time()
    done = subprocess.run([sys.executable, "-m", "webr_dagster.cli", "run", str(crawl)],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"webr run failed ({done.returncode}):\n{done.stdout[-2000:]}"
                         f"\n{done.stderr[-2000:]}")
    return elapsed, done.stdout, (first_request_time(base_url) or float("nan")) - started_unix


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=600)
    parser.add_argument("--hosts", type=int, default=300)
    parser.add_argument("--latency", type=float, default=0.01)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--scale", type=int, nargs="*", default=[100, 1000],
                        help="domain counts for the per-domain cost (one page each)")
    args = parser.parse_args()

    from bench._loopback import loopback_server

    folder = Path(tempfile.mkdtemp(prefix="webr-crawls-"))
    one = write_crawl(folder / "one-host.jsonl", args.pages, 1)
    many = write_crawl(folder / "many-hosts.jsonl", args.pages, args.hosts)
    one_runs, many_runs = [], []
    with loopback_server(args.latency) as base:
        for _ in range(args.rounds):  # alternated, so a burst of load hits both sides
            one_runs.append(timed_run(one, base, args.concurrency))
            many_runs.append(timed_run(many, base, args.concurrency))
    one_s = min(run[0] for run in one_runs)
    many_s = min(run[0] for run in many_runs)
    print(f"{args.pages} pages, loopback {args.latency * 1000:.0f} ms, "
          f"concurrency {args.concurrency}, {os.cpu_count()} cores, "
          f"best of {args.rounds} alternated rounds")
    for label, runs in (("one host", one_runs), (f"{args.hosts} hosts", many_runs)):
        walls = " ".join(f"{run[0]:.1f}" for run in runs)
        firsts = " ".join(f"{run[2]:.1f}" for run in runs)
        print(f"  {label:<12} wall {walls} s; first LLM request after {firsts} s")
    print(f"  many / one   {many_s / one_s:.2f}x")

    if not args.scale:
        return
    print("per-domain cost, one page per host, loopback 0 ms:")
    print(f"  {'domains':>8} {'one host s':>11} {'many hosts s':>13} {'ms per domain':>14}")
    with loopback_server(0.0) as base:
        for domains in args.scale:
            one_s, _, _ = timed_run(write_crawl(folder / f"one-{domains}.jsonl", domains, 1),
                                    base, args.concurrency)
            many_s, _, _ = timed_run(write_crawl(folder / f"many-{domains}.jsonl", domains,
                                                 domains), base, args.concurrency)
            print(f"  {domains:>8} {one_s:>11.1f} {many_s:>13.1f} "
                  f"{(many_s - one_s) / domains * 1000:>14.1f}")

if __name__ == "__main__":
    main()
