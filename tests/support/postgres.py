"""A fresh PostgreSQL database per test or benchmark run (the server is .ci/start-services')."""

import uuid


def new_database(dsn: str, prefix: str) -> str:
    """Create an empty database on the server ``dsn`` (libpq key=value, no dbname); its name."""
    import psycopg2

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    con = psycopg2.connect(f"{dsn} dbname=postgres")
    con.autocommit = True
    with con.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
    con.close()
    return name
