"""Ingest throughput and streaming memory.

    python bench/ingest.py [--copies 8] [--rounds 2] [--memory-pages 10000 100000] [--skip-memory]

1. Throughput. The 121 aeb-dev HTML pages, repeated ``--copies`` times, plus the
   HTML pages of the warc-samples WARC files, are cleaned
   (a) by the pipeline's code, ``webr_dagster.assets.pages.clean_bodies`` (a process
       pool over all cores from 64 pages on; it does more per page than (b): metadata,
       a second extractor as a reference, retries, continuation, furniture removal), and
   (b) by a bare single-process loop of ``trafilatura.extract(html, url=url)``.
   Both run in this process, alternating (b, a, a, b, ...) over ``--rounds`` rounds so
   that load from other work on the machine falls on both alike. Prints pages per
   second of both and the ratio a / b; the target is >= 1.6 on 2 cores.
2. Memory. Peak RSS of streaming ``iter_records`` over a synthetic JSONL file of N
   small (~2 KB) HTML pages, each N in a fresh interpreter; prints the peak for each
   N and the ratio largest / smallest (target <= 1.2).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"


# --------------------------------------------------------------------------- throughput


def load_pages(corpora: Path, copies: int) -> list[tuple[str, str | None]]:
    """(html, url) of the benchmark pages."""
    from webr_dagster.webr.readers import iter_records

    aeb = corpora / "aeb-dev"
    gold = json.loads((aeb / "ground-truth.json").read_text(encoding="utf-8"))
    base = []
    for page_id, item in sorted(gold.items()):
        html = gzip.decompress((aeb / "html" / f"{page_id}.html.gz").read_bytes()).decode("utf-8", "replace")
        base.append((html, item["url"]))
    warc_pages = []
    for path in sorted((corpora / "warc-samples").glob("*.warc.gz")):
        if path.name.endswith((".wat.gz", ".wet.gz")):
            continue
        for record in iter_records(str(path)):
            if record.kept and record.content_type == "html":
                warc_pages.append((record.body, record.url))
    return base * copies + warc_pages


def bare_loop(pages: list[tuple[str, str | None]]) -> int:
    import trafilatura

    found = 0
    for html, url in pages:
        found += trafilatura.extract(html, url=url) is not None
    return found


def pipeline(pages: list[tuple[str, str | None]]) -> int:
    import pandas as pd

    from webr_dagster.assets.pages import clean_bodies

    frame = pd.DataFrame(
        {"content_type": ["html"] * len(pages), "url": [u for _, u in pages], "body": [h for h, _ in pages]}
    )
    return sum(result is not None for result in clean_bodies(frame))


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the pool's workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def throughput(corpora: Path, copies: int, rounds: int) -> float:
    pages = load_pages(corpora, copies)
    cores = os.cpu_count() or 1
    print(f"throughput: {len(pages)} pages ({copies} x aeb-dev + warc-samples HTML), "
          f"{cores} cores, {rounds} round(s); load average before: {os.getloadavg()[0]:.2f}")
    wall = {"bare": 0.0, "pipeline": 0.0}
    cpu = {"bare": 0.0, "pipeline": 0.0}
    found = {}
    order = []
    for r in range(rounds):
        order += ["bare", "pipeline"] if r % 2 == 0 else ["pipeline", "bare"]
    for name in order:
        start, start_cpu = time.perf_counter(), _cpu_seconds()
        found[name] = (bare_loop if name == "bare" else pipeline)(pages)
        elapsed, used = time.perf_counter() - start, _cpu_seconds() - start_cpu
        wall[name] += elapsed
        cpu[name] += used
        print(f"  {name:8s} {elapsed:7.1f} s  {len(pages) / elapsed:6.1f} pages/s  "
              f"CPU {used:6.1f} s = {used / elapsed:4.2f} cores busy")
    total = rounds * len(pages)
    rate = {name: total / s for name, s in wall.items()}
    cost = {name: 1000 * s / total for name, s in cpu.items()}
    ratio = rate["pipeline"] / rate["bare"]
    print(f"bare trafilatura.extract loop, 1 process : {rate['bare']:6.1f} pages/s, "
          f"{cost['bare']:5.1f} ms CPU/page ({found['bare']} with text)")
    print(f"pipeline clean_bodies, {cores} processes      : {rate['pipeline']:6.1f} pages/s, "
          f"{cost['pipeline']:5.1f} ms CPU/page ({found['pipeline']} with text)")
    print(f"ratio pipeline / bare: {ratio:.2f} (target >= 1.6)")
    # Other work on the machine takes cores from the pool, not from the one-process
    # loop: this says what the same per-page costs give when all cores are free.
    print(f"per-page CPU pipeline / bare: {cost['pipeline'] / cost['bare']:.2f}; "
          f"with {cores} free cores the ratio would be about {cores * cost['bare'] / cost['pipeline']:.2f}")
    return ratio


# --------------------------------------------------------------------------- memory

# Peak RSS in KB: VmHWM of this process image where Linux has it (ru_maxrss would
# also count the parent's memory, inherited through fork before exec).
_MEASURE = r"""
import resource, sys, tracemalloc


def peak_kb():
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


from webr_dagster.webr.readers import iter_records
base = peak_kb()
traced = sys.argv[2] == "1"
if traced:
    tracemalloc.start()
n = 0
for record in iter_records(sys.argv[1]):
    n += record.kept
print(n, base, peak_kb(), tracemalloc.get_traced_memory()[1] if traced else 0)
"""


def write_jsonl(path: Path, pages: int) -> None:
    filler = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor "
              "incididunt ut labore et dolore magna aliqua. ") * 15
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(pages):
            html = f"<html><head><title>Page {i}</title></head><body><p>{i} {filler}</p></body></html>"
            fh.write(json.dumps({"url": f"https://site{i % 97}.example/page/{i}", "html": html}) + "\n")


def memory(sizes: list[int]) -> float:
    """Peak RSS (and, in a second run, the peak of Python allocations seen by
    tracemalloc while streaming) for each size, each in a fresh interpreter."""
    peaks, traced = {}, {}
    with tempfile.TemporaryDirectory(prefix="webr-bench-") as tmp:
        for n in sizes:
            path = Path(tmp) / f"pages-{n}.jsonl"
            write_jsonl(path, n)
            for trace in ("0", "1"):
                out = subprocess.run([sys.executable, "-c", _MEASURE, str(path), trace], capture_output=True,
                                     text=True, check=True).stdout.split()
                kept, base, peak, allocated = map(int, out)
                if trace == "0":
                    peaks[n] = peak
                else:
                    traced[n] = allocated
            print(f"memory: {n:>7d} pages ({path.stat().st_size / 1e6:6.1f} MB JSONL, {kept} kept): "
                  f"peak RSS {peaks[n] / 1024:6.1f} MB (after imports {base / 1024:6.1f} MB), "
                  f"peak traced allocations while streaming {traced[n] / 1024:7.1f} KB")
            path.unlink()
    big, small = max(sizes), min(sizes)
    ratio = peaks[big] / peaks[small]
    print(f"peak RSS ratio {big} / {small} pages: {ratio:.3f} (target <= 1.2); "
          f"traced allocations ratio: {traced[big] / traced[small]:.3f}")
    return ratio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpora", type=Path, default=CORPORA)
    parser.add_argument("--copies", type=int, default=8, help="times the 121 aeb-dev pages are repeated")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--memory-pages", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args(argv)
    if not args.skip_throughput:
        throughput(args.corpora, args.copies, args.rounds)
    if not args.skip_memory:
        memory(args.memory_pages)
    return 0


if __name__ == "__main__":
    sys.exit(main())
