"""The splits -> a Hugging Face dataset folder with its card and length plots.

Downstream of sft_splits and its blocking quality gates (checks.py): when a gate fails
this asset does not run, and the previous export stays as it was."""

import json

import pandas as pd
from dagster import AssetExecutionContext, AutomationCondition, MaterializeResult, \
    MetadataValue, asset
from dagster_duckdb import DuckDBResource

from ..instance import WAREHOUSE_POOL
from ..resources.settings import WebRSettings
from ..resources.storage import SCHEMA, variant_schema
from ..resources.tokenizer import TOKENIZER_NAME, count_tokens
from ..webr.card import bullets, dataset_card, table
from ..webr.card_plots import PLOT_FILES, turn_length_plots
from ..webr.export import export_dataset
from ..webr.postprocess import mix_ratios
from ..webr.variants import get_variant
from .decontaminated import CONTAMINATED, benchmark_index, benchmark_summary

LINEAGE = ["source_url", "domain", "page_id", "role", "scope", "model", "templates",
           "crawl_file", "record_offset"]
# (card line, SQL over the warehouse) of each stage; {s} is the run variant's schema.
STAGE_COUNTS = [
    ("crawl records", f"SELECT count(*) FROM {SCHEMA}.crawl_index"),
    ("raw pages", "SELECT count(*) FROM {s}.raw_pages"),
    ("cleaned pages", "SELECT count(*) FROM {s}.cleaned_pages"),
    ("pairs generated", "SELECT count(*) FROM {s}.filtered_pairs"),
    ("pairs kept by the domain filters", "SELECT count(*) FROM {s}.filtered_pairs WHERE kept"),
    ("pairs kept across domains", "SELECT count(*) FROM {s}.decontaminated_pairs WHERE kept"),
]
DROP_REASONS = [
    ("pages rejected", "SELECT reason, count(*) FROM {s}.page_rejections GROUP BY 1"),
    ("pairs dropped by the domain filters",
     "SELECT drop_reason, count(*) FROM {s}.filtered_pairs WHERE NOT kept GROUP BY 1"),
    ("pairs dropped across domains",
     "SELECT drop_reason, count(*) FROM {s}.decontaminated_pairs WHERE NOT kept GROUP BY 1"),
]


def _count(con, sql: str) -> int | str:
    try:
        return con.execute(sql).fetchone()[0]
    except Exception:  # a stage this warehouse has never run (e.g. no crawl index)
        return "n/a"


def _grouped(con, sql: str) -> dict[str, int]:
    try:
        return {str(k): v for k, v in sorted(con.execute(sql).fetchall(), key=lambda r: -r[1])}
    except Exception:
        return {}


def pipeline_section(con, schema: str, split_counts: dict[str, int]) -> str:
    lines = [[label, _count(con, sql.format(s=schema))] for label, sql in STAGE_COUNTS]
    lines += [[split, split_counts.get(split, 0)] for split in ("train_sft", "test_sft")]
    dropped = [[f"{label}: {reason}", count] for label, sql in DROP_REASONS
               for reason, count in _grouped(con, sql.format(s=schema)).items()]
    return (table(["stage", "count"], lines) + "\n\nDropped, by reason:\n\n"
            + (table(["why", "count"], dropped) if dropped else "- nothing"))


def decontamination_section(con, schema: str, settings: WebRSettings) -> str:
    summary = benchmark_summary(benchmark_index(settings))
    hits = _grouped(con, f"SELECT benchmark, count(*) FROM {schema}.decontaminated_pairs "
                         f"WHERE drop_reason = '{CONTAMINATED}' GROUP BY 1")
    rows = [[name, facts["prompts"], facts["too_short"], hits.get(name, 0)]
            for name, facts in summary.items()]
    rules = (f"An example is dropped when its user or assistant turn shares a word "
             f"{settings.decontam_long_n}-gram with a benchmark prompt, or contains at least "
             f"{settings.decontam_short_coverage:.0%} of a prompt's word "
             f"{settings.decontam_short_n}-grams (a prompt shorter than that: all its words "
             f"in order). Prompts under {settings.decontam_min_prompt_words} words are not "
             "checked.")
    return rules + "\n\n" + table(["benchmark", "prompts", "too short to check",
                                   "examples dropped"], rows)


def mix_section(rows: list[dict], settings: WebRSettings) -> str:
    ratios = mix_ratios(rows)
    return bullets({
        **{name: value if value is not None else "n/a" for name, value in ratios.items()},
        "rule": f"WI : WR brought to 2 : 1 within {settings.mix_tolerance:.0%} by trimming "
                "only the over-represented role (its larger scope first); all : part is "
                "1 : 1 within each role by assignment, on average, and not trimmed",
    })


def domains_section(frame: pd.DataFrame) -> str:
    top = frame["domain"].value_counts().head(10) if len(frame) else pd.Series(dtype=int)
    return (f"{frame['domain'].nunique() if len(frame) else 0} domains. The largest:\n\n"
            + table(["domain", "examples"], [[d, n] for d, n in top.items()]))


def lengths_section(summary: dict[str, dict]) -> str:
    lines = [f"Token counts with the {TOKENIZER_NAME} tokenizer, on "
             f"{summary['user']['examples']} examples.", ""]
    for turn, name in PLOT_FILES.items():
        facts = summary[turn]
        stats = (f"median {facts['median']:g}, min {facts['min']}, max {facts['max']}"
                 if facts["examples"] else "no examples")
        lines += [f"![{turn} turn length]({name})", f"{turn} turn: {stats}", ""]
    return "\n".join(lines)


def generation_section(frame: pd.DataFrame, settings: WebRSettings) -> str:
    return bullets({
        "model": ", ".join(sorted(frame["model"].dropna().unique())) if len(frame) else "none",
        "prompt templates": ", ".join(sorted(frame["templates"].dropna().unique()))
        if len(frame) else "none",
        "seed": settings.seed,
        "test share": settings.test_share,
        "variant": f"{settings.variant} ({get_variant(settings.variant).description})",
    })


@asset(
    pool=WAREHOUSE_POOL,
    group_name="splits",
    automation_condition=AutomationCondition.eager(),
    description="The splits as a Hugging Face dataset folder (Parquet, JSONL, README.md card "
    "with counts per stage and reason, mix, domains, benchmarks checked and turn-length "
    "plots). Runs only when every blocking quality gate on sft_splits passed.",
)
def sft_export(context: AssetExecutionContext, sft_splits: pd.DataFrame,
               settings: WebRSettings, warehouse: DuckDBResource) -> MaterializeResult:
    rows = sft_splits.to_dict("records")
    for row in rows:
        row["messages"] = json.loads(row["messages"])
    pngs, lengths = turn_length_plots([r["messages"] for r in rows],
                                      [r["prompt_id"] for r in rows], count_tokens,
                                      TOKENIZER_NAME)
    schema = variant_schema(settings.variant)
    with warehouse.get_connection() as con:
        def card(split_counts: dict[str, int]) -> str:
            return dataset_card(split_counts, [
                ("Pipeline", pipeline_section(con, schema, split_counts)),
                ("Mix", mix_section(rows, settings)),
                ("Domains", domains_section(sft_splits)),
                ("Turn lengths", lengths_section(lengths)),
                ("Decontamination", decontamination_section(con, schema, settings)),
                ("Generation", generation_section(sft_splits, settings)),
            ])

        split_counts = export_dataset(rows, settings.export_dir, LINEAGE, card, pngs)
    return MaterializeResult(metadata={
        "examples": len(rows),
        "split_counts": MetadataValue.json(split_counts),
        "export_dir": MetadataValue.path(str(settings.export_dir)),
    })
