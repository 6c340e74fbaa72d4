"""The ledger's answered calls, as the loopback server keys a request on the wire, so a
test can compare what was paid for with what the server was asked again."""

import json
from pathlib import Path

import duckdb

from tests.support.loopback_openai import call_key


def ledger_ok_wire_keys(home: Path) -> set[str]:
    con = duckdb.connect(str(home / "llm_calls.duckdb"), read_only=True)
    rows = con.execute(
        "SELECT DISTINCT model, params, messages FROM llm_calls WHERE status = 'ok'").fetchall()
    con.close()
    keys = set()
    for model, params, messages in rows:
        params = json.loads(params)
        keys.add(call_key(model.split("/", 1)[1], json.loads(messages), params["temperature"],
                          params["max_tokens"], params.get("top_p")))
    return keys
