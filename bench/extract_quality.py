"""Main-text extraction quality on the aeb-dev pages: bare trafilatura vs the pipeline.

    python bench/extract_quality.py [--corpus ../shared/corpora/aeb-dev] [--worst N]

Gold: ``ground-truth.json`` = ``{id: {"url", "articleBody"}}`` and ``html/{id}.html.gz``.
Measure: tokens are lower-cased ``\\w+`` runs; per page, precision and recall of the
multiset overlap with the gold tokens and their F1; means over pages. The baseline
is ``trafilatura.extract(html, url=url)`` with default settings, the candidate is
``webr_dagster.webr.extract.extract_main_text``; both run here, on the same pages.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

import trafilatura

from webr_dagster.webr.extract import EXTRACTOR_VERSION, extract_main_text
from webr_dagster.webr.word_overlap import word_overlap_scores

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "aeb-dev"
scores = word_overlap_scores


def load(corpus: Path) -> list[tuple[str, str, str, str]]:
    gold = json.loads((corpus / "ground-truth.json").read_text(encoding="utf-8"))
    pages = []
    for page_id, item in sorted(gold.items()):
        raw = gzip.decompress((corpus / "html" / f"{page_id}.html.gz").read_bytes())
        pages.append((page_id, item["url"], raw.decode("utf-8", errors="replace"), item["articleBody"]))
    return pages


def baseline(html: str, url: str) -> str | None:
    return trafilatura.extract(html, url=url)


def candidate(html: str, url: str) -> str | None:
    extracted = extract_main_text(html, url)
    return extracted.text if extracted else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--worst", type=int, default=0, help="also list the N worst pages of the candidate")
    args = parser.parse_args(argv)
    pages = load(args.corpus)
    systems = {f"trafilatura {trafilatura.__version__} defaults": baseline,
               f"pipeline ({EXTRACTOR_VERSION})": candidate}
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in systems}
    seconds = dict.fromkeys(systems, 0.0)
    for _, url, html, gold in pages:  # interleaved, so machine load hits both alike
        for name, run in systems.items():
            start = time.perf_counter()
            text = run(html, url)
            seconds[name] += time.perf_counter() - start
            results[name].append(scores(text, gold))
    n = len(pages)
    print(f"{n} pages from {args.corpus}")
    print(f"{'system':45s} {'P':>6s} {'R':>6s} {'F1':>6s} {'F1<0.8':>7s} {'min F1':>7s} {'s/page':>7s}")
    means = {}
    for name, rows in results.items():
        p, r, f = (sum(row[i] for row in rows) / n for i in range(3))
        means[name] = f
        low = sum(row[2] < 0.8 for row in rows)
        print(f"{name:45s} {p:6.4f} {r:6.4f} {f:6.4f} {low:7d} {min(row[2] for row in rows):7.3f} "
              f"{seconds[name] / n:7.4f}")
    base, cand = means.values()
    print(f"F1 gain: {cand - base:+.4f}")
    if args.worst:
        rows = results[list(systems)[1]]
        for index in sorted(range(n), key=lambda i: rows[i][2])[: args.worst]:
            page_id, url = pages[index][:2]
            print(f"  F1 {rows[index][2]:.3f}  P {rows[index][0]:.3f}  R {rows[index][1]:.3f}  {page_id[:12]}  {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
