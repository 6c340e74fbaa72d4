"""Built-in model speed: pages per minute with and without prompt-prefix reuse.

Runs the method's LLM calls (author profile, request, WI response or WR answer + refine)
for the pages of the shipped sample crawl on SmolLM2-135M through llama.cpp, at
temperature 0 so every configuration generates the same tokens. Configurations, measured
in the same run:

  no-reuse     one process, a fresh llama.cpp context for every call (baseline)
  reuse        one process, consecutive calls of a page share the cached page prefix
  reuse-2proc  two worker processes with one thread each, each page pinned to a worker

    python bench/local_model_speed.py [--pages 6] [--max-tokens 120]
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


def sample_pages(limit: int) -> list[tuple[str, str]]:
    from webr_dagster.assets.pages import page_id_of
    from webr_dagster.webr.extract import extract_main_text
    from webr_dagster.webr.readers import find_crawl_sources, iter_records

    pages = []
    for source in find_crawl_sources([ROOT / "webr_dagster" / "sample_crawl"]):
        for record in iter_records(source):
            extracted = extract_main_text(record.body, record.url)
            pages.append((page_id_of(record.url, record.body), extracted.text))
    return pages[:limit]


def run_config(pages, processes: int, max_tokens: int) -> tuple[float, int]:
    from webr_dagster.assets.pairs import generate_pair
    from webr_dagster.resources.llm import LLMResource
    from webr_dagster.webr.prompts import AUTHOR_PROFILE
    from webr_dagster.webr.sampling import plan_page

    resource = LLMResource(model=None, temperature=0.0, max_tokens=max_tokens,
                           concurrency=max(processes, 1), call_processes=processes,
                           ledger_path=str(Path(tempfile.mkdtemp()) / "ledger.duckdb"))
    with resource.open_session("bench") as session:
        def job(page_id, text):
            async def run():
                profile = await session.call(AUTHOR_PROFILE.messages(text=text),
                                             stage="author_profile", page_id=page_id,
                                             template=AUTHOR_PROFILE.tag)
                plan = plan_page(page_id, text, seed=42)
                return await generate_pair(session, plan, profile.content)
            return run

        started = time.monotonic()
        session.run(job(page_id, text) for page_id, text in pages)
        elapsed = time.monotonic() - started
    return elapsed, session.stats.completion_tokens


def warm_up_workers(processes: int) -> None:
    """Start the workers and load each one's model outside the timings."""
    import zlib

    from webr_dagster.resources.llm import LLMResource

    resource = LLMResource(model=None, max_tokens=1, concurrency=processes,
                           call_processes=processes,
                           ledger_path=str(Path(tempfile.mkdtemp()) / "ledger.duckdb"))
    page_ids, slot = [], 0
    while len(page_ids) < processes:  # one page id routed to each worker
        candidate = f"warm-{slot}"
        if zlib.crc32(candidate.encode()) % processes == len(page_ids):
            page_ids.append(candidate)
        slot += 1
    with resource.open_session("warm") as session:
        def job(page_id):
            return lambda: session.call([{"role": "user", "content": "hi"}], stage="warm",
                                        page_id=page_id, template="warm")
        session.run(job(p) for p in page_ids)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=6)
    parser.add_argument("--max-tokens", type=int, default=120)
    args = parser.parse_args()

    from webr_dagster.resources import local_model

    pages = sample_pages(args.pages)
    local_model.local_model()  # load the model once, outside the timings
    results = {}
    for name, reuse, processes in (("no-reuse", False, 0), ("reuse", True, 0),
                                   ("reuse-2proc", True, 2)):
        local_model.REUSE_PROMPT_PREFIX = reuse
        if processes:
            warm_up_workers(processes)
        results[name] = run_config(pages, processes, args.max_tokens)
    base_elapsed = results["no-reuse"][0]
    print(f"{len(pages)} pages, max {args.max_tokens} tokens per reply, temperature 0, "
          f"{os.cpu_count()} cores")
    print(f"{'configuration':<13} {'seconds':>8} {'pages/min':>10} {'tokens':>7} {'speed-up':>9}")
    for name, (elapsed, tokens) in results.items():
        print(f"{name:<13} {elapsed:>8.1f} {len(pages) / elapsed * 60:>10.2f} {tokens:>7} "
              f"{base_elapsed / elapsed:>9.2f}")


if __name__ == "__main__":
    main()
