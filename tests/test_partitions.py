"""Domain partitions: WARC pages land under their host; one domain's re-materialization
replaces only that domain's rows."""

from collections import Counter
from urllib.parse import urlsplit

import duckdb
from dagster import DagsterInstance, materialize

from webr_dagster.assets import ALL_ASSETS
from webr_dagster.cli import main
from webr_dagster.jobs import DOMAIN_ASSETS
from webr_dagster.resources.environment import resources_from_env
from webr_dagster.webr.readers import find_crawl_sources


def _host(url):
    host = urlsplit(url).hostname.lower()
    return host[4:] if host.startswith("www.") else host


def test_warc_pages_land_in_their_host_partitions(webr_env, corpora):
    instance = DagsterInstance.get()
    resources = resources_from_env()
    sources = find_crawl_sources([corpora / "warc-samples"])
    instance.add_dynamic_partitions("crawl_source", sources)
    domains = Counter()
    for source in sources:
        result = materialize(ALL_ASSETS, selection=["crawl_index"], partition_key=source,
                             instance=instance, resources=resources)
        assert result.success
        domains.update(result.asset_materializations_for_node("crawl_index")[0]
                       .metadata["domains"].data)
    assert sum(1 for n in domains.values() if n >= 2) == 10
    instance.add_dynamic_partitions("domain", list(domains))
    for domain in domains:
        assert materialize(ALL_ASSETS, selection=["raw_pages"], partition_key=domain,
                           instance=instance, resources=resources).success
    con = duckdb.connect(str(webr_env / "warehouse.duckdb"), read_only=True)
    rows = con.sql("SELECT domain, url FROM webr.raw_pages").fetchall()
    con.close()
    assert rows and all(domain == _host(url) for domain, url in rows)
    stored = Counter(domain for domain, _ in rows)
    assert {d for d, n in stored.items() if n >= 2} == {d for d, n in domains.items() if n >= 2}


TABLES = ["raw_pages", "cleaned_pages", "author_profiles", "instruction_side_pairs",
          "response_side_pairs", "filtered_pairs"]


def _snapshot(home):
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return {t: con.sql(f"SELECT * FROM webr.{t} ORDER BY ALL").df() for t in TABLES}
    finally:
        con.close()


def test_rematerializing_one_domain_changes_only_its_rows(webr_env, loopback, capsys):
    assert main(["run", "--sample"]) == 0
    before = _snapshot(webr_env)
    target = "garden-notes.example"
    assert (before["raw_pages"]["domain"] == target).sum() == 2

    # Same domain again, now capped at one page: its rows change, nobody else's do.
    resources = resources_from_env(pages_per_domain_limit=1)
    result = materialize(ALL_ASSETS, selection=DOMAIN_ASSETS, partition_key=target,
                         instance=DagsterInstance.get(), resources=resources)
    assert result.success
    after = _snapshot(webr_env)
    for table in TABLES:
        old, new = before[table], after[table]
        others_old = old[old["domain"] != target].reset_index(drop=True)
        others_new = new[new["domain"] != target].reset_index(drop=True)
        assert others_old.equals(others_new), table
    assert (after["raw_pages"]["domain"] == target).sum() == 1
    assert (after["cleaned_pages"]["domain"] == target).sum() == 1


def test_grouping_by_registrable_domain(webr_env, corpora, monkeypatch):
    monkeypatch.setenv("WEBR_DOMAIN_GROUPING", "registrable")
    instance = DagsterInstance.get()
    resources = resources_from_env()
    sources = find_crawl_sources([corpora / "warc-samples"])
    instance.add_dynamic_partitions("crawl_source", sources)
    by_host, grouped = Counter(), Counter()
    for source in sources:
        result = materialize(ALL_ASSETS, selection=["crawl_index"], partition_key=source,
                             instance=instance, resources=resources)
        grouped.update(result.asset_materializations_for_node("crawl_index")[0]
                       .metadata["domains"].data)
    con = duckdb.connect(str(webr_env / "warehouse.duckdb"), read_only=True)
    rows = con.sql("SELECT url, domain FROM webr.crawl_index WHERE status = 'kept'").fetchall()
    con.close()
    by_host.update(_host(url) for url, _ in rows if url)
    assert len(grouped) < len(by_host)  # subdomains of one site share a partition
    assert "wikipedia.org" in grouped and not any(d.endswith(".wikipedia.org") for d in grouped)
    assert all(domain == _host(url) or _host(url).endswith("." + domain) for url, domain in rows)
