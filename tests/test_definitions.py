"""The code location: assets with their lineage, jobs, sensors; loadable by `dagster` and `dg`."""

import os
import subprocess
import sys
from pathlib import Path

from dagster import AssetKey

ROOT = Path(__file__).resolve().parents[1]

LINEAGE = {
    "raw_pages": {"crawl_index"},
    "cleaned_pages": {"raw_pages"},
    "page_rejections": {"raw_pages"},
    "author_profiles": {"cleaned_pages"},
    "instruction_side_pairs": {"cleaned_pages", "author_profiles"},
    "response_side_pairs": {"cleaned_pages", "author_profiles"},
    "filtered_pairs": {"instruction_side_pairs", "response_side_pairs"},
    "decontaminated_pairs": {"filtered_pairs"},
    "sft_splits": {"decontaminated_pairs"},
    "sft_export": {"sft_splits"},
}
UNPARTITIONED = {"decontaminated_pairs", "sft_splits", "sft_export"}


def test_asset_graph_lineage_and_partitions(tmp_path, monkeypatch):
    monkeypatch.setenv("WEBR_HOME", str(tmp_path))
    from webr_dagster.definitions import defs

    graph = defs.resolve_asset_graph()
    for asset, parents in LINEAGE.items():
        node = graph.get(AssetKey(asset))
        assert {p.path[-1] for p in node.parent_keys} == parents, asset
        expected = None if asset in UNPARTITIONED else "domain"
        partitions = node.partitions_def
        assert (partitions.name if partitions else None) == expected, asset
    assert graph.get(AssetKey("crawl_index")).partitions_def.name == "crawl_source"
    # The quality gates stand between the splits and the export.
    gates = [spec for spec in graph.get(AssetKey("sft_splits")).check_keys]
    assert len(gates) == 6
    assert all(graph.get_check_spec(key).blocking for key in gates)
    assert {job.name for job in defs.jobs} >= {"index_crawl_source", "webr_domain", "webr_splits"}
    assert {s.name for s in defs.sensors} == {"crawl_landing_sensor", "indexed_domains_sensor",
                                              "failure_cause_sensor"}


def _cli(args, tmp_path):
    env = {**os.environ, "WEBR_HOME": str(tmp_path), "DAGSTER_HOME": str(tmp_path)}
    bindir = Path(sys.executable).parent
    return subprocess.run([str(bindir / args[0]), *args[1:]], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_dagster_and_dg_load_the_same_definitions(tmp_path):
    validated = _cli(["dagster", "definitions", "validate", "-w", "workspace.yaml"], tmp_path)
    assert validated.returncode == 0, validated.stderr[-2000:]
    listed = _cli(["dg", "list", "defs", "--json"], tmp_path)
    assert listed.returncode == 0, listed.stderr[-2000:]
    for name in LINEAGE:
        assert name in listed.stdout
