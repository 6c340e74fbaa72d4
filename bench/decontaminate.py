"""Benchmark decontamination on crawl-shaped examples: the n-gram index against the
per-prompt scan it replaces, in the same run.

    python bench/decontaminate.py [--examples 3000] [--naive 200] [--quoted 0.02] [--chunk 10]

Examples are built from the 1000 real pages of the WebR sample: the user turn is a request
and one page's text, the assistant turn another page's text. A share (``--quoted``) has a
bundled benchmark prompt (AlpacaEval, Arena-Hard v2, IFEval: 2,096 prompts) pasted between
two paragraphs of one turn, half of them lower-cased with the final punctuation dropped.

1. Index: cold build time, then ``cached_index`` into an empty folder (build and save) and
   again (load).
2. Matching: examples per second of ``ContaminationIndex.match_example`` on all examples,
   starting with an empty word-hash memo; then the index and ``naive_match`` (every prompt
   checked with Python sets) alternate in chunks over the first ``--naive`` examples, so
   machine load falls on both alike. The scan's per-prompt n-gram sets are built before
   timing: what is measured is the scan. Both must give the same answer on every example
   of the subset and on every example with a quote (untimed).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from webr_dagster.webr import decontaminate
from webr_dagster.webr.decontaminate import (
    BENCHMARKS_BUNDLED, ContaminationIndex, DecontaminationRules, cached_index, load_benchmarks,
    naive_match, naive_matches, words,
)

CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"
REQUESTS = (
    "Rewrite the page below as a short, clear article.",
    "Summarise this page for a busy reader.",
    "Turn the following text into a question-and-answer guide.",
    "Here is a page I found. What are its main points?",
)


def quote(rng: random.Random, text: str) -> str:
    """The prompt as pasted, or lower-cased with its final punctuation gone."""
    return text if rng.random() < 0.5 else text.lower().rstrip(" ?.!")


def build_examples(pages: list[str], prompts, count: int, share: float,
                   seed: int = 0) -> tuple[list[tuple[str, str]], list[bool]]:
    """(user, assistant) pairs and which of them carry a benchmark quote."""
    rng = random.Random(seed)
    least = DecontaminationRules().min_prompt_words
    checkable = [p for p in prompts if len(words(p.text)) >= least]
    examples, quoted = [], []
    for number in range(count):
        turns = [f"{REQUESTS[number % len(REQUESTS)]}\n\n{pages[number % len(pages)]}",
                 pages[(7 * number + 3) % len(pages)]]
        has_quote = rng.random() < share
        if has_quote:
            side = rng.randrange(2)
            paragraphs = turns[side].split("\n")
            paragraphs.insert(rng.randrange(1, len(paragraphs) + 1),
                              quote(rng, rng.choice(checkable).text))
            turns[side] = "\n".join(paragraphs)
        examples.append((turns[0], turns[1]))
        quoted.append(has_quote)
    return examples, quoted


def timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=3000)
    parser.add_argument("--naive", type=int, default=200)
    parser.add_argument("--quoted", type=float, default=0.02)
    parser.add_argument("--chunk", type=int, default=10)
    args = parser.parse_args()
    rules = DecontaminationRules()
    prompts, load_s = timed(load_benchmarks, BENCHMARKS_BUNDLED)
    pages = [row["webpage"] for row in json.loads(
        (CORPORA / "webr-sample" / "web_en_1k.json").read_text(encoding="utf-8"))]
    examples, quoted = build_examples(pages, prompts, args.examples, args.quoted)
    example_words = sum(len(words(user)) + len(words(assistant)) for user, assistant in examples)

    decontaminate._word_hash.cache_clear()
    index, build_s = timed(ContaminationIndex.build, prompts, rules)
    with tempfile.TemporaryDirectory(prefix="webr-decontaminate-") as folder:
        decontaminate._word_hash.cache_clear()
        _, first_s = timed(cached_index, prompts, rules, Path(folder))
        _, second_s = timed(cached_index, prompts, rules, Path(folder))
        cache_mb = sum(f.stat().st_size for f in Path(folder).iterdir()) / 2**20

    decontaminate._word_hash.cache_clear()
    found, index_s = timed(lambda: [index.match_example(*example) for example in examples])

    subset = examples[:args.naive]
    naive_matches("", prompts, rules)  # build every prompt's n-gram sets before timing
    index_found, naive_found = [], []
    index_sub_s = naive_sub_s = 0.0
    for chunk_number, start in enumerate(range(0, len(subset), args.chunk)):
        chunk = subset[start:start + args.chunk]
        order = ("index", "naive") if chunk_number % 2 == 0 else ("naive", "index")
        for side in order:
            if side == "index":
                result, seconds = timed(lambda: [index.match_example(*e) for e in chunk])
                index_found += result
                index_sub_s += seconds
            else:
                result, seconds = timed(lambda: [naive_match(*e, prompts, rules) for e in chunk])
                naive_found += result
                naive_sub_s += seconds

    quoted_examples = [e for e, has_quote in zip(examples, quoted) if has_quote]
    quoted_agree = ([index.match_example(*e) for e in quoted_examples]
                    == [naive_match(*e, prompts, rules) for e in quoted_examples])
    caught = sum(1 for hit, has_quote in zip(found, quoted) if hit and has_quote)
    other = sum(1 for hit, has_quote in zip(found, quoted) if hit and not has_quote)
    print(f"{len(prompts)} prompts, {len(examples)} examples "
          f"({example_words / len(examples):.0f} words each), {sum(quoted)} with a quote")
    print(f"{'step':<44} {'seconds':>9} {'examples/s':>11}")
    print(f"{'load the bundled prompts':<44} {load_s:>9.3f}")
    print(f"{'ContaminationIndex.build (cold)':<44} {build_s:>9.3f}")
    print(f"{'cached_index, empty folder (build + save)':<44} {first_s:>9.3f}")
    print(f"{'cached_index, again (load, %.1f MB)' % cache_mb:<44} {second_s:>9.3f}")
    print(f"{'index, all %d examples' % len(examples):<44} {index_s:>9.2f} "
          f"{len(examples) / index_s:>11.0f}")
    print(f"{'index, first %d examples' % len(subset):<44} {index_sub_s:>9.2f} "
          f"{len(subset) / index_sub_s:>11.0f}")
    print(f"{'naive_match, first %d examples' % len(subset):<44} {naive_sub_s:>9.2f} "
          f"{len(subset) / naive_sub_s:>11.1f}")
    print(f"speed-up on the same examples: {naive_sub_s / index_sub_s:.0f}x")
    print(f"same answers on the {len(subset)} examples: {index_found == naive_found} "
          f"({sum(map(bool, naive_found))} contaminated); on the {len(quoted_examples)} "
          f"with a quote: {quoted_agree}")
    print(f"quotes caught: {caught} / {sum(quoted)}; "
          f"examples without a pasted quote that match: {other}")


if __name__ == "__main__":
    main()
