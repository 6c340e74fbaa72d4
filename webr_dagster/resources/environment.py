"""The resource set for this environment, read from WEBR_* variables.

WEBR_MODEL unset selects the built-in offline model; WEBR_API_KEY is passed as an
``EnvVar`` so the secret is read at run time and never written to run config, logs or
DuckDB.
"""

from __future__ import annotations

import os

from dagster import EnvVar

from .llm import LLMResource
from .settings import WebRSettings
from .storage import WebRHome, warehouse_io_manager, warehouse_resource

# The built-in 135M model rambles and is slow on a CPU: keep its answers and inputs short.
LOCAL_MAX_TOKENS = 200
LOCAL_MAX_INPUT_CHARS = 3000


def _number(name: str, kind=float):
    value = os.environ.get(name)
    return kind(value) if value not in (None, "") else None


def llm_from_env(home: WebRHome, **overrides) -> LLMResource:
    model = os.environ.get("WEBR_MODEL") or None
    options = {
        "model": model,
        "api_base": os.environ.get("WEBR_API_BASE") or None,
        "ledger_path": str(home.ledger),
        "max_cost_usd": _number("WEBR_MAX_COST_USD"),
        "requests_per_minute": _number("WEBR_RPM"),
        "tokens_per_minute": _number("WEBR_TPM"),
    }
    if os.environ.get("WEBR_API_KEY"):
        options["api_key"] = EnvVar("WEBR_API_KEY")
    for name, key, kind in (
        ("WEBR_CONCURRENCY", "concurrency", int),
        ("WEBR_TEMPERATURE", "temperature", float),
        ("WEBR_MAX_TOKENS", "max_tokens", int),
        ("WEBR_TIMEOUT_S", "timeout_s", float),
        ("WEBR_MAX_ATTEMPTS", "max_attempts", int),
        ("WEBR_CALL_PROCESSES", "call_processes", int),
        ("WEBR_INPUT_USD_PER_MTOK", "input_usd_per_million_tokens", float),
        ("WEBR_OUTPUT_USD_PER_MTOK", "output_usd_per_million_tokens", float),
    ):
        value = _number(name, kind)
        if value is not None:
            options[key] = value
    options.update({k: v for k, v in overrides.items() if v is not None})
    if model is None:
        options.setdefault("max_tokens", LOCAL_MAX_TOKENS)
        # One model per core, one thread each, each page pinned to one of them: both cores
        # generate, and a page's calls reuse its cached prompt prefix
        # (bench/local_model_speed.py: 1.39x the pages per minute of one process).
        cores = os.cpu_count() or 1
        options.setdefault("call_processes", cores if cores > 1 else 0)
        options.setdefault("concurrency", cores)
    return LLMResource(**options)


def settings_from_env(home: WebRHome, **overrides) -> WebRSettings:
    options: dict = {"export_dir": str(home.exports / "webr-sft"), "webr_home": str(home.root)}
    if not os.environ.get("WEBR_MODEL"):
        options["max_input_chars"] = LOCAL_MAX_INPUT_CHARS
    for name, key, kind in (("WEBR_SEED", "seed", int), ("WEBR_TEST_SHARE", "test_share", float)):
        value = _number(name, kind)
        if value is not None:
            options[key] = value
    if "WEBR_LANGUAGES" in os.environ:
        options["languages"] = [c.strip() for c in os.environ["WEBR_LANGUAGES"].split(",")
                                if c.strip()]
    if os.environ.get("WEBR_DOMAIN_GROUPING"):
        options["domain_grouping"] = os.environ["WEBR_DOMAIN_GROUPING"]
    options.update({k: v for k, v in overrides.items() if v is not None})
    return WebRSettings(**options)


def resources_from_env(home: WebRHome | None = None, llm_overrides: dict | None = None,
                       **setting_overrides) -> dict:
    home = (home or WebRHome.from_env()).ensure()
    return {
        "io_manager": warehouse_io_manager(home),
        "warehouse": warehouse_resource(home),
        "llm": llm_from_env(home, **(llm_overrides or {})),
        "settings": settings_from_env(home, **setting_overrides),
    }
