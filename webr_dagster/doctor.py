"""`webr doctor`: check what a run needs and say what is wrong in plain words.

Each check returns a ``Check``; none of them changes the warehouse or the ledger.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

MIN_FREE_BYTES = 1 << 30  # below this a run may die half-way through writing
PROMPT = [{"role": "user", "content": "Reply with one word: ready."}]


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def check_litellm() -> Check:
    started = time.monotonic()
    try:
        from .resources.litellm_setup import import_litellm

        import_litellm()
    except Exception as error:  # noqa: BLE001 - reported, not raised
        return Check("litellm imports", False, f"{type(error).__name__}: {error}. Reinstall "
                     "the project as the README says")
    return Check("litellm imports", True,
                 f"version {_version('litellm')}, {time.monotonic() - started:.1f} s")


def _version(distribution: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"


def _cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    flags = set(text.split())
    return " ".join(f for f in ("avx2", "avx512f", "amx_int8") if f in flags)


def check_model(llm) -> Check:
    """The configured model (or the built-in one) answers a one-line prompt."""
    from .resources.completion import complete_once
    from .resources.litellm_setup import prepare_litellm

    name = f"model {llm.model_name} answers"
    request = {**llm.completion_request(PROMPT), "max_tokens": 8}
    started = time.monotonic()
    try:
        litellm = prepare_litellm(**llm.litellm_setup())
        reply = asyncio.run(complete_once(litellm, request))
    except Exception as error:  # noqa: BLE001 - e.g. the built-in model cannot load
        return Check(name, False, f"{type(error).__name__}: {error}")
    took = time.monotonic() - started
    if not reply.ok:
        hint = ("check WEBR_MODEL, WEBR_API_BASE and WEBR_API_KEY" if llm.model
                else "reinstall the project as the README says")
        return Check(name, False, f"{reply.reason}: {reply.message[:200]}; {hint}")
    detail = f"{reply.content.strip()[:40]!r} in {took:.1f} s"
    if llm.model is None:
        detail += f"; CPU flags: {_cpu_flags() or 'none of avx2/avx512f/amx'}"
    return Check(name, True, detail)


def check_writable(folder: Path) -> Check:
    name = f"WEBR_HOME {folder} is writable"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".doctor-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as error:
        return Check(name, False, f"{error}; set WEBR_HOME to a folder you can write")
    return Check(name, True, "yes")


def check_duckdb_file(path: Path) -> Check:
    """The file opens for writing: no other process holds DuckDB's lock on it."""
    import duckdb

    name = f"{path.name} is free to write"
    if not path.exists():
        return Check(name, True, "not created yet")
    try:
        duckdb.connect(str(path)).close()
    except duckdb.IOException as error:
        message = str(error)
        if "lock" in message.lower():
            return Check(name, False, f"locked by another process ({message.split('(', 1)[-1]}"
                         .rstrip(")") + "): stop that process (a running 'webr run' or a "
                         "Dagster run), or wait for it to finish")
        return Check(name, False, message)
    except duckdb.Error as error:
        return Check(name, False, f"{type(error).__name__}: {error}")
    return Check(name, True, "yes")


def check_lake(location) -> Check:
    """The DuckLake attaches: catalog reachable, data folder writable."""
    from .resources import lake

    name = "DuckLake (WEBR_STORAGE=ducklake) attaches"
    try:
        with lake.connection(location) as con:
            con.execute("SELECT 1").fetchone()
    except Exception as error:  # noqa: BLE001 - reported, not raised
        return Check(name, False, f"{type(error).__name__}: {error}. Check WEBR_LAKE_CATALOG "
                     "(the catalog database must exist; the password goes in PGPASSWORD) "
                     "and WEBR_LAKE_DATA")
    return Check(name, True, f"yes, data in {location.data_path}")


def check_dagster_home(home) -> Check:
    from .instance import ensure_dagster_home

    name = "Dagster home"
    try:
        dagster_home = ensure_dagster_home(home)
        from dagster import DagsterInstance

        with DagsterInstance.from_config(str(dagster_home)):
            pass
    except Exception as error:  # noqa: BLE001 - reported, not raised
        return Check(name, False, f"{type(error).__name__}: {error}")
    return Check(name, True, f"{dagster_home} (dagster.yaml present)")


def check_disk(folder: Path) -> Check:
    free = shutil.disk_usage(folder).free
    text = f"{free / (1 << 30):.1f} GiB free"
    if free < MIN_FREE_BYTES:
        return Check("free disk", False, f"{text}; a run needs at least 1 GiB")
    return Check("free disk", True, text)


def run_checks(home, llm) -> list[Check]:
    location = home.lake
    storage = ([check_lake(location)] if location is not None else
               [check_duckdb_file(home.warehouse), check_duckdb_file(home.ledger)])
    checks = [check_writable(home.root), *storage, check_dagster_home(home),
              check_disk(home.root), check_litellm()]
    if checks[-1].ok:
        checks.append(check_model(llm))
    return checks
