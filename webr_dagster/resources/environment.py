"""The resource set for this environment, read from WEBR_* variables.

WEBR_MODEL unset selects the built-in offline model; WEBR_API_KEY is passed as an
``EnvVar`` so the secret is read at run time and never written to run config, logs or
DuckDB.
"""

from __future__ import annotations

import os

from dagster import EnvVar

from ..webr.prompts import load_templates
from ..webr.variants import DEFAULT, get_variant
from .llm import LLMResource
from .settings import WebRSettings
from .storage import WebRHome, variant_schema, warehouse_io_manager, warehouse_resource

# The built-in 135M model rambles and is slow on a CPU: keep its answers and inputs short
# (a configured model gets max_tokens 4096 and a cut sized from its context window).
LOCAL_MAX_TOKENS = 400
LOCAL_MAX_INPUT_CHARS = 3000


def _number(name: str, kind=float):
    value = os.environ.get(name)
    return kind(value) if value not in (None, "") else None


def lake_fields(home: WebRHome) -> dict:
    """The lake's fields of a resource when WEBR_STORAGE=ducklake (else none); the catalog
    as an EnvVar, so a host or user in it never lands in run config."""
    location = home.lake
    if location is None:
        return {}
    return {"lake_catalog": EnvVar("WEBR_LAKE_CATALOG"), "lake_data": location.data_path,
            "extension_directory": location.extension_directory}


def llm_from_env(home: WebRHome, **overrides) -> LLMResource:
    model = os.environ.get("WEBR_MODEL") or None
    options = {
        "model": model,
        "api_base": os.environ.get("WEBR_API_BASE") or None,
        "ledger_path": str(home.ledger),
        **lake_fields(home),
        "max_cost_usd": _number("WEBR_MAX_COST_USD"),
        "requests_per_minute": _number("WEBR_RPM"),
        "tokens_per_minute": _number("WEBR_TPM"),
    }
    if os.environ.get("WEBR_API_KEY"):
        options["api_key"] = EnvVar("WEBR_API_KEY")
    for name, key, kind in (
        ("WEBR_CONCURRENCY", "concurrency", int),
        ("WEBR_TEMPERATURE", "temperature", float),
        ("WEBR_TOP_P", "top_p", float),
        ("WEBR_MAX_TOKENS", "max_tokens", int),
        ("WEBR_CONTEXT_TOKENS", "context_tokens", int),
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


def variant_export_dir(home: WebRHome, variant: str) -> str:
    """The export folder of a variant: `exports/webr-sft`, `exports/webr-sft-wi-only`, ..."""
    return str(home.exports / ("webr-sft" if variant == DEFAULT else f"webr-sft-{variant}"))


def settings_from_env(home: WebRHome, **overrides) -> WebRSettings:
    # WEBR_VARIANT (or a `variant` override, as `webr run --variant` passes): one of the
    # paper's ablations, with its own export folder (and warehouse schema, see below).
    variant = overrides.get("variant") or os.environ.get("WEBR_VARIANT") or DEFAULT
    get_variant(variant)  # a mistyped variant fails before any run
    options: dict = {"export_dir": variant_export_dir(home, variant),
                     "webr_home": str(home.root), "variant": variant}
    if not os.environ.get("WEBR_MODEL"):
        options["max_input_chars"] = LOCAL_MAX_INPUT_CHARS
    # WEBR_MAX_INPUT_CHARS: an explicit page cut (0: none); unset, the cut is sized from the
    # model's context window (LLMResource.input_cut).
    for name, key, kind in (
        ("WEBR_SEED", "seed", int), ("WEBR_TEST_SHARE", "test_share", float),
        ("WEBR_MAX_INPUT_CHARS", "max_input_chars", int),
        ("WEBR_DECONTAM_LONG_N", "decontam_long_n", int),
        ("WEBR_DECONTAM_SHORT_N", "decontam_short_n", int),
        ("WEBR_DECONTAM_SHORT_COVERAGE", "decontam_short_coverage", float),
        ("WEBR_DECONTAM_MIN_PROMPT_WORDS", "decontam_min_prompt_words", int),
        ("WEBR_MIX_TOLERANCE", "mix_tolerance", float),
        ("WEBR_SCOPE_TOLERANCE", "scope_tolerance", float),
        ("WEBR_MAX_DROP_SHARE", "max_drop_share", float),
        ("WEBR_GATE_MIN_PAIRS", "gate_min_pairs", int),
    ):
        value = _number(name, kind)
        if value is not None:
            options[key] = value
    if "WEBR_LANGUAGES" in os.environ:
        options["languages"] = [c.strip() for c in os.environ["WEBR_LANGUAGES"].split(",")
                                if c.strip()]
    if os.environ.get("WEBR_DOMAIN_GROUPING"):
        options["domain_grouping"] = os.environ["WEBR_DOMAIN_GROUPING"]
    if os.environ.get("WEBR_DECONTAMINATE"):  # prompt files checked besides the bundled sets
        files = [os.path.abspath(p.strip()) for p in os.environ["WEBR_DECONTAMINATE"].split(",")
                 if p.strip()]
        options["benchmarks"] = [*WebRSettings().benchmarks, *files]
    if os.environ.get("WEBR_TEMPLATES"):
        options["templates_path"] = os.path.abspath(os.environ["WEBR_TEMPLATES"])
    options.update({k: v for k, v in overrides.items() if v is not None})
    load_templates(options.get("templates_path"))  # a bad templates file fails before any run
    return WebRSettings(**options)


def resources_from_env(home: WebRHome | None = None, llm_overrides: dict | None = None,
                       **setting_overrides) -> dict:
    home = (home or WebRHome.from_env()).ensure()
    settings = settings_from_env(home, **setting_overrides)
    return {
        # Each variant's tables in their own schema of the same file; the ledger is shared.
        "io_manager": warehouse_io_manager(home, variant_schema(settings.variant)),
        "warehouse": warehouse_resource(home, **lake_fields(home)),
        "llm": llm_from_env(home, **(llm_overrides or {})),
        "settings": settings,
    }
