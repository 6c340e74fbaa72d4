"""In-process driver used by the CLI: the same assets, partitions and resources as the
Dagster UI, materialized one crawl source / one domain at a time on a persistent instance."""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter, materialize

from .assets import ALL_ASSETS
from .checks import ALL_CHECKS
from .failures import failure_cause, tag_failure_cause
from .instance import WAREHOUSE_POOL, ensure_dagster_home
from .jobs import DOMAIN_ASSETS, SPLITS_ASSETS
from .partitions import (
    DOMAINS_PER_RUN,
    crawl_source_partitions,
    domain_batches,
    domain_partitions,
    range_tags,
)
from .resources.call_ledger import process_alive
from .resources.environment import resources_from_env
from .resources.stop_request import stop_reason
from .resources.storage import WebRHome

# Dagster's own step-by-step DEBUG lines would drown the CLI's progress lines.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
CLEANING_ASSETS = ["raw_pages", "cleaned_pages", "page_rejections"]
IN_PROGRESS = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]
POOL_POLL_S = 1.0
PID_TAG = "webr/pid"  # the process of a `webr run`, to tell a killed one from a live one
VARIANT_TAG = "webr/variant"  # the ablation a run built (WebRSettings.variant)


def metadata_of(result, asset_name: str, key: str, default=0):
    """A metadata value of one materialized asset of a run, as plain Python."""
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        if materialization.asset_key.path[-1] == asset_name and key in materialization.metadata:
            value = materialization.metadata[key]
            return getattr(value, "value", getattr(value, "data", value))
    return default


def metadata_by_domain(result) -> dict[str, dict[str, dict]]:
    """domain -> asset name -> that partition's materialization metadata, as plain Python."""
    found: dict[str, dict[str, dict]] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        if materialization.partition is None:
            continue
        values = {key: getattr(value, "value", getattr(value, "data", value))
                  for key, value in materialization.metadata.items()}
        found.setdefault(materialization.partition, {})[
            materialization.asset_key.path[-1]] = values
    return found


def failure_of(result) -> tuple[str, str] | None:
    """(error class, message) of a failed run's first failed step."""
    return failure_cause(result.get_step_failure_events())


def failed_gates(result) -> list[str]:
    """"gate: what it measured" for each quality gate that failed in the run."""
    failed = []
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed:
            detail = evaluation.metadata.get("result")
            failed.append(f"{evaluation.check_name}: {getattr(detail, 'value', detail)}")
    return failed


@dataclass
class IndexSummary:
    records: int = 0
    pages_by_domain: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)


class Runner:
    def __init__(self, home: WebRHome | None = None, max_cost_usd: float | None = None,
                 budget_id: str | None = None, **setting_overrides):
        self.home = (home or WebRHome.from_env()).ensure()
        ensure_dagster_home(self.home)
        self.instance = DagsterInstance.get()
        # One spending cap across every run this invocation starts (its --workers
        # processes included: they get the same budget id).
        budget_id = budget_id or f"cli-{uuid.uuid4().hex}"
        llm_overrides = {"budget_id": budget_id, "max_cost_usd": max_cost_usd}
        self.resources = resources_from_env(self.home, llm_overrides, **setting_overrides)
        # What a --workers process needs to build the same Runner.
        self.options = {"max_cost_usd": max_cost_usd, "budget_id": budget_id,
                        **setting_overrides}
        self.definitions = [*ALL_ASSETS, *ALL_CHECKS]

    @property
    def llm(self):
        return self.resources["llm"]

    def _materialize(self, selection, partition_key=None, raise_on_error=True, tags=None):
        self.wait_for_the_warehouse()
        result = materialize(self.definitions, selection=selection, partition_key=partition_key,
                             tags={**(tags or {}), PID_TAG: str(os.getpid()),
                                   VARIANT_TAG: self.resources["settings"].variant},
                             instance=self.instance, resources=self.resources,
                             run_config=QUIET_RUN_CONFIG, raise_on_error=raise_on_error)
        if not result.success:  # the UI's runs are tagged by failure_cause_sensor
            tag_failure_cause(self.instance, result.run_id, result.get_step_failure_events())
        return result

    def wait_for_the_warehouse(self) -> None:
        """Wait while a run launched elsewhere (the UI, a sensor, a backfill) holds the
        warehouse pool. The UI's queue already waits for this process's runs: they are
        in the same instance, in progress, and in the pool."""
        if self.home.lake is not None:
            return  # a DuckLake takes concurrent writers; conflicts are retried
        told = False
        while not stop_reason():
            busy = []
            for record in self.instance.get_run_records(RunsFilter(statuses=IN_PROGRESS)):
                run = record.dagster_run
                if WAREHOUSE_POOL not in (getattr(run.run_op_concurrency, "all_pools", None)
                                          or ()):
                    continue
                if self._orphaned(run):
                    # A `webr run` that was killed: its run would hold the pool forever.
                    self.instance.report_run_failed(
                        run, f"its webr process ({run.tags[PID_TAG]}) is gone")
                    continue
                busy.append(run.run_id)
            if not busy:
                return
            if not told:
                print(f"waiting for Dagster run {busy[0]} (launched elsewhere) to finish "
                      "writing the warehouse", flush=True)
                told = True
            time.sleep(POOL_POLL_S)

    @staticmethod
    def _orphaned(run) -> bool:
        pid = run.tags.get(PID_TAG)
        return pid is not None and int(pid) != os.getpid() and not process_alive(int(pid))

    def _register(self, partitions_def, keys) -> None:
        known = set(self.instance.get_dynamic_partitions(partitions_def.name))
        self.instance.add_dynamic_partitions(partitions_def.name,
                                             [k for k in keys if k not in known])

    def index(self, sources: list[str], on_source=None) -> IndexSummary:
        """Index crawl files or folders (paths) as crawl_source partitions."""
        keys = self.home.register_sources(sources)
        self._register(crawl_source_partitions, keys)
        summary = IndexSummary()
        for position, (source, key) in enumerate(zip(sources, keys), 1):
            if stop_reason():
                break
            result = self._materialize(["crawl_index"], key)
            domains = metadata_of(result, "crawl_index", "domains", {}) or {}
            records = metadata_of(result, "crawl_index", "records")
            summary.records += records
            summary.pages_by_domain.update(domains)
            summary.statuses.update(metadata_of(result, "crawl_index", "status_counts", {}) or {})
            if on_source:
                on_source(position, source, records, domains)
        self._register(domain_partitions, sorted(summary.pages_by_domain))
        return summary

    def llm_totals(self) -> dict:
        """What every LLM session of this invocation came to, from the ledger."""
        ledger = self.llm.open_ledger()
        try:
            return ledger.session_totals(self.llm.budget_id)
        finally:
            ledger.close()

    def mark_canceled(self, run_id: str, reason: str) -> None:
        """A run the user stopped is cancelled, not failed."""
        run = self.instance.get_run_by_id(run_id)
        if run is not None:
            self.instance.report_run_canceled(run, message=f"stopped: {reason}")

    def clean(self, batch: list[str]):
        """Index-free cleaning of a contiguous range of domains, in one run."""
        return self._materialize(CLEANING_ASSETS, tags=range_tags(batch))

    def domain_batches(self, domains: list[str], workers: int = 1) -> list[list[str]]:
        """Runs of contiguous domains; with ``workers`` > 1, at least that many runs, so
        every worker gets one."""
        ordered = self.instance.get_dynamic_partitions(domain_partitions.name)
        size = min(DOMAINS_PER_RUN, max(1, -(-len(domains) // max(workers, 1))))
        return domain_batches(domains, ordered, size)

    def run_domains(self, batch: list[str]):
        """One run over a contiguous range of domain partitions."""
        return self._materialize(DOMAIN_ASSETS, tags=range_tags(batch), raise_on_error=False)

    def build_splits(self):
        return self._materialize(SPLITS_ASSETS, raise_on_error=False)
