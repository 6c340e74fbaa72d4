"""A partition re-written in a DuckLake while another writer commits to the same table:
the conflict is retried as a whole transaction, and no reader ever sees it half-written."""

import pytest

from tests.support.postgres import new_database
from webr_dagster.resources import lake


@pytest.fixture
def location(postgres_dsn, tmp_path) -> lake.LakeLocation:
    catalog = f"postgres:dbname={new_database(postgres_dsn, 'webr_txn')} {postgres_dsn}"
    location = lake.LakeLocation(catalog, str(tmp_path / "data"), str(tmp_path / "ext"))
    with lake.connection(location) as con:
        con.execute("CREATE SCHEMA webr")
        con.execute("CREATE TABLE webr.pages (domain VARCHAR, n BIGINT)")
        con.execute("INSERT INTO webr.pages SELECT d, range FROM range(50), "
                    "(VALUES ('a.example'), ('b.example')) t(d)")
    return location


def _rows(location, domain):
    with lake.connection(location) as con:
        return con.execute("SELECT n FROM webr.pages WHERE domain = ? ORDER BY n",
                           [domain]).fetchall()


def test_a_conflicting_rewrite_is_retried_whole(location):
    attempts, retries = [], []

    def rewrite_a(con):
        attempts.append(1)
        con.execute("DELETE FROM webr.pages WHERE domain = 'a.example'")
        if len(attempts) == 1:
            # Another writer re-writes b.example and commits first: DuckLake checks
            # conflicts per table, so this transaction's commit must fail.
            with lake.connection(location) as other:
                other.execute("BEGIN TRANSACTION")
                other.execute("DELETE FROM webr.pages WHERE domain = 'b.example'")
                other.execute("INSERT INTO webr.pages SELECT 'b.example', range + 100 "
                              "FROM range(50)")
                other.execute("COMMIT")
        con.execute("INSERT INTO webr.pages SELECT 'a.example', range + 1000 FROM range(7)")

    lake.in_transaction(location, rewrite_a,
                        on_retry=lambda attempt, error: retries.append(str(error)))
    assert len(attempts) == 2 and len(retries) == 1
    assert "conflict" in retries[0].lower()
    assert [n for (n,) in _rows(location, "a.example")] == list(range(1000, 1007))
    assert [n for (n,) in _rows(location, "b.example")] == list(range(100, 150))


def test_a_failed_write_leaves_the_partition_as_it_was(location):
    def broken(con):
        con.execute("DELETE FROM webr.pages WHERE domain = 'a.example'")
        raise ValueError("the step failed half-way")

    with pytest.raises(ValueError):
        lake.in_transaction(location, broken)
    assert [n for (n,) in _rows(location, "a.example")] == list(range(50))


def test_conflicts_past_the_last_attempt_are_reported(location, monkeypatch):
    monkeypatch.setattr(lake, "RETRY_BASE_S", 0.001)

    def always_loses(con):
        con.execute("DELETE FROM webr.pages WHERE domain = 'a.example'")
        with lake.connection(location) as other:
            other.execute("INSERT INTO webr.pages VALUES ('b.example', -1)")
            other.execute("DELETE FROM webr.pages WHERE domain = 'b.example' AND n = -1")

    with pytest.raises(lake.CommitConflict):
        lake.in_transaction(location, always_loses, attempts=3)
    assert [n for (n,) in _rows(location, "a.example")] == list(range(50))
