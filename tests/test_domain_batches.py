"""Domains run in batches: one Dagster run covers a contiguous range of domain partitions,
each domain still gets its own materialization and metadata, and the data is the same as
one run per domain."""

import duckdb
import pytest
from dagster import AssetKey, AssetRecordsFilter, DagsterInstance

from webr_dagster.cli import main
from webr_dagster.partitions import domain_batches
from webr_dagster.runner import Runner

DOMAIN_TABLES = ["raw_pages", "cleaned_pages", "page_rejections", "author_profiles",
                 "instruction_side_pairs", "response_side_pairs", "filtered_pairs"]


def test_batches_are_contiguous_ranges_of_the_partition_order():
    order = ["a", "b", "c", "d", "e", "f", "g"]
    assert domain_batches(["a", "b", "c", "d", "e", "f", "g"], order, size=3) == [
        ["a", "b", "c"], ["d", "e", "f"], ["g"]]
    # A domain not asked for is never swept into a run's range.
    assert domain_batches(["a", "b", "d", "g"], order, size=10) == [["a", "b"], ["d"], ["g"]]
    assert domain_batches([], order) == []


def _tables(home):
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return {t: con.sql(f"SELECT * FROM webr.{t} ORDER BY ALL").df() for t in DOMAIN_TABLES}
    finally:
        con.close()


@pytest.fixture
def one_run_per_domain(tmp_path, monkeypatch, webr_env):
    """The sample crawl run the old way, one domain per run, in a home of its own."""
    home = tmp_path / "per_domain_home"
    monkeypatch.setenv("WEBR_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    from webr_dagster.cli import SAMPLE_CRAWL
    from webr_dagster.webr.readers import find_crawl_sources

    runner = Runner()
    index = runner.index(find_crawl_sources([str(SAMPLE_CRAWL)]))
    for domain in sorted(index.pages_by_domain):
        assert runner.run_domains([domain]).success
    tables = _tables(home)
    monkeypatch.setenv("WEBR_HOME", str(webr_env))
    monkeypatch.setenv("DAGSTER_HOME", str(webr_env / "dagster"))
    return tables


def test_one_batch_gives_the_data_and_metadata_of_one_run_per_domain(
        webr_env, one_run_per_domain, capsys):
    assert main(["run", "--sample"]) == 0
    out = capsys.readouterr().out
    batched = _tables(webr_env)
    for table in DOMAIN_TABLES:
        assert batched[table].equals(one_run_per_domain[table]), table

    instance = DagsterInstance.from_config(str(webr_env / "dagster"))
    runs = instance.get_runs()
    assert len([r for r in runs if "dagster/asset_partition_range_start" in r.tags]) == 1
    cleaned = batched["cleaned_pages"]
    for domain, rows in cleaned.groupby("domain"):
        [record] = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=AssetKey("cleaned_pages"), asset_partitions=[domain]),
            limit=1).records
        metadata = record.asset_materialization.metadata
        assert metadata["pages"].value == len(rows)  # its own count, not the batch's
        assert f"{domain}: 2 pages -> {len(rows)} cleaned" in out


def test_the_domain_sensor_leaves_alone_what_the_cli_already_built(webr_env, capsys):
    from dagster import SensorResult, build_sensor_context

    from webr_dagster.sensors import indexed_domains_sensor

    assert main(["run", "--sample"]) == 0
    instance = DagsterInstance.get()
    result = indexed_domains_sensor(build_sensor_context(instance=instance))
    assert isinstance(result, SensorResult) and result.run_requests == []
    assert result.cursor  # the index events are handled: the next tick skips them


def test_the_domain_sensor_leaves_alone_domains_a_queued_run_will_build(webr_env):
    from dagster import SensorResult, build_sensor_context

    from webr_dagster.cli import SAMPLE_CRAWL
    from webr_dagster.definitions import defs
    from webr_dagster.partitions import range_tags
    from webr_dagster.sensors import indexed_domains_sensor
    from webr_dagster.webr.readers import find_crawl_sources

    runner = Runner()
    domains = sorted(runner.index(find_crawl_sources([str(SAMPLE_CRAWL)])).pages_by_domain)
    # A Materialize click on the first domain, queued behind another run: planned, not built.
    job = defs.resolve_job_def("webr_domain")
    runner.instance.create_run_for_job(job, tags=range_tags(domains[:1]))

    result = indexed_domains_sensor(build_sensor_context(instance=runner.instance))
    assert isinstance(result, SensorResult)
    requested = {tag for r in result.run_requests for tag in
                 (r.tags["dagster/asset_partition_range_start"],
                  r.tags["dagster/asset_partition_range_end"])}
    assert domains[0] not in requested and set(domains[1:]) <= requested


def test_filtered_pairs_in_a_batch_removes_near_duplicates_within_each_domain_only(tmp_path):
    """Across domains, copies are sft_splits' business: a domain's rows do not depend on
    which domains share its run."""
    from dagster import asset, materialize

    from tests.test_filtered_and_split_assets import GUIDE, _pair
    from webr_dagster.assets.filtered import filtered_pairs
    from webr_dagster.assets.tables import conform
    from webr_dagster.partitions import domain_backfill_policy, domain_partitions, range_tags
    from webr_dagster.resources.settings import WebRSettings
    from webr_dagster.resources.storage import WebRHome, warehouse_io_manager

    pairs = conform([_pair("a-early", request=GUIDE, domain="a.example", offset=1),
                     _pair("a-late", request=GUIDE, domain="a.example", offset=2),
                     _pair("b-copy", request=GUIDE, domain="b.example", offset=0)], "pairs")
    like_the_pairs = {"partitions_def": domain_partitions, "metadata": {"partition_expr": "domain"},
                      "backfill_policy": domain_backfill_policy}

    @asset(name="instruction_side_pairs", **like_the_pairs)
    def wi_pairs():
        return pairs

    @asset(name="response_side_pairs", **like_the_pairs)
    def wr_pairs():
        return pairs.iloc[0:0]

    home = WebRHome(tmp_path / "home").ensure()
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("domain", ["a.example", "b.example"])
    result = materialize([wi_pairs, wr_pairs, filtered_pairs], instance=instance,
                         tags=range_tags(["a.example", "b.example"]),
                         resources={"io_manager": warehouse_io_manager(home),
                                    "settings": WebRSettings()})
    assert result.success
    con = duckdb.connect(str(home.warehouse), read_only=True)
    kept = dict(con.execute("SELECT page_id, kept FROM webr.filtered_pairs").fetchall())
    con.close()
    assert kept == {"a-early": True, "a-late": False, "b-copy": True}
