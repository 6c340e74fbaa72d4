"""Start a real `dagster dev` for tests and speak the UI's own GraphQL API to it.

Never used by the product. Standard library only (plain HTTP to the webserver).

The mutations are the ones the Dagster UI itself sends (ui-core's
``LAUNCH_PARTITION_BACKFILL_MUTATION`` and ``LAUNCH_PIPELINE_EXECUTION_MUTATION``, with the
parameters ``LaunchAssetChoosePartitionsDialog`` / ``LaunchAssetExecutionButton`` build), so
a launch here takes the same path through the webserver, the run queue and the daemons as
a click in the browser.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterable, Iterator, Optional

__all__ = ["DagsterDev", "GraphQLError", "concurrently", "free_port", "wait_for",
           "webr_ui", "write_crawl", "DOMAIN_ASSETS"]

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = "webr_dagster.definitions"
SENSORS = ("crawl_landing_sensor", "indexed_domains_sensor")
DOMAIN_ASSETS = ["raw_pages", "cleaned_pages", "page_rejections", "author_profiles",
                 "instruction_side_pairs", "response_side_pairs", "filtered_pairs"]
HIDDEN_ASSET_JOB = "__ASSET_JOB"
TERMINAL_STATUSES = {"SUCCESS", "FAILURE", "CANCELED"}
# What the UI adds to every launch it makes (ui-core launchpad/uiExecutionTags.tsx).
UI_EXECUTION_TAGS = [{"key": "dagster/from_ui", "value": "true"}]

PYTHON_ERROR = "fragment PythonErrorFragment on PythonError { message className causes { message className } }"

LAUNCH_PARTITION_BACKFILL = """
mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId launchedRunIds }
    ... on PartitionSetNotFoundError { message }
    ... on PartitionKeysNotFoundError { message }
    ... on UnauthorizedError { message }
    ... on PipelineNotFoundError { message }
    ... on RunConflict { message }
    ... on ConflictingExecutionParamsError { message }
    ... on RunConfigValidationInvalid { pipelineName errors { message path reason } }
    ...PythonErrorFragment
  }
}
""" + PYTHON_ERROR

LAUNCH_PIPELINE_EXECUTION = """
mutation LaunchPipelineExecution($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { id pipelineName } }
    ... on PipelineNotFoundError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ...PythonErrorFragment
  }
}
""" + PYTHON_ERROR

WORKSPACE = """
query Workspace {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on RepositoryLocation { name repositories { name pipelines { name } } }
          ...PythonErrorFragment
        }
      }
    }
    ...PythonErrorFragment
  }
}
""" + PYTHON_ERROR

RUN_FIELDS = """
  id status pipelineName creationTime startTime endTime
  tags { key value }
  assetSelection { path }
"""

RUN = """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { %s }
    ...PythonErrorFragment
  }
}
""" % RUN_FIELDS + PYTHON_ERROR

RUNS = """
query Runs($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs { results { %s } }
    ...PythonErrorFragment
  }
}
""" % RUN_FIELDS + PYTHON_ERROR

RUN_MATERIALIZATIONS = """
query RunMaterializations($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { assetMaterializations { assetKey { path } partition } }
    ...PythonErrorFragment
  }
}
""" + PYTHON_ERROR

BACKFILL = """
query Backfill($backfillId: String!) {
  partitionBackfillOrError(backfillId: $backfillId) {
    __typename
    ... on PartitionBackfill {
      id status numPartitions partitionNames
      error { message }
    }
    ... on BackfillNotFoundError { message }
    ...PythonErrorFragment
  }
}
""" + PYTHON_ERROR

LOGS_FOR_RUN = """
query LogsForRun($runId: ID!, $afterCursor: String) {
  logsForRun(runId: $runId, afterCursor: $afterCursor) {
    __typename
    ... on EventConnection {
      cursor
      hasMore
      events {
        __typename
        ... on MessageEvent { message level stepKey eventType }
        ... on ExecutionStepFailureEvent { error { ...PythonErrorFragment } }
        ... on RunFailureEvent { error { ...PythonErrorFragment } }
        ... on EngineEvent { error { ...PythonErrorFragment } }
      }
    }
    ...PythonErrorFragment
  }
}
""" + PYTHON_ERROR


class GraphQLError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str,
             interval_s: float = 0.5) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last_error: Optional[BaseException] = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except (OSError, GraphQLError) as exc:  # not up yet, connection refused, ...
            last_error = exc
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}"
                               + (f" (last error: {last_error})" if last_error else ""))
        time.sleep(interval_s)


def _error_text(error: Optional[dict]) -> str:
    if not error:
        return ""
    parts = [f"{error.get('className') or ''}: {error.get('message', '').strip()}"]
    parts += [f"caused by {c.get('className')}: {c.get('message', '').strip()}"
              for c in error.get("causes") or []]
    return "\n".join(parts)


class DagsterDev:
    """``python -m dagster dev -m <module>`` on a free loopback port, in its own process
    group (webserver, daemon and code server are its children), with its output in a file."""

    def __init__(self, module: str, env: dict, cwd: Path, log_path: Path,
                 port: Optional[int] = None):
        self.module = module
        self.env = env
        self.cwd = Path(cwd)
        self.log_path = Path(log_path)
        self.port = port or free_port()
        self.proc: Optional[subprocess.Popen] = None
        self._log = None
        self.location_name: Optional[str] = None
        self.repository_name: Optional[str] = None

    # ----------------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, timeout_s: float = 180.0) -> "DagsterDev":
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-m", self.module,
             "-p", str(self.port), "-h", HOST],
            cwd=self.cwd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        try:
            wait_for(self._ready, timeout_s, f"dagster dev on {self.url} to load {self.module}")
        except BaseException:
            self.stop()
            raise
        return self

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"dagster dev exited with {self.proc.returncode}; "
                               f"log tail:\n{self.log_tail()}")
        with urllib.request.urlopen(f"{self.url}/server_info", timeout=5) as response:
            if response.status != 200:
                return False
        workspace = self.query(WORKSPACE)["workspaceOrError"]
        for entry in workspace.get("locationEntries") or []:
            location = entry.get("locationOrLoadError") or {}
            if location.get("__typename") == "PythonError":
                raise RuntimeError(f"code location {entry['name']} failed to load: "
                                   f"{_error_text(location)}")
            if entry["loadStatus"] == "LOADED" and location.get("__typename") == "RepositoryLocation":
                self.location_name = location["name"]
                self.repository_name = location["repositories"][0]["name"]
                return True
        return False

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM the whole process group, then SIGKILL what is left."""
        proc = self.proc
        if proc is not None:
            for sig, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 10.0)):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                if self._group_gone(proc, wait_s):
                    break
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    @staticmethod
    def _group_gone(proc: subprocess.Popen, wait_s: float) -> bool:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            proc.poll()
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.2)
        return False

    def __enter__(self) -> "DagsterDev":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def log_tail(self, chars: int = 6000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    # ----------------------------------------------------------------- GraphQL
    def query(self, document: str, variables: Optional[dict] = None,
              timeout_s: float = 60.0) -> dict:
        body = json.dumps({"query": document, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", data=body, method="POST",
            headers={"Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                payload = json.loads(response.read().decode())
        except urllib.error.HTTPError as exc:
            raise GraphQLError(f"HTTP {exc.code}: {exc.read().decode(errors='replace')[:2000]}")
        if payload.get("errors"):
            raise GraphQLError(json.dumps(payload["errors"])[:4000])
        return payload["data"]

    def _repository_selector(self) -> dict:
        return {"repositoryLocationName": self.location_name,
                "repositoryName": self.repository_name}

    def job_names(self) -> list[str]:
        workspace = self.query(WORKSPACE)["workspaceOrError"]
        names = []
        for entry in workspace["locationEntries"]:
            for repo in entry["locationOrLoadError"].get("repositories") or []:
                names += [p["name"] for p in repo["pipelines"]]
        return names

    def launch_asset_backfill(self, asset_names: Iterable[str],
                              partition_names: list[str]) -> str:
        """Catalog -> select assets -> Materialize selected -> partitions -> Launch backfill
        (the parameters LaunchAssetChoosePartitionsDialog sends for the hidden asset job)."""
        params = {
            "tags": UI_EXECUTION_TAGS,
            "assetSelection": [{"path": [name]} for name in asset_names],
            "partitionNames": list(partition_names),
            "fromFailure": False,
        }
        result = self.query(LAUNCH_PARTITION_BACKFILL, {"backfillParams": params})
        result = result["launchPartitionBackfill"]
        if result["__typename"] != "LaunchBackfillSuccess":
            raise GraphQLError(f"launchPartitionBackfill: {json.dumps(result)[:3000]}")
        return result["backfillId"]

    def launch_asset_run(self, asset_names: Iterable[str], partition: Optional[str] = None,
                         partition_range: Optional[tuple[str, str]] = None,
                         job_name: str = HIDDEN_ASSET_JOB) -> str:
        """An asset page's Materialize -> one partition (or a range of them, as the dialog
        sends it with ranges as tags) -> "Launch 1 run" (executionParamsForAssetJob + the
        partition tags)."""
        if (partition is None) == (partition_range is None):
            raise ValueError("give either a partition or a partition range")
        if partition is not None:
            tags = [{"key": "dagster/partition", "value": partition}]
        else:
            tags = [{"key": "dagster/asset_partition_range_start", "value": partition_range[0]},
                    {"key": "dagster/asset_partition_range_end", "value": partition_range[1]}]
        tags += UI_EXECUTION_TAGS
        params = {
            "mode": "default",
            "executionMetadata": {"tags": tags},
            "runConfigData": "{}",
            "selector": {
                **self._repository_selector(),
                "pipelineName": job_name,
                "assetSelection": [{"path": [name]} for name in asset_names],
                "assetCheckSelection": [],
            },
        }
        result = self.query(LAUNCH_PIPELINE_EXECUTION, {"executionParams": params})
        result = result["launchPipelineExecution"]
        if result["__typename"] != "LaunchRunSuccess":
            raise GraphQLError(f"launchPipelineExecution: {json.dumps(result)[:3000]}")
        return result["run"]["id"]

    def run(self, run_id: str) -> dict:
        result = self.query(RUN, {"runId": run_id})["runOrError"]
        if result["__typename"] != "Run":
            raise GraphQLError(f"runOrError({run_id}): {json.dumps(result)[:2000]}")
        return result

    def runs(self, tags: Optional[dict] = None) -> list[dict]:
        run_filter = {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]}
        result = self.query(RUNS, {"filter": run_filter})["runsOrError"]
        if result["__typename"] != "Runs":
            raise GraphQLError(f"runsOrError: {json.dumps(result)[:2000]}")
        return result["results"]

    def backfill(self, backfill_id: str) -> dict:
        result = self.query(BACKFILL, {"backfillId": backfill_id})["partitionBackfillOrError"]
        if result["__typename"] != "PartitionBackfill":
            raise GraphQLError(f"partitionBackfillOrError: {json.dumps(result)[:2000]}")
        return result

    def materializations(self, run_id: str) -> list[tuple[str, Optional[str]]]:
        """(asset name, partition) of every materialization a run recorded."""
        result = self.query(RUN_MATERIALIZATIONS, {"runId": run_id})["runOrError"]
        return [("/".join(m["assetKey"]["path"]), m["partition"])
                for m in result["assetMaterializations"]]

    def failure_report(self, run_id: str, max_lines: int = 40) -> str:
        """The run's errors and warnings as the UI's run page shows them."""
        lines: list[str] = []
        cursor = None
        for _ in range(50):  # pages of events, bounded
            result = self.query(LOGS_FOR_RUN, {"runId": run_id, "afterCursor": cursor})
            result = result["logsForRun"]
            if result["__typename"] != "EventConnection":
                return f"logsForRun: {json.dumps(result)[:2000]}"
            for event in result["events"]:
                error = event.get("error")
                if error or event.get("level") in ("ERROR", "CRITICAL", "WARNING"):
                    lines.append(f"[{event.get('stepKey') or '-'}] {event['__typename']}: "
                                 f"{(event.get('message') or '').strip()[:500]}")
                    if error:
                        lines.append("    " + _error_text(error).replace("\n", "\n    ")[:2000])
            cursor = result["cursor"]
            if not result["hasMore"]:
                break
        return "\n".join(lines[-max_lines:]) or "(no error events)"

    def wait_runs_finished(self, run_ids: Iterable[str], timeout_s: float) -> dict[str, dict]:
        """Poll each run until it reaches a terminal status; return id -> run."""
        pending = list(run_ids)
        finished: dict[str, dict] = {}

        def poll() -> bool:
            for run_id in list(pending):
                run = self.run(run_id)
                if run["status"] in TERMINAL_STATUSES:
                    finished[run_id] = run
                    pending.remove(run_id)
            return not pending

        try:
            wait_for(poll, timeout_s, f"runs {pending} to finish", interval_s=1.0)
        except TimeoutError as exc:
            states = {r: self.run(r)["status"] for r in pending}
            raise TimeoutError(f"{exc}; still {states}") from None
        return finished

    def wait_backfill_finished(self, backfill_id: str, timeout_s: float) -> tuple[dict, list[dict]]:
        """Poll until the backfill daemon has finished the backfill and its runs are over;
        return (backfill, its runs)."""
        state: dict = {}

        def poll() -> bool:
            backfill = self.backfill(backfill_id)
            runs = self.runs({"dagster/backfill": backfill_id})
            state.update(backfill=backfill, runs=runs)
            done = backfill["status"] not in ("REQUESTED", "CANCELING", "FAILING")
            return done and all(r["status"] in TERMINAL_STATUSES for r in runs)

        try:
            wait_for(poll, timeout_s, f"backfill {backfill_id} to finish", interval_s=1.0)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; backfill {state.get('backfill')}, runs "
                               f"{[(r['id'], r['status']) for r in state.get('runs', [])]}") from None
        return state["backfill"], state["runs"]


def concurrently(*calls: Callable[[], Any], timeout_s: float = 120.0) -> list[Any]:
    """Run the calls in threads started together (a barrier releases them at once), as two
    browser tabs clicking at the same moment; return their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def target(index: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=timeout_s)
            results[index] = call()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i, c), daemon=True)
               for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout_s)
    if any(thread.is_alive() for thread in threads):
        raise TimeoutError(f"concurrent calls did not return within {timeout_s} s")
    if errors:
        raise errors[0]
    return results


# --------------------------------------------------------------------------- a WebR home + UI


def write_crawl(path: Path, hosts: list[str], documents: list[dict], start: int,
                pages_per_host: int = 2) -> int:
    """A JSONL crawl (``url`` + ``text``) of ``pages_per_host`` distinct documents per host,
    taken in order from ``documents`` (``[{"webpage": text}]``); returns the next unused one."""
    with Path(path).open("w") as out:
        for host in hosts:
            for page in range(pages_per_host):
                out.write(json.dumps({"url": f"https://{host}/article-{page}",
                                      "text": documents[start]["webpage"]}) + "\n")
                start += 1
    return start


def webr_env(home: Path, llm_base_url: str) -> dict:
    """The environment of every process of one test home: the UI, the CLI, helpers."""
    env = {
        **os.environ,
        "WEBR_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "WEBR_MODEL": "openai/loopback",
        "WEBR_API_BASE": llm_base_url,
        "WEBR_API_KEY": "sk-test",
        "WEBR_CONCURRENCY": "16",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    for name in ("WEBR_MAX_COST_USD", "WEBR_SEED", "WEBR_TEST_SHARE", "WEBR_LANGUAGES",
                 "WEBR_DOMAIN_GROUPING", "WEBR_CALL_PROCESSES", "WEBR_RPM", "WEBR_TPM"):
        env.pop(name, None)
    return env


@contextmanager
def webr_ui(tmp: Path, crawl: Path, llm_base_url: str,
            start_timeout_s: float = 240.0) -> Iterator[SimpleNamespace]:
    """A fresh WEBR_HOME under ``tmp`` with ``crawl`` indexed and its domains registered as
    partitions, then `dagster dev` on it with both sensors stopped; stopped on exit.

    The crawl is indexed by a separate process that has exited before the UI starts
    (DuckDB admits one writing process per file), the way `webr run` would. The sensors are
    stopped with `dagster sensor stop` before the daemon's first tick: running, the domain
    sensor would launch its own runs for the freshly indexed domains, and what a test
    launched would depend on tick timing.
    """
    home = Path(tmp) / "webr_home"
    env = webr_env(home, llm_base_url)
    indexed = subprocess.run([sys.executable, "-c", (
        "import json, sys\n"
        "from webr_dagster.runner import Runner\n"
        "runner = Runner()\n"
        "runner.index([sys.argv[1]])\n"
        "print(json.dumps(runner.instance.get_dynamic_partitions('domain')))\n"
    ), str(crawl)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    if indexed.returncode != 0:
        raise RuntimeError(f"indexing {crawl} failed:\n{indexed.stdout[-3000:]}"
                           f"\n{indexed.stderr[-3000:]}")
    domains = json.loads(indexed.stdout.strip().splitlines()[-1])

    stoppers = [subprocess.Popen(
        [sys.executable, "-m", "dagster", "sensor", "stop", "-m", DEFINITIONS, sensor],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for sensor in SENSORS]
    try:
        for stopper in stoppers:
            out, _ = stopper.communicate(timeout=180)
            if stopper.returncode != 0 or "Stopped sensor" not in out:
                raise RuntimeError(f"dagster sensor stop failed:\n{out[-3000:]}")
    finally:
        for stopper in stoppers:
            if stopper.poll() is None:
                stopper.kill()
                stopper.wait(timeout=30)

    dev = DagsterDev(DEFINITIONS, env, ROOT, Path(tmp) / "dagster_dev.log")
    dev.start(timeout_s=start_timeout_s)
    try:
        yield SimpleNamespace(dev=dev, env=env, home=home, domains=domains, tmp=Path(tmp))
    finally:
        dev.stop()
