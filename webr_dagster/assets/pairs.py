"""Cleaned pages + author profiles -> instruction-side (WI) and response-side (WR) pairs
(METHOD.md stages 2-5). One asset step runs both roles so all of a domain's calls share
one concurrency pool; each page's calls follow each other as soon as replies arrive."""

import pandas as pd
from dagster import AssetExecutionContext, AssetOut, Output, multi_asset

from ..instance import WAREHOUSE_POOL
from ..partitions import domain_backfill_policy, domain_partitions
from ..resources.llm import BudgetExhausted, LLMResource, LLMSession
from ..resources.settings import WebRSettings
from ..webr.prompts import WI_RESPONSE, WR_ANSWER, WR_REFINE, request_template
from ..webr.sampling import WI, WR, PagePlan, plan_page
from .metadata import counts, data_cost, llm_metadata, per_domain, preview
from .tables import conform


CALL_KEY_COLUMNS = ["request_call_key", "answer_call_key", "response_call_key"]


async def generate_pair(session: LLMSession, plan: PagePlan, profile: str) -> dict:
    """Run one page's calls: request, then (WI) response or (WR) answer and refinement."""
    page_id = plan.page_id
    template = request_template(plan.role, plan.scope)
    out: dict = {"templates": [template.tag]}
    request = await session.call(
        template.messages(profile=profile, text=plan.sampled_text, noun=plan.noun,
                          word_limit=plan.word_limit),
        stage="request", page_id=page_id, template=template.tag,
    )
    out["request_call_key"] = request.key
    if not request.ok:
        return {**out, "status": "failed", "error": f"request: {request.error}"}
    out["request"] = request.content
    if plan.role == WI:
        out["templates"].append(WI_RESPONSE.tag)
        response = await session.call(
            WI_RESPONSE.messages(text=plan.sampled_text, request=request.content.strip()),
            stage="wi_response", page_id=page_id, template=WI_RESPONSE.tag,
        )
    else:
        out["templates"] += [WR_ANSWER.tag, WR_REFINE.tag]
        answer = await session.call(
            WR_ANSWER.messages(request=request.content.strip()),
            stage="wr_answer", page_id=page_id, template=WR_ANSWER.tag,
        )
        out["answer_call_key"] = answer.key
        if not answer.ok:
            return {**out, "status": "failed", "error": f"answer: {answer.error}"}
        out["first_answer"] = answer.content
        response = await session.call(
            WR_REFINE.messages(text=plan.sampled_text, request=request.content.strip(),
                               answer=answer.content.strip()),
            stage="wr_refine", page_id=page_id, template=WR_REFINE.tag,
        )
    out["response_call_key"] = response.key
    if not response.ok:
        return {**out, "status": "failed", "error": f"response: {response.error}"}
    return {**out, "response": response.content, "status": "ok"}


@multi_asset(
    pool=WAREHOUSE_POOL,
    partitions_def=domain_partitions,
    backfill_policy=domain_backfill_policy,
    group_name="pairs",
    outs={
        "instruction_side_pairs": AssetOut(
            metadata={"partition_expr": "domain"},
            description="Web as Instruction: the page is part of the user's turn; the LLM "
            "invents a constrained rework request and answers it.",
        ),
        "response_side_pairs": AssetOut(
            metadata={"partition_expr": "domain"},
            description="Web as Response: the page is the answer; the LLM invents the "
            "request, answers it blind, then refines the answer with the page.",
        ),
    },
)
def instruction_and_response_pairs(
    context: AssetExecutionContext,
    cleaned_pages: pd.DataFrame,
    author_profiles: pd.DataFrame,
    llm: LLMResource,
    settings: WebRSettings,
):
    profiles = {
        row["page_id"]: row for row in author_profiles.to_dict("records")
    }
    pages = cleaned_pages.to_dict("records")
    plans = [
        plan_page(p["page_id"], p["text"], settings.seed, settings.sampling_mode,
                  settings.max_input_chars)
        for p in pages
    ]

    def job(plan: PagePlan):
        profile_row = profiles.get(plan.page_id)

        async def run():
            if profile_row is None or profile_row["status"] != "ok":
                return {"status": "failed", "error": "author profile missing or failed"}
            try:
                return await generate_pair(session, plan, profile_row["profile"])
            except BudgetExhausted as stop:
                return {"status": "budget", "error": str(stop)}

        return run

    with llm.open_session(context.run.run_id, context.log) as session:
        outcomes = session.run(job(plan) for plan in plans)
        paid = session.ledger.usage([
            outcome[column] for outcome in outcomes if isinstance(outcome, dict)
            for column in CALL_KEY_COLUMNS if outcome.get(column)])

    rows = []
    for page, plan, outcome in zip(pages, plans, outcomes):
        if isinstance(outcome, BaseException):
            outcome = {"status": "failed", "error": repr(outcome)}
        profile_row = profiles.get(plan.page_id) or {}
        rows.append({
            **{k: page[k] for k in ("page_id", "domain", "url", "crawl_file", "record_offset")},
            **{k: v for k, v in plan.as_dict().items() if k != "page_id"},
            "profile": profile_row.get("profile"),
            "model": llm.model_name,
            **outcome,
        })
    for row in rows:
        row["templates"] = ",".join(row.get("templates") or []) or None
    frame = conform(rows, "pairs")
    if (frame["status"] == "budget").any():
        context.log.warning("spending cap reached: some pairs were not generated")
    usage = llm_metadata(session.stats)
    for role, name in ((WI, "instruction_side_pairs"), (WR, "response_side_pairs")):
        part = frame[frame["role"] == role].reset_index(drop=True)
        per_domain(context, part, lambda rows: {"pairs": len(rows),
                                                "status_counts": counts(rows["status"]),
                                                "scope_counts": counts(rows["scope"]),
                                                **data_cost(rows, CALL_KEY_COLUMNS, paid)},
                   output_name=name)
        yield Output(
            part,
            output_name=name,
            metadata={
                "run_pairs": len(part),
                **usage,
                "preview": preview(part, ["page_id", "scope", "status", "request", "response"]),
            },
        )
