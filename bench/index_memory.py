"""Peak memory of indexing a crawl file through the pipeline (the crawl_index asset, which
reads every record, classifies it and writes the index), at 10k and 100k pages.

Each size runs in a fresh process; the peak resident memory (VmHWM) is read after the
materialization, and the ratio 100k / 10k is printed (target <= 1.2). The process's
memory right before materializing (imports, Dagster, DuckDB) is printed as the baseline.

    python bench/index_memory.py [--sizes 10000 100000]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def write_crawl(path: Path, pages: int) -> None:
    body = ("Plain paragraph text about a subject, long enough to look like a page. " * 28)
    with open(path, "w") as handle:
        for index in range(pages):
            handle.write(json.dumps({"url": f"https://site{index % 100}.example/p/{index}",
                                     "text": f"{index} {body}"}) + "\n")


def child(crawl: str) -> None:
    home = Path(tempfile.mkdtemp(prefix="webr-index-"))
    os.environ.update({"WEBR_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")})
    sys.path.insert(0, str(ROOT))
    from dagster import DagsterInstance, materialize

    from webr_dagster.assets import ALL_ASSETS
    from webr_dagster.instance import ensure_dagster_home
    from webr_dagster.resources.environment import resources_from_env
    from webr_dagster.resources.storage import WebRHome

    ensure_dagster_home(WebRHome(home).ensure())
    instance = DagsterInstance.get()
    instance.add_dynamic_partitions("crawl_source", [crawl])
    resources = resources_from_env()
    before = vm_hwm_mb()
    result = materialize(ALL_ASSETS, selection=["crawl_index"], partition_key=crawl,
                         instance=instance, resources=resources,
                         run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}})
    records = result.asset_materializations_for_node("crawl_index")[0].metadata["records"].value
    print(json.dumps({"before_mb": before, "peak_mb": vm_hwm_mb(), "records": records}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    folder = Path(tempfile.mkdtemp(prefix="webr-crawl-"))
    results = {}
    for size in args.sizes:
        crawl = folder / f"crawl-{size}.jsonl"
        write_crawl(crawl, size)
        out = subprocess.run([sys.executable, __file__, "--child", str(crawl)],
                             capture_output=True, text=True, check=True).stdout
        results[size] = json.loads(out.strip().splitlines()[-1])
        results[size]["file_mb"] = crawl.stat().st_size / 2**20
    print(f"{'pages':>8} {'file MB':>8} {'records':>8} {'before MB':>10} {'peak MB':>8}")
    for size, r in results.items():
        print(f"{size:>8} {r['file_mb']:>8.0f} {r['records']:>8} {r['before_mb']:>10.1f} "
              f"{r['peak_mb']:>8.1f}")
    small, large = results[args.sizes[0]], results[args.sizes[-1]]
    print(f"peak ratio {args.sizes[-1]} / {args.sizes[0]} pages: "
          f"{large['peak_mb'] / small['peak_mb']:.2f} (target <= 1.2)")


if __name__ == "__main__":
    main()
