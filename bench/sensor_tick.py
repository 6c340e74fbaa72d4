"""Landing-sensor tick time with thousands of crawl files, against listing the folder.

The sensor only stats files (names, sizes, mtimes) and compares signatures with its
cursor; it never opens them. This prints, for growing folders, the first tick (every file
new), a quiet tick (nothing changed) and a bare `os.scandir` + stat of the same folder,
measured in the same run, with the ratio of the quiet tick to the bare listing.

    python bench/sensor_tick.py [--files 1000 5000 20000]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def bare_listing(folder: Path) -> int:
    count = 0
    for entry in os.scandir(folder):
        entry.stat()
        count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, nargs="+", default=[1000, 5000, 20000])
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="webr-sensor-"))
    os.environ.update({"WEBR_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")})
    from dagster import DagsterInstance, build_sensor_context

    from webr_dagster.instance import ensure_dagster_home
    from webr_dagster.resources.storage import WebRHome
    from webr_dagster.sensors import crawl_landing_sensor

    ensure_dagster_home(WebRHome(home).ensure())
    instance = DagsterInstance.get()
    landing = home / "landing"
    past = time.time() - 3600
    print(f"{'files':>6} {'first tick s':>12} {'quiet tick s':>12} {'listing s':>10} "
          f"{'quiet/listing':>13}")
    made = 0
    for target in args.files:
        for index in range(made, target):
            path = landing / f"crawl-{index:06d}.jsonl"
            path.write_text('{"url": "https://a.example/", "text": "x"}\n')
            os.utime(path, (past, past))
        made = target
        started = time.perf_counter()
        first = crawl_landing_sensor(build_sensor_context(instance=instance))
        first_s = time.perf_counter() - started
        started = time.perf_counter()
        quiet = crawl_landing_sensor(build_sensor_context(instance=instance, cursor=first.cursor))
        quiet_s = time.perf_counter() - started
        assert not getattr(quiet, "run_requests", None)
        started = time.perf_counter()
        bare_listing(landing)
        listing_s = time.perf_counter() - started
        print(f"{target:>6} {first_s:>12.3f} {quiet_s:>12.3f} {listing_s:>10.3f} "
              f"{quiet_s / listing_s:>13.1f}")


if __name__ == "__main__":
    main()
