"""Re-materialized partitions leave their old Parquet files in the lake; the maintenance
job removes them, so the data folder stops growing however often domains are rebuilt."""

from webr_dagster.cli import main
from webr_dagster.definitions import defs
from webr_dagster.resources.environment import lake_fields
from webr_dagster.resources.storage import WebRHome, warehouse_resource


def _data_files(home: WebRHome) -> tuple[int, int]:
    files = [p for p in (home.root / "lake_data").rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def _maintain(home: WebRHome) -> dict:
    result = defs.get_job_def("lake_maintenance").execute_in_process(
        resources={"warehouse": warehouse_resource(home, **lake_fields(home))},
        run_config={"ops": {"maintain_lake": {"config": {"keep_snapshots_s": 0}}}})
    assert result.success
    [output] = [event for event in result.all_node_events if event.is_successful_output]
    return {key: value.value for key, value in
            output.event_specific_data.metadata.items()}


def test_maintenance_keeps_the_data_folder_from_growing(lake_env, loopback, corpora):
    # Enough rows per write to go to Parquet files (DuckLake keeps tiny writes inline in
    # its catalog until maintenance flushes them).
    run = ["run", str(corpora / "webr-sample" / "web_en_1k.json"), "--limit", "40"]
    home = WebRHome.from_env()
    assert main(run) == 0
    first = _data_files(home)
    for _ in range(3):  # every run re-writes every partition: new files, old ones kept
        assert main(run) == 0
    grown = _data_files(home)
    assert grown[0] > 2 * first[0]

    done = _maintain(home)
    assert done["snapshots_expired"] > 0 and done["files_deleted"] > 0
    after = _data_files(home)
    assert after[0] <= first[0] and after[1] < grown[1]
    for _ in range(2):  # rebuild and maintain again: back to the same size, not more
        assert main(run) == 0
        _maintain(home)
        assert _data_files(home)[0] <= after[0]
    # The data is whole: the last run's splits read back.
    with home.warehouse_connection() as con:
        assert con.execute("SELECT count(*) FROM webr.sft_splits").fetchone()[0] > 0
