"""crawl_source partition keys are short and readable, and lead back to their files."""

import shutil

import duckdb
from dagster import DagsterInstance

from webr_dagster.cli import main
from webr_dagster.resources.storage import WebRHome


def test_keys_are_landing_paths_or_names_with_a_short_hash(tmp_path):
    home = WebRHome(tmp_path / "home").ensure()
    inside = home.landing / "2026" / "crawl.warc.gz"
    inside.parent.mkdir()
    inside.write_bytes(b"")
    outside = tmp_path / "elsewhere" / "crawl.warc.gz"
    outside.parent.mkdir()
    outside.write_bytes(b"")

    assert home.source_key(str(inside)) == "2026/crawl.warc.gz"
    key = home.source_key(str(outside))
    assert key.startswith("crawl.warc.gz~") and len(key) == len("crawl.warc.gz~") + 8
    assert home.register_sources([str(inside), str(outside)]) == ["2026/crawl.warc.gz", key]
    again = WebRHome(tmp_path / "home")  # another process: the registry is on disk
    assert again.source_path(key) == str(outside)
    assert again.source_path("2026/crawl.warc.gz") == str(inside)
    assert again.source_path(str(outside)) == str(outside)  # keys of earlier versions


def test_webr_run_on_a_landing_file_uses_the_sensors_key(webr_env, corpora, capsys):
    dropped = webr_env / "landing" / "ccnet.jsonl"
    shutil.copy(corpora / "ccnet-jsonl" / "cc_en_head-0174.jsonl", dropped)
    assert main(["run", str(dropped), "--limit", "1"]) == 0
    instance = DagsterInstance.get()
    assert instance.get_dynamic_partitions("crawl_source") == ["ccnet.jsonl"]
    con = duckdb.connect(str(webr_env / "warehouse.duckdb"), read_only=True)
    stored = con.execute("SELECT DISTINCT crawl_source FROM webr.crawl_index").fetchall()
    pages = con.execute("SELECT count(*) FROM webr.raw_pages").fetchone()[0]
    con.close()
    assert stored == [("ccnet.jsonl",)] and pages > 0  # read back through the key
