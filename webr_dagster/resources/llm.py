"""The LLM resource: litellm behind a call ledger, a concurrency bound, retries, rate limits
and a spending cap.

Assets describe their work as one coroutine per page; each coroutine awaits
``session.call(...)`` for its LLM calls, so a page's next call starts as soon as its
previous reply arrives while other pages' calls are in flight.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from . import call_workers
from .call_ledger import CallLedger, call_key
from .completion import complete_once, stopped_at_cap
from .lake import LakeLocation
from .shared_rate_limit import SharedRateLimiter, budget_name
from .stop_request import stop_reason

LOCAL_MODEL = "webr-local/smollm2-135m-instruct"
LEDGER_BATCH = 64
AUTO_WORKERS_MIN_JOBS = 300  # below this, worker start-up costs more than it saves
LEDGER_FLUSH_SECONDS = 1.0
# This many failed calls in a row and not one answer: the model is not there. The stage
# stops instead of sending every remaining call to a dead endpoint.
NO_ANSWER_LIMIT = 20
STOP_GRACE_S = 5.0  # on a stop, replies in flight this long are still kept
STOP_POLL_S = 0.2
# The page cut sized from a context window (see LLMResource.input_cut). The prompt besides
# the page: the longest template (about 750 characters), the system message, chat-format
# tokens, the author profile (asked for <= 30 words) and the generated request (asked for
# <= 200 words), with slack.
PROMPT_OVERHEAD_TOKENS = 1024
# English web text runs about 4 to 4.5 characters per token in the GPT and Llama-3
# tokenizers; 3.5 leaves room for denser text. Code, tables and non-Latin scripts run lower
# still (Chinese: under 2): for them set WEBR_MAX_INPUT_CHARS.
CUT_CHARS_PER_TOKEN = 3.5
MIN_PAGE_TOKENS = 256  # less room than this for the page: the settings cannot work


@dataclass
class CallResult:
    key: str
    ok: bool
    content: str | None = None
    error: str | None = None
    cached: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    finish_reason: str | None = None

    @property
    def truncated(self) -> bool:
        """The reply stopped at max_tokens: a cut answer (stored, but not a finished one)."""
        return self.ok and stopped_at_cap(self.finish_reason)


@dataclass(frozen=True)
class InputCut:
    """Where page text is cut before it goes into a prompt, and how that was decided."""

    chars: int | None  # None: no cut
    reason: str


@dataclass
class SessionStats:
    calls: int = 0
    cached: int = 0
    sent: int = 0
    failed: int = 0  # every call that got no reply, whatever the cause
    retries: int = 0
    skipped_for_budget: int = 0  # of the failed: never started because of the cap
    startup_s: float = 0.0  # importing litellm / starting call workers
    calls_s: float = 0.0  # from the first call started to the last one settled
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    unpriced: int = 0  # calls sent to a model with no known price (their cost is unknown)
    truncated: int = 0  # of the sent: replies that stopped at max_tokens
    errors: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)

    def count_failure(self, reason: str) -> None:
        self.failed += 1
        self.errors[reason] = self.errors.get(reason, 0) + 1


class BudgetExhausted(Exception):
    """Raised inside a page's coroutine when the spending cap stops new calls."""


class StageStopped(Exception):
    """The user asked the process to stop (Ctrl-C, SIGTERM): the stage ends unfinished."""


class ModelNotAnswering(Exception):
    """The first calls of a stage all failed: the model or its endpoint is not there."""


def backoff_seconds(attempt: int, base: float, cap: float, retry_after: float | None) -> float:
    """Exponential backoff with full jitter; a server's Retry-After is a floor."""
    delay = random.uniform(0, min(cap, base * 2 ** (attempt - 1)))
    return max(delay, retry_after or 0.0)


@lru_cache(maxsize=64)
def known_context_tokens(model: str) -> int | None:
    """The model's input window in tokens as litellm's model map knows it; None if it does
    not know the model (self-hosted names, new models) or gives no window for it."""
    from .litellm_setup import import_litellm

    try:
        info = import_litellm().get_model_info(model)
    except Exception:  # noqa: BLE001 - litellm raises for every model it has not mapped
        return None
    tokens = info.get("max_input_tokens")
    return int(tokens) if tokens else None


class LLMResource(ConfigurableResource):
    """Any litellm model (OpenAI, vLLM, Ollama, any OpenAI-compatible server) or the built-in one."""

    model: str | None = Field(
        default=None, description="litellm model string; empty = built-in SmolLM2-135M on CPU"
    )
    api_base: str | None = Field(default=None, description="base URL of the provider")
    api_key: str | None = Field(default=None, description="secret: pass dagster.EnvVar(...)")
    temperature: float = 1.0
    top_p: float | None = Field(default=None, description="nucleus sampling; empty = the "
                                "provider's default (the paper's open model: 0.9)")
    max_tokens: int = Field(default=4096, ge=1, description="cap on each reply's tokens (the "
                            "paper's open-model setting); a reply cut there is marked truncated")
    context_tokens: int | None = Field(
        default=None, ge=1, description="the model's context window in tokens, for models "
        "litellm does not know; sizes the page cut (empty: litellm's figure, else no cut)",
    )
    concurrency: int = Field(default=16, ge=1)
    timeout_s: float = 120.0
    max_attempts: int = Field(default=5, ge=1)
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    max_cost_usd: float | None = Field(default=None, description="stop starting calls past this")
    input_usd_per_million_tokens: float | None = Field(
        default=None, description="price for self-hosted models litellm does not know"
    )
    output_usd_per_million_tokens: float | None = None
    ledger_path: str = "webr_home/llm_calls.duckdb"
    # WEBR_STORAGE=ducklake: the ledger's tables live in this lake (ledger_path's folder
    # keeps only the crash journals).
    lake_catalog: str | None = None
    lake_data: str | None = None
    extension_directory: str | None = None
    call_processes: int | None = Field(
        default=None,
        description="worker processes running completions; 0 = this process; "
        "empty = one per core for stages of 300+ pages",
    )
    budget_id: str | None = Field(
        default=None, description="calls sharing this id share one spending cap "
        "(default: the Dagster run)",
    )

    def open_ledger(self) -> CallLedger:
        """The call ledger, in its file or in the lake."""
        location = None
        if self.lake_catalog:
            catalog = self.lake_catalog
            if isinstance(catalog, EnvVar):  # outside a run Dagster has not resolved it
                catalog = catalog.get_value()
            location = LakeLocation(catalog, self.lake_data or "",
                                    self.extension_directory or "")
        return CallLedger(self.ledger_path, location)

    @property
    def model_name(self) -> str:
        return self.model or LOCAL_MODEL

    @property
    def sampling_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"temperature": self.temperature, "max_tokens": self.max_tokens}
        if self.top_p is not None:
            params["top_p"] = self.top_p
        return params

    def context_window(self) -> tuple[int | None, str]:
        """(tokens, where that figure comes from); None when nobody knows it."""
        if self.context_tokens is not None:
            return self.context_tokens, "context_tokens setting"
        if self.model is None:
            from .local_model import CONTEXT_TOKENS

            return CONTEXT_TOKENS, "the built-in model's"
        tokens = known_context_tokens(self.model)
        return tokens, "litellm's model map"

    def input_cut(self, max_input_chars: int | None = None) -> InputCut:
        """Where page text is cut for this model. An explicit ``max_input_chars`` wins (0: no
        cut). Otherwise the page gets what the context window leaves after the reply
        (max_tokens) and the rest of the prompt, at CUT_CHARS_PER_TOKEN characters a token.
        A model whose window nobody knows gets no cut, the method's own default.

        The WR refine prompt also carries the model's first answer, which is not reserved:
        on a small window with a large max_tokens, that call can still overflow (it then
        fails as a context-window error, recorded with its reason)."""
        if max_input_chars is not None:
            if max_input_chars <= 0:
                return InputCut(None, "no cut (max_input_chars = 0)")
            return InputCut(max_input_chars, f"{max_input_chars} characters (max_input_chars)")
        window, source = self.context_window()
        if window is None:
            return InputCut(None, f"no cut: the context window of {self.model_name} is "
                            "unknown (set WEBR_CONTEXT_TOKENS or WEBR_MAX_INPUT_CHARS)")
        room = window - self.max_tokens - PROMPT_OVERHEAD_TOKENS
        if room < MIN_PAGE_TOKENS:
            raise ValueError(
                f"a {window}-token context window ({source}) leaves no room for page text "
                f"after max_tokens {self.max_tokens} and {PROMPT_OVERHEAD_TOKENS} prompt "
                "tokens: lower WEBR_MAX_TOKENS, or set WEBR_MAX_INPUT_CHARS")
        chars = int(room * CUT_CHARS_PER_TOKEN)
        return InputCut(chars, f"{chars} characters: {window}-token context window ({source}) "
                        f"- {self.max_tokens} max_tokens - {PROMPT_OVERHEAD_TOKENS} prompt "
                        f"tokens, x {CUT_CHARS_PER_TOKEN} characters a token")

    def completion_request(self, messages: list[dict]) -> dict[str, Any]:
        """litellm's arguments for one attempt at ``messages``."""
        return {
            "model": self.model_name,
            "messages": messages,
            "api_base": self.api_base,
            "api_key": self.api_key,
            "timeout": self.timeout_s,
            "max_retries": 0,  # retries are the session's, with backoff and Retry-After
            **self.sampling_params,
        }

    def call_workers_for(self, jobs: int) -> int:
        """How many call worker processes a stage of ``jobs`` calls uses (0: none)."""
        if self.call_processes is not None:
            return self.call_processes
        cores = os.cpu_count() or 1
        # auto: worth the workers' start-up only for large stages
        return cores if cores > 1 and jobs >= AUTO_WORKERS_MIN_JOBS else 0

    def start_call_workers(self, jobs: int) -> None:
        """Start, in the background, the call workers a stage of ``jobs`` calls will use,
        so they import litellm (and load the built-in model) while the pages are being
        indexed and cleaned rather than when the first call is due. The stage picks up
        the same pool; if starting fails here, the stage tries again and reports it.
        Spawned processes: nothing is forked from this (threaded) process."""
        workers = self.call_workers_for(jobs)
        if workers:
            setup = self.litellm_setup(workers)
            threading.Thread(target=call_workers.start_shared_pool, args=(workers, setup),
                             name="call-workers-start", daemon=True).start()

    def litellm_setup(self, workers: int = 0) -> dict:
        """What a process needs to prepare litellm for this resource (see litellm_setup)."""
        cores = os.cpu_count() or 1
        setup: dict = {"local_model_threads": None, "prices": None}
        if self.model is None:
            setup["local_model_threads"] = max(1, cores // max(workers, 1))
        if self.input_usd_per_million_tokens is not None:
            setup["prices"] = {self.model_name: (self.input_usd_per_million_tokens,
                                                 self.output_usd_per_million_tokens or 0.0)}
        return setup

    def open_session(self, run_id: str = "", log=None) -> "LLMSession":
        return LLMSession(self, run_id, log)


class LLMSession:
    """One stage's worth of calls against the ledger and the provider."""

    def __init__(self, resource: LLMResource, run_id: str, log=None):
        self.resource = resource
        self.run_id = run_id
        self.log = log
        self.ledger = resource.open_ledger()
        self.budget_id = resource.budget_id or run_id
        self._spent_before = (
            self.ledger.spent(self.budget_id) if resource.max_cost_usd is not None else 0.0
        )
        self.answered = self.ledger.answered_keys()
        self.stats = SessionStats()
        self._pending_rows: list[dict] = []
        self._litellm = None
        self._pool = None
        self._semaphore: asyncio.Semaphore | None = None
        self._limiter: SharedRateLimiter | None = None
        self._in_flight = 0
        # Replies of this session not yet flushed, and calls in flight, by key: identical
        # calls (two copies of one page) share one request instead of paying twice.
        self._settled: dict[str, CallResult] = {}
        self._waiting: dict[str, asyncio.Future] = {}
        self._lookups: dict[str, asyncio.Future] = {}
        self._stopping: str | None = None  # why the user stopped the stage
        self._fatal: BaseException | None = None  # why no call can be made any more
        self._refused = 0  # calls never sent because of it

    # -- running a stage -------------------------------------------------------------
    def run(self, jobs: Iterable[Callable[[], Awaitable[Any]]]) -> list[Any]:
        """Run one coroutine per job concurrently; returns their results (or exceptions)."""
        return asyncio.run(self._run(list(jobs)))

    async def _run(self, jobs):
        stopped = stop_reason()
        if stopped:
            raise StageStopped(stopped)
        self._ensure_transport(len(jobs))
        self._semaphore = asyncio.Semaphore(self.resource.concurrency)
        res = self.resource
        self._limiter = SharedRateLimiter(
            Path(res.ledger_path).parent / "rate_limits"
            / f"{budget_name(res.model_name, res.api_base, res.api_key)}.json",
            res.requests_per_minute, res.tokens_per_minute)
        flusher = asyncio.create_task(self._flush_periodically())
        everything = asyncio.gather(*(job() for job in jobs), return_exceptions=True)
        watcher = asyncio.create_task(self._watch_for_stop(everything))
        started = time.monotonic()
        try:
            results = await everything
        except asyncio.CancelledError:
            if self._stopping is None:
                raise
            results = None
        finally:
            self.stats.calls_s += time.monotonic() - started
            flusher.cancel()
            watcher.cancel()
            self.flush()
            self._log_usage()
        if self._stopping is not None:
            raise StageStopped(self._stopping)
        # A dead model stops the stage only if it kept calls from being sent.
        if self._fatal is not None and (self._refused
                                        or not isinstance(self._fatal, ModelNotAnswering)):
            raise self._fatal
        return results

    async def _watch_for_stop(self, everything: asyncio.Future) -> None:
        """On a stop request, start no new call, give the calls in flight a short grace
        period to bring their replies home, then cancel what is left."""
        while stop_reason() is None:
            await asyncio.sleep(STOP_POLL_S)
        self._stopping = stop_reason()
        deadline = time.monotonic() + STOP_GRACE_S
        while self._in_flight and time.monotonic() < deadline:
            await asyncio.sleep(STOP_POLL_S)
        everything.cancel()

    def _log_usage(self) -> None:
        if self.log is None:
            return
        st = self.stats
        self.log.info(
            f"LLM calls: {st.sent} sent, {st.cached} from the ledger, {st.failed} failed "
            f"({st.skipped_for_budget} not started at the cap), {st.retries} retries, "
            f"{st.truncated} replies cut at max_tokens {self.resource.max_tokens}; "
            f"{st.calls_s:.1f} s; ${st.cost_usd:.4f}"
        )

    async def _recorded_reply(self, key: str) -> dict | None:
        """The ledger's reply for ``key``. Look-ups made in the same instant share one query."""
        if not self._lookups:
            asyncio.get_running_loop().call_soon(self._resolve_lookups)
        future = self._lookups.get(key)
        if future is None:
            future = self._lookups[key] = asyncio.get_running_loop().create_future()
        return await asyncio.shield(future)

    def _resolve_lookups(self) -> None:
        lookups, self._lookups = self._lookups, {}
        rows = self.ledger.replies(list(lookups))
        for key, future in lookups.items():
            future.set_result(rows.get(key))

    async def _flush_periodically(self):
        while True:
            await asyncio.sleep(LEDGER_FLUSH_SECONDS)
            self.flush()

    def flush(self) -> None:
        rows, self._pending_rows = self._pending_rows, []
        try:
            self.ledger.append(rows)
        except Exception as error:  # noqa: BLE001 - the rows are in the journal; try again
            self._pending_rows = rows + self._pending_rows
            if self.log is not None:
                self.log.warning(f"ledger write failed ({error!r}); {len(rows)} replies "
                                 "stay in the journal and are written with the next batch")
            return

    def close(self) -> None:
        self.flush()
        if self.stats.calls:
            st = self.stats
            self.ledger.record_session({
                **{name: getattr(st, name) for name in (
                    "calls", "cached", "sent", "failed", "skipped_for_budget",
                    "prompt_tokens", "completion_tokens", "cost_usd", "unpriced")},
                "run_id": self.run_id, "budget_id": self.budget_id,
                "errors": json.dumps(st.errors),
                "created_at": datetime.now(timezone.utc).replace(tzinfo=None),
            })
        self.ledger.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- one call --------------------------------------------------------------------
    def key_for(self, messages: list[dict], sample_index: int = 0) -> str:
        return call_key(
            self.resource.model_name, messages, self.resource.sampling_params, sample_index
        )

    async def call(
        self,
        messages: list[dict],
        *,
        stage: str,
        page_id: str,
        template: str,
        sample_index: int = 0,
    ) -> CallResult:
        """One call's reply: from this session, from the ledger, or from the provider.
        Every call that ends with no reply counts as failed, with its reason."""
        self.stats.calls += 1
        try:
            result = await self._call(messages, stage, page_id, template, sample_index)
        except BudgetExhausted:
            self.stats.skipped_for_budget += 1
            self.stats.count_failure("budget")
            raise
        except (StageStopped, asyncio.CancelledError):
            self.stats.count_failure("stopped")
            raise
        except call_workers.CallWorkersFailed as error:
            self._fatal = self._fatal or error
            self.stats.count_failure("call workers failed")
            raise
        except ModelNotAnswering:
            self._refused += 1
            self.stats.count_failure("not sent: the model is not answering")
            raise
        except Exception as error:
            self.stats.count_failure(type(error).__name__)
            raise
        if not result.ok:
            self.stats.count_failure(result.error or "unknown")
            if not (self.stats.sent or self.stats.cached) and self._fatal is None \
                    and self.stats.failed >= NO_ANSWER_LIMIT:
                common = max(self.stats.errors, key=self.stats.errors.get)
                self._fatal = ModelNotAnswering(
                    f"the model answered none of the first {self.stats.failed} calls "
                    f"(most common: {common})")
        return result

    async def _call(self, messages, stage, page_id, template, sample_index) -> CallResult:
        key = self.key_for(messages, sample_index)
        if key in self._settled:
            self.stats.cached += 1
            return self._settled[key]
        if key in self._waiting:  # the same call is in flight for another page
            result = await asyncio.shield(self._waiting[key])
            self.stats.cached += result.ok
            return result
        if key in self.answered:
            row = await self._recorded_reply(key)
            if row is not None:
                self.stats.cached += 1
                return CallResult(
                    key,
                    True,
                    row["reply"],
                    cached=True,
                    prompt_tokens=int(row["prompt_tokens"] or 0),
                    completion_tokens=int(row["completion_tokens"] or 0),
                    finish_reason=row.get("finish_reason"),
                )
        assert self._semaphore is not None, "call() runs inside session.run()"
        waiter = asyncio.get_running_loop().create_future()
        self._waiting[key] = waiter
        try:
            self._check_can_start()
            async with self._semaphore:
                self._check_can_start()
                if self._over_budget():
                    raise BudgetExhausted(self._budget_message())
                self._in_flight += 1
                try:
                    result = await self._send(
                        key, messages, stage, page_id, template, sample_index
                    )
                finally:
                    self._in_flight -= 1
        except BaseException as error:
            waiter.set_exception(error)
            waiter.exception()  # mark retrieved: followers re-raise it themselves
            raise
        finally:
            del self._waiting[key]
        if result.ok:
            self.answered.add(key)
            self._settled[key] = CallResult(**{**asdict(result), "cached": True})
        waiter.set_result(result)
        return result

    def _check_can_start(self) -> None:
        if self._stopping is not None:
            raise StageStopped(self._stopping)
        if isinstance(self._fatal, ModelNotAnswering):
            raise self._fatal

    def _spent(self) -> float:
        return self._spent_before + self.stats.cost_usd

    def _over_budget(self) -> bool:
        cap = self.resource.max_cost_usd
        if cap is None:
            return False
        sent = max(self.stats.sent, 1)
        expected_next = self.stats.cost_usd / sent if self.stats.sent else 0.0
        # Calls already in flight will be paid too: count them before starting another.
        return self._spent() + expected_next * (self._in_flight + 1) > cap

    def _budget_message(self) -> str:
        return (
            f"spending cap of ${self.resource.max_cost_usd:.4f} reached "
            f"(${self._spent():.4f} spent); no new calls were started"
        )

    def _ensure_transport(self, jobs: int) -> None:
        """Pick where completions run: this process, or a pool of worker processes."""
        if self._litellm is not None or self._pool is not None:
            return
        started = time.monotonic()
        try:
            self._start_transport(jobs)
        finally:
            self.stats.startup_s = time.monotonic() - started

    def _start_transport(self, jobs: int) -> None:
        res = self.resource
        workers = res.call_workers_for(jobs)
        cores = os.cpu_count() or 1
        setup = res.litellm_setup(workers)
        if workers:
            try:
                self._pool = call_workers.shared_pool(workers, setup)
                return
            except Exception as error:  # noqa: BLE001 - slower, but the stage still runs
                if self.log is not None:
                    self.log.warning(f"call workers did not start ({error!r}); "
                                     "running the calls in this process")
            setup["local_model_threads"] = None if res.model else cores
        from .litellm_setup import prepare_litellm

        self._litellm = prepare_litellm(**setup)

    async def _complete(self, request: dict, route: int):
        if self._pool is not None:
            return await self._pool.complete(request, route)
        return await complete_once(self._litellm, request)

    async def _send(self, key, messages, stage, page_id, template, sample_index) -> CallResult:
        res = self.resource
        request = res.completion_request(messages)
        route = zlib.crc32(page_id.encode())
        prompt_chars = sum(len(m["content"]) for m in messages)
        attempts, last_reason = 0, ""
        started = time.monotonic()
        while attempts < res.max_attempts:
            attempts += 1
            self._check_can_start()
            await self._limiter.acquire(prompt_chars // 4 + res.max_tokens)
            reply = await self._complete(request, route)
            if not reply.ok:
                last_reason = reply.reason
                self._record(key, messages, stage, page_id, template, sample_index,
                             status="error", error=f"{reply.reason}: {reply.message}",
                             attempts=attempts, latency=time.monotonic() - started)
                if not reply.retry or attempts >= res.max_attempts:
                    break
                self.stats.retries += 1
                await asyncio.sleep(backoff_seconds(attempts, res.backoff_base_s,
                                                    res.backoff_cap_s, reply.retry_after))
                continue
            cost = self._cost_of(reply)
            self.stats.sent += 1
            self.stats.prompt_tokens += reply.prompt_tokens
            self.stats.completion_tokens += reply.completion_tokens
            if cost is None:
                self.stats.unpriced += 1
            else:
                self.stats.cost_usd += cost
            self.stats.truncated += stopped_at_cap(reply.finish_reason)
            self._record(key, messages, stage, page_id, template, sample_index,
                         status="ok", reply=reply.content, attempts=attempts,
                         latency=time.monotonic() - started, prompt_tokens=reply.prompt_tokens,
                         completion_tokens=reply.completion_tokens, cost=cost,
                         finish_reason=reply.finish_reason)
            return CallResult(key, True, reply.content, prompt_tokens=reply.prompt_tokens,
                              completion_tokens=reply.completion_tokens, cost_usd=cost or 0.0,
                              finish_reason=reply.finish_reason)
        return CallResult(key, False, error=last_reason)

    def _cost_of(self, reply) -> float | None:
        """A configured price (self-hosted models) wins over litellm's price map; the
        built-in model is free; None when nobody knows the model's price."""
        res = self.resource
        if res.input_usd_per_million_tokens is not None:
            return (
                reply.prompt_tokens * res.input_usd_per_million_tokens
                + reply.completion_tokens * (res.output_usd_per_million_tokens or 0.0)
            ) / 1e6
        if res.model is None:
            return 0.0
        return reply.cost_usd

    def _record(self, key, messages, stage, page_id, template, sample_index, *, status,
                attempts, latency, reply=None, error=None, prompt_tokens=0,
                completion_tokens=0, cost=0.0, finish_reason=None) -> None:
        row = {
            "call_key": key,
            "model": self.resource.model_name,
            "params": json.dumps(self.resource.sampling_params, sort_keys=True),
            "sample_index": sample_index,
            "stage": stage,
            "page_id": page_id,
            "template": template,
            "messages": json.dumps(messages, ensure_ascii=False),
            "status": status,
            "reply": reply,
            "finish_reason": finish_reason,
            "error": error,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "cost_usd": cost,
            "latency_s": latency,
            "attempts": attempts,
            "run_id": self.run_id,
            "budget_id": self.budget_id,
            "created_at": datetime.now(timezone.utc).replace(tzinfo=None),
        }
        self.ledger.journal(row)
        self._pending_rows.append(row)
        if len(self._pending_rows) >= LEDGER_BATCH:
            self.flush()
