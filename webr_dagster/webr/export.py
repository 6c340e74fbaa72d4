"""Write the final splits as a Hugging Face dataset folder: Parquet, JSONL and a card."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pyarrow as pa
import pyarrow.parquet as pq

from .splits import TEST_SPLIT, TRAIN_SPLIT

SPLITS = (TRAIN_SPLIT, TEST_SPLIT)
# Query parameters that carry credentials, matched on the name or on one of its parts
# (split on "-", "_", "."): `api_key`, `X-Amz-Signature`, `access_token`, `PHPSESSID`...
SECRET_PARAM_PARTS = {"token", "key", "apikey", "sig", "signature", "password", "passwd",
                      "pwd", "pass", "secret", "session", "sessionid", "sid", "phpsessid",
                      "jsessionid", "auth", "credential", "credentials"}
MESSAGE_TYPE = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))


def public_url(url: str | None) -> str | None:
    """``url`` fit to publish: without user-info (``user:password@``) and without query
    parameters whose name says they carry a secret. The warehouse keeps the original."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    host = parts.netloc.rpartition("@")[2]
    query = [(name, value) for name, value in parse_qsl(parts.query, keep_blank_values=True)
             if not _secret_name(name)]
    return urlunsplit((parts.scheme, host, parts.path, urlencode(query), parts.fragment))


def _secret_name(name: str) -> bool:
    lowered = name.lower()
    return lowered in SECRET_PARAM_PARTS or any(
        part in SECRET_PARAM_PARTS for part in re.split(r"[-_.]", lowered))


def _arrow_table(rows: list[dict], lineage: list[str]) -> pa.Table:
    fields = [("prompt_id", pa.string()), ("messages", MESSAGE_TYPE)]
    fields += [(name, pa.int64() if name == "record_offset" else pa.string()) for name in lineage]
    schema = pa.schema(fields)
    return pa.Table.from_pylist(
        [{name: row.get(name) for name, _ in fields} for row in rows], schema=schema
    )


def export_dataset(
    rows: list[dict], out_dir: str | Path, lineage: list[str],
    card: Callable[[dict[str, int]], str], files: dict[str, bytes] | None = None,
) -> dict[str, int]:
    """Replace ``out_dir`` with the dataset: Parquet and JSONL per split, the card
    (``card(examples per split)``) as README.md and ``files`` beside it. Returns examples
    per split."""
    out_dir = Path(out_dir)
    staging = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "data").mkdir(parents=True)
    (staging / "jsonl").mkdir()
    counts = {}
    if "source_url" in lineage:
        rows = [{**row, "source_url": public_url(row.get("source_url"))} for row in rows]
    for split in SPLITS:
        split_rows = [row for row in rows if row["split"] == split]
        counts[split] = len(split_rows)
        table = _arrow_table(split_rows, lineage)
        pq.write_table(table, staging / "data" / f"{split}-00000-of-00001.parquet")
        with open(staging / "jsonl" / f"{split}.jsonl", "w", encoding="utf-8") as handle:
            for record in table.to_pylist():
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    (staging / "README.md").write_text(card(counts), encoding="utf-8")
    for name, content in (files or {}).items():
        (staging / name).write_bytes(content)
    # Swap in the finished folder only once it is complete.
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.rename(out_dir)
    return counts
