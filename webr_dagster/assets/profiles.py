"""Cleaned pages -> author profiles (METHOD.md stage 1)."""

import pandas as pd
from dagster import AssetExecutionContext, Output, asset

from ..instance import WAREHOUSE_POOL
from ..partitions import domain_backfill_policy, domain_partitions
from ..resources.llm import BudgetExhausted, LLMResource
from ..resources.settings import WebRSettings
from ..webr.prompts import AUTHOR_PROFILE
from ..webr.sampling import cap_text
from .metadata import counts, data_cost, llm_metadata, per_domain, preview
from .tables import conform


@asset(
    pool=WAREHOUSE_POOL,
    partitions_def=domain_partitions,
    backfill_policy=domain_backfill_policy,
    group_name="profiles",
    metadata={"partition_expr": "domain"},
    description="A profile of each page's likely author (at most 30 words), inferred by the "
    "LLM from the page text; it steers the voice of the generated request.",
)
def author_profiles(
    context: AssetExecutionContext,
    cleaned_pages: pd.DataFrame,
    llm: LLMResource,
    settings: WebRSettings,
) -> Output[pd.DataFrame]:
    pages = cleaned_pages.to_dict("records")

    def job(page):
        async def run():
            # The profile is inferred from the whole page, before section sampling.
            messages = AUTHOR_PROFILE.messages(text=cap_text(page["text"], settings.max_input_chars))
            try:
                result = await session.call(messages, stage="author_profile",
                                            page_id=page["page_id"], template=AUTHOR_PROFILE.tag)
            except BudgetExhausted as stop:
                return {"status": "budget", "error": str(stop), "call_key": None}
            return {
                "profile": result.content.strip() if result.ok else None,
                "status": "ok" if result.ok else "failed",
                "error": result.error,
                "call_key": result.key,
            }

        return run

    with llm.open_session(context.run.run_id, context.log) as session:
        outcomes = session.run(job(page) for page in pages)
        paid = session.ledger.usage([o["call_key"] for o in outcomes
                                      if isinstance(o, dict) and o.get("call_key")])
    rows = []
    for page, outcome in zip(pages, outcomes):
        if isinstance(outcome, BaseException):
            outcome = {"status": "failed", "error": repr(outcome), "call_key": None}
        rows.append({"page_id": page["page_id"], "domain": page["domain"],
                     "profile": None, **outcome, "template": AUTHOR_PROFILE.tag,
                     "model": llm.model_name})
    frame = conform(rows, "author_profiles")
    if (frame["status"] == "budget").any():
        context.log.warning("spending cap reached: some profiles were not generated")
    per_domain(context, frame, lambda part: {"pages": len(part),
                                             "status_counts": counts(part["status"]),
                                             **data_cost(part, ["call_key"], paid)})
    return Output(
        frame,
        metadata={
            "run_pages": len(frame),
            **llm_metadata(session.stats),
            "preview": preview(frame, ["page_id", "status", "profile"]),
        },
    )
