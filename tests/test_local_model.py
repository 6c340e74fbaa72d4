"""The built-in model really generates tokens, in-process and in a call worker, with the
weight-buffer setting that keeps it portable to every CPU (no AMX / repacked buffers)."""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from webr_dagster.resources import local_model
from webr_dagster.resources.llm import LLMResource

ROOT = Path(__file__).resolve().parents[1]
PROMPT = [{"role": "user", "content": "Name one colour."}]

IN_PROCESS = """
import json, sys, tempfile
from webr_dagster.resources import local_model
from webr_dagster.resources.llm import LLMResource

resource = LLMResource(model=None, max_tokens=6, temperature=0.0, call_processes=0,
                       ledger_path=tempfile.mkdtemp() + "/ledger.duckdb")
with resource.open_session("test") as session:
    async def one():
        return await session.call(json.loads(sys.argv[1]), stage="t", page_id="p", template="t")
    [result] = session.run([one])
print(json.dumps({"ok": result.ok, "content": result.content,
                  "tokens": session.stats.completion_tokens,
                  "extra_buffers": bool(local_model.local_model()._llama.model_params.use_extra_bufts)}))
"""


def test_built_in_model_generates_tokens_in_process():
    # In a child process, so a crash in native code (SIGILL on an AMX CPU) is reported
    # as this test's failure instead of killing the test run.
    done = subprocess.run([sys.executable, "-c", IN_PROCESS, json.dumps(PROMPT)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    reply = json.loads(done.stdout.strip().splitlines()[-1])
    assert reply["ok"] and reply["content"].strip()
    assert reply["tokens"] > 0
    assert reply["extra_buffers"] is False


def test_built_in_model_generates_tokens_in_a_call_worker():
    resource = LLMResource(model=None, max_tokens=6, temperature=0.0, call_processes=1,
                           ledger_path=tempfile.mkdtemp() + "/ledger.duckdb")
    with resource.open_session("test") as session:
        async def one():
            return await session.call(PROMPT, stage="t", page_id="p", template="t")
        [result] = session.run([one])
    assert session._pool is not None and session._pool.size == 1
    assert result.ok and result.content.strip(), result
    assert session.stats.completion_tokens > 0 and session.stats.failed == 0
    # The worker generated it: this process never loaded the model.
    assert local_model._model is None

