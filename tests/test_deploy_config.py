"""The deployment's files and the instance's writer limit, without any server: what
`webr deploy print-config` writes, and what a DuckLake lifts."""

import yaml

from webr_dagster.cli import main
from webr_dagster.instance import ensure_dagster_home
from webr_dagster.resources.storage import WebRHome


def test_print_config_writes_the_three_files_and_names_secrets_only(tmp_path, monkeypatch,
                                                                     capsys):
    monkeypatch.setenv("WEBR_HOME", str(tmp_path / "home"))
    out = tmp_path / "deploy"
    assert main(["deploy", "print-config", "--out", str(out),
                 "--dagster-postgres", "postgresql://dagster@db:5432/dagster",
                 "--redis", "redis://queue:6379/0",
                 "--lake-catalog", "postgres:dbname=webr_lake host=db user=webr",
                 "--lake-data", "/mnt/lake", "--writers", "12"]) == 0
    config = yaml.safe_load((out / "dagster.yaml").read_text())
    assert config["storage"]["postgres"]["postgres_url"] == {"env": "DAGSTER_PG_URL"}
    assert config["run_launcher"]["class"] == "CeleryRunLauncher"
    assert config["run_launcher"]["config"]["broker"] == {"env": "WEBR_CELERY_BROKER"}
    assert config["concurrency"]["pools"]["default_limit"] == 12
    celery = yaml.safe_load((out / "celery.yaml").read_text())
    assert celery["execution"]["config"]["broker"] == {"env": "WEBR_CELERY_BROKER"}
    env = (out / "webr.env").read_text()
    # psycopg2 is what dagster-postgres ships: the URL names it.
    assert "DAGSTER_PG_URL=postgresql+psycopg2://dagster@db:5432/dagster" in env
    assert "WEBR_STORAGE=ducklake" in env and "WEBR_LAKE_WRITERS=12" in env
    assert "dagster-celery worker start" in capsys.readouterr().out


def test_a_lake_lifts_the_one_writer_limit(tmp_path, monkeypatch):
    home = WebRHome(tmp_path / "home").ensure()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))

    def pool_limit() -> int:
        config = ensure_dagster_home(home) / "dagster.yaml"
        return yaml.safe_load(config.read_text())["concurrency"]["pools"]["default_limit"]

    monkeypatch.delenv("WEBR_STORAGE", raising=False)
    assert pool_limit() == 1  # the DuckDB file: one writer
    monkeypatch.setenv("WEBR_STORAGE", "ducklake")
    monkeypatch.setenv("WEBR_LAKE_CATALOG", "postgres:dbname=x host=127.0.0.1")
    monkeypatch.setenv("WEBR_LAKE_WRITERS", "6")
    assert pool_limit() == 6
