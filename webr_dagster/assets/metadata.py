"""Materialization metadata shown in the UI: counts, previews, LLM usage."""

from collections import Counter, defaultdict
from collections.abc import Iterable

import pandas as pd
from dagster import MetadataValue

from ..partitions import domains_of, partitions_read_once


def _cell(value: object, width: int) -> str:
    text = "" if value is None else str(value)
    text = text.replace("\n", " ").replace("|", "\\|")
    return text if len(text) <= width else text[: width - 1] + "…"


def preview(frame: pd.DataFrame, columns: list[str], rows: int = 5, width: int = 80):
    """A small markdown table of the first rows (markdown needs no extra library)."""
    columns = [c for c in columns if c in frame.columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for record in frame[columns].head(rows).to_dict("records"):
        lines.append("| " + " | ".join(_cell(record[c], width) for c in columns) + " |")
    return MetadataValue.md("\n".join(lines))


def llm_metadata(stats) -> dict:
    usage = stats.as_dict()
    return {
        "llm_calls": usage["calls"],
        "llm_calls_from_ledger": usage["cached"],
        "llm_calls_sent": usage["sent"],
        "llm_calls_failed": usage["failed"],
        "llm_retries": usage["retries"],
        "llm_skipped_for_budget": usage["skipped_for_budget"],
        "prompt_tokens": usage["prompt_tokens"],
        "completion_tokens": usage["completion_tokens"],
        "cost_usd": (MetadataValue.text(f"price unknown for {usage['unpriced']} calls")
                     if usage["unpriced"] else MetadataValue.float(float(usage["cost_usd"]))),
        "llm_errors": MetadataValue.json(usage["errors"]),
        "llm_startup_s": MetadataValue.float(round(float(usage["startup_s"]), 3)),
        "llm_calls_s": MetadataValue.float(round(float(usage["calls_s"]), 3)),
    }


def counts(values: Iterable) -> MetadataValue:
    """How often each value occurs, most frequent first; missing values are not counted."""
    tally = Counter(str(v) for v in values if v is not None and v == v)  # NaN != NaN
    return MetadataValue.json(dict(tally.most_common()))


def per_domain(context, frame: pd.DataFrame, summarize, output_name: str = "result") -> None:
    """Give each domain of the run its own materialization metadata:
    ``summarize(rows of that domain, as dicts)``; a domain with no rows gets the summary
    of none. ``output_name`` is the asset's name in a multi-asset.

    Summaries work on plain rows: a run covers up to DOMAINS_PER_RUN domains of a page or two, and
    pandas operations on 200 tiny frames per asset cost more than the pages' own work."""
    keys = domains_of(context)
    rows = frame.to_dict("records")
    if len(keys) == 1:  # one domain: the output's metadata is that partition's own
        context.add_output_metadata(summarize(rows), output_name=output_name)
        return
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        groups[row["domain"]].append(row)
    asset_key = None if output_name == "result" else output_name
    with partitions_read_once(context.instance):
        for domain in keys:
            context.add_asset_metadata(summarize(groups.get(domain, [])), asset_key=asset_key,
                                       partition_key=domain)


def data_cost(rows: list[dict], key_columns: list[str], usage: dict[str, dict]) -> dict:
    """Tokens and dollars of every call behind ``rows``, from the ledger: what this data
    cost, whichever run paid for it (a rerun answered from the ledger sends nothing)."""
    keys = {row[column] for row in rows for column in key_columns if row.get(column)}
    calls = [usage[key] for key in keys if key in usage]
    unknown = sum(1 for call in calls if call["cost_usd"] is None)
    cost = sum(call["cost_usd"] or 0.0 for call in calls)
    return {
        "data_calls": len(calls),
        "data_tokens": int(sum((c["prompt_tokens"] or 0) + (c["completion_tokens"] or 0)
                               for c in calls)),
        "data_cost_usd": (MetadataValue.text(f"price unknown for {unknown} calls") if unknown
                          else MetadataValue.float(float(cost))),
    }
