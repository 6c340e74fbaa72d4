"""Cleaned pages + author profiles -> instruction-side (WI) and response-side (WR) pairs
(METHOD.md stages 2-5). One asset step runs both roles so all of a domain's calls share
one concurrency pool; each page's calls follow each other as soon as replies arrive."""

import pandas as pd
from dagster import AssetExecutionContext, AssetOut, Output, multi_asset

from ..instance import WAREHOUSE_POOL
from ..partitions import domain_backfill_policy, domain_partitions
from ..resources.llm import BudgetExhausted, LLMResource, LLMSession
from ..resources.settings import WebRSettings
from ..webr.prompts import DEFAULT_TEMPLATES, TemplateSet, load_templates
from ..webr.sampling import WI, WR, PagePlan
from ..webr.variants import DEFAULT, get_variant, plan_variant
from .metadata import counts, data_cost, llm_metadata, per_domain, preview
from .tables import conform


CALL_KEY_COLUMNS = ["request_call_key", "answer_call_key", "response_call_key"]
# Profile statuses a pair can be built on. A profile cut at max_tokens is still usable: it
# only steers the request's voice and never enters the training example, and its first
# words are the profile asked for (at most 30); the profile row keeps status "truncated".
USABLE_PROFILE = {"ok", "truncated"}
CUT_AT_CAP = "stopped at max_tokens"


async def generate_pair(session: LLMSession, plan: PagePlan, profile: str | None,
                        templates: TemplateSet = DEFAULT_TEMPLATES,
                        variant: str = DEFAULT) -> dict:
    """Run one page's calls: request, then (WI) response or (WR) answer and refinement.
    ``variant`` (webr/variants.py) may leave out the profile or the refinement; the plan
    already carries its role and scope."""
    page_id = plan.page_id
    ablation = get_variant(variant)
    template = templates.request(plan.role, plan.scope, profile=ablation.profile)
    fields = {"profile": profile} if ablation.profile else {}
    out: dict = {"templates": [template.tag]}
    request = await session.call(
        template.messages(**fields, text=plan.sampled_text, noun=plan.noun,
                          word_limit=plan.word_limit),
        stage="request", page_id=page_id, template=template.tag,
    )
    out["request_call_key"] = request.key
    if not request.ok:
        return {**out, "status": "failed", "error": f"request: {request.error}"}
    out["request"] = request.content
    if request.truncated:  # a cut request makes a cut user turn: no use paying for answers
        return {**out, "status": "truncated", "error": f"request: {CUT_AT_CAP}"}
    if plan.role == WI:
        out["templates"].append(templates.wi_response.tag)
        response = await session.call(
            templates.wi_response.messages(text=plan.sampled_text, request=request.content.strip()),
            stage="wi_response", page_id=page_id, template=templates.wi_response.tag,
        )
    else:
        out["templates"] += [templates.wr_answer.tag] + (
            [templates.wr_refine.tag] if ablation.refine else [])
        answer = await session.call(
            templates.wr_answer.messages(request=request.content.strip()),
            stage="wr_answer", page_id=page_id, template=templates.wr_answer.tag,
        )
        out["answer_call_key"] = answer.key
        if not answer.ok:
            return {**out, "status": "failed", "error": f"answer: {answer.error}"}
        # A first answer cut at max_tokens still goes to the refinement, which rewrites it
        # from the page; only the refined answer enters the example, and its own cut counts.
        out["first_answer"] = answer.content
        if ablation.refine:
            response = await session.call(
                templates.wr_refine.messages(text=plan.sampled_text,
                                             request=request.content.strip(),
                                             answer=answer.content.strip()),
                stage="wr_refine", page_id=page_id, template=templates.wr_refine.tag,
            )
        else:  # `wr-no-refine`: the first answer is the response (its key, its cut)
            response = answer
    out["response_call_key"] = response.key
    if not response.ok:
        return {**out, "status": "failed", "error": f"response: {response.error}"}
    if response.truncated:  # kept (it was paid for); filtered_pairs drops it
        return {**out, "response": response.content, "status": "truncated",
                "error": f"response: {CUT_AT_CAP}"}
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
    templates = load_templates(settings.templates_path)
    cut = llm.input_cut(settings.max_input_chars)
    (context.log.info if cut.chars else context.log.warning)(f"page text cut: {cut.reason}")
    # The variant (WEBR_VARIANT, `webr run --variant`) sets roles and scopes; every other
    # draw is the page's own, so calls shared with other variants come from the ledger.
    with_profile = get_variant(settings.variant).profile
    plans = [
        plan_variant(p["page_id"], p["text"], settings.seed, settings.sampling_mode, cut.chars,
                     settings.variant)
        for p in pages
    ]

    def job(plan: PagePlan):
        profile_row = profiles.get(plan.page_id)

        async def run():
            if with_profile and (profile_row is None
                                 or profile_row["status"] not in USABLE_PROFILE):
                return {"status": "failed", "error": "author profile missing or failed"}
            try:
                return await generate_pair(session, plan,
                                           profile_row["profile"] if with_profile else None,
                                           templates, settings.variant)
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
            "profile": profile_row.get("profile") if with_profile else None,
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
                                                "status_counts": counts(r["status"] for r in rows),
                                                "scope_counts": counts(r["scope"] for r in rows),
                                                # pages whose sampled text was cut to fit
                                                "input_truncated":
                                                    sum(bool(r["truncated"]) for r in rows),
                                                **data_cost(rows, CALL_KEY_COLUMNS, paid)},
                   output_name=name)
        yield Output(
            part,
            output_name=name,
            metadata={
                "run_pairs": len(part),
                "input_cut": cut.reason,
                **usage,
                "preview": preview(part, ["page_id", "scope", "status", "request", "response"]),
            },
        )
