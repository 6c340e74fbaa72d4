"""Cleaned pages -> author profiles (METHOD.md stage 1)."""

import pandas as pd
from dagster import AssetExecutionContext, Output, asset

from ..instance import WAREHOUSE_POOL
from ..partitions import domain_backfill_policy, domain_partitions
from ..resources.llm import BudgetExhausted, LLMResource, SessionStats
from ..resources.settings import WebRSettings
from ..webr.prompts import load_templates
from ..webr.sampling import cap_text
from ..webr.variants import get_variant
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
    profile_template = load_templates(settings.templates_path).author_profile
    cut = llm.input_cut(settings.max_input_chars)
    (context.log.info if cut.chars else context.log.warning)(f"page text cut: {cut.reason}")
    # pages whose text the profile prompt gets cut (the same cut the pairs' text gets)
    cut_pages = {p["page_id"] for p in pages if cut.chars and len(p["text"]) > cut.chars}

    def job(page):
        async def run():
            # The profile is inferred from the whole page, before section sampling.
            messages = profile_template.messages(
                text=cap_text(page["text"], cut.chars))
            try:
                result = await session.call(messages, stage="author_profile",
                                            page_id=page["page_id"], template=profile_template.tag)
            except BudgetExhausted as stop:
                return {"status": "budget", "error": str(stop), "call_key": None}
            # A profile cut at max_tokens is kept and marked; the pairs still use it (see
            # USABLE_PROFILE in pairs.py).
            return {
                "profile": result.content.strip() if result.ok else None,
                "status": ("truncated" if result.truncated else "ok") if result.ok else "failed",
                "error": result.error,
                "call_key": result.key,
            }

        return run

    if get_variant(settings.variant).profile:
        with llm.open_session(context.run.run_id, context.log) as session:
            outcomes = session.run(job(page) for page in pages)
            paid = session.ledger.usage([o["call_key"] for o in outcomes
                                          if isinstance(o, dict) and o.get("call_key")])
        stats = session.stats
    else:  # `no-profile`: no request uses a profile, so none is asked for (and none paid)
        outcomes = [{"status": "skipped", "error": f"not asked: variant {settings.variant}",
                     "call_key": None} for _ in pages]
        paid, stats = {}, SessionStats()
    rows = []
    for page, outcome in zip(pages, outcomes):
        if isinstance(outcome, BaseException):
            outcome = {"status": "failed", "error": repr(outcome), "call_key": None}
        rows.append({"page_id": page["page_id"], "domain": page["domain"],
                     "profile": None, **outcome, "template": profile_template.tag,
                     "model": llm.model_name})
    frame = conform(rows, "author_profiles")
    if (frame["status"] == "budget").any():
        context.log.warning("spending cap reached: some profiles were not generated")
    per_domain(context, frame, lambda rows: {"pages": len(rows),
                                             "status_counts": counts(r["status"] for r in rows),
                                             "input_truncated":
                                                 sum(r["page_id"] in cut_pages for r in rows),
                                             **data_cost(rows, ["call_key"], paid)})
    return Output(
        frame,
        metadata={
            "run_pages": len(frame),
            "input_cut": cut.reason,
            **llm_metadata(stats),
            "preview": preview(frame, ["page_id", "status", "profile"]),
        },
    )
