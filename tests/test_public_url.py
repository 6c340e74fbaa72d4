"""The export publishes no credentials from crawl URLs; the warehouse keeps the original."""

import json

import pyarrow.parquet as pq
import pytest

from webr_dagster.webr.export import export_dataset, public_url


@pytest.mark.parametrize("url, public", [
    ("https://user:secretpw@host.example/a/b?page=2", "https://host.example/a/b?page=2"),
    ("https://host.example/a?token=abc123&page=2&api_key=k&lang=en",
     "https://host.example/a?page=2&lang=en"),
    ("https://s3.example/f.pdf?X-Amz-Signature=ff&X-Amz-Credential=c&X-Amz-Date=1",
     "https://s3.example/f.pdf?X-Amz-Date=1"),
    ("http://h.example/?PHPSESSID=1&sid=2&session_id=3&q=rivers", "http://h.example/?q=rivers"),
    ("https://h.example/p?keyword=sea&monkey=1&country_code=fr",
     "https://h.example/p?keyword=sea&monkey=1&country_code=fr"),
    ("https://h.example:8443/p#part", "https://h.example:8443/p#part"),
    (None, None),
])
def test_public_url_drops_user_info_and_secret_parameters(url, public):
    assert public_url(url) == public


def test_the_export_scrubs_source_urls(tmp_path):
    secret = "https://user:secretpw@host.example/page?token=abc&page=2"
    rows = [{"prompt_id": "p1", "split": "train_sft",
             "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
             "source_url": secret, "domain": "host.example"}]
    export_dataset(rows, tmp_path / "out", ["source_url", "domain"], lambda counts: "card")
    written = (tmp_path / "out" / "jsonl" / "train_sft.jsonl").read_text()
    assert "secretpw" not in written and "token" not in written
    assert json.loads(written.splitlines()[0])["source_url"] == "https://host.example/page?page=2"
    assert rows[0]["source_url"] == secret  # the caller's rows (the warehouse's) unchanged
    table = pq.read_table(tmp_path / "out" / "data" / "train_sft-00000-of-00001.parquet")
    assert table.column("source_url").to_pylist() == ["https://host.example/page?page=2"]
