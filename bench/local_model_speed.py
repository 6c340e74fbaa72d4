"""Built-in model speed: pages per minute with and without llama.cpp's extra weight
buffers and prompt-prefix reuse.

Runs the method's LLM calls (author profile, request, WI response or WR answer + refine)
for the pages of the shipped sample crawl on SmolLM2-135M through llama.cpp, at
temperature 0 so every configuration generates the same tokens. Each configuration runs in
a process of its own (a model loads once per process; a crash is reported, not fatal), all
in the same run:

  extra-buffers  one process, prefix reuse, llama.cpp's extra (repacked / AMX) weight
                 buffers on: the setting before the built-in model turned them off (baseline)
  plain          one process, prefix reuse, no extra buffers (the built-in model's setting)
  plain-no-reuse one process, a fresh llama.cpp context for every call
  plain-2proc    two worker processes with one thread each, each page pinned to a worker
                 (what `webr run` uses on two cores)

    python bench/local_model_speed.py [--pages 6] [--max-tokens 120]
"""

import argparse
import json
import os
import signal
import subprocess
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


CONFIGURATIONS = {  # name: (extra buffers, prefix reuse, worker processes)
    "extra-buffers": (True, True, 0),
    "plain": (False, True, 0),
    "plain-no-reuse": (False, False, 0),
    "plain-2proc": (False, True, 2),
}


def measure_one(name: str, pages_limit: int, max_tokens: int) -> dict:
    from webr_dagster.resources import local_model

    extra_buffers, reuse, processes = CONFIGURATIONS[name]
    local_model.USE_EXTRA_BUFFERS = extra_buffers
    local_model.REUSE_PROMPT_PREFIX = reuse
    pages = sample_pages(pages_limit)
    if processes:
        warm_up_workers(processes)
    else:
        local_model.local_model()  # load the model outside the timing
    elapsed, tokens = run_config(pages, processes, max_tokens)
    return {"pages": len(pages), "seconds": elapsed, "tokens": tokens}


def measure_in_child(name: str, pages: int, max_tokens: int) -> dict:
    done = subprocess.run([sys.executable, __file__, "--one", name, "--pages", str(pages),
                           "--max-tokens", str(max_tokens)], capture_output=True, text=True)
    if done.returncode != 0:
        cause = (f"signal {signal.Signals(-done.returncode).name}" if done.returncode < 0
                 else f"exit {done.returncode}")
        return {"crashed": cause, "stderr": done.stderr[-500:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=6)
    parser.add_argument("--max-tokens", type=int, default=120)
    parser.add_argument("--one", choices=CONFIGURATIONS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one, args.pages, args.max_tokens)))
        return

    results = {name: measure_in_child(name, args.pages, args.max_tokens)
               for name in CONFIGURATIONS}
    base = results["extra-buffers"].get("seconds")
    print(f"{args.pages} pages, max {args.max_tokens} tokens per reply, temperature 0, "
          f"{os.cpu_count()} cores")
    print(f"{'configuration':<15} {'seconds':>8} {'pages/min':>10} {'tokens':>7} {'vs base':>8}")
    for name, result in results.items():
        if "crashed" in result:
            print(f"{name:<15} crashed ({result['crashed']})")
            continue
        ratio = f"{base / result['seconds']:>8.2f}" if base else f"{'-':>8}"
        print(f"{name:<15} {result['seconds']:>8.1f} "
              f"{result['pages'] / result['seconds'] * 60:>10.2f} {result['tokens']:>7} {ratio}")


if __name__ == "__main__":
    main()
