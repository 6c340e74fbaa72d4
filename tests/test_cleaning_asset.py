"""The cleaning multi-asset, invoked as Dagster runs it: every reason a page is not kept
lands in page_rejections with its detail, and only the good page reaches cleaned_pages."""

from dagster import DagsterInstance, build_asset_context
from dagster_duckdb import DuckDBResource

from tests.support.texts import ENGLISH, FRENCH
from webr_dagster.assets.pages import cleaned_pages_and_rejections
from webr_dagster.assets.tables import conform
from webr_dagster.resources.settings import WebRSettings

BULLETS = "\n".join(f"- item number {i} of the list with the words to be kept" for i in range(10))

# page id -> (content type, body, the reason it must be rejected for; None = kept)
PAGES = {
    "kept": ("text", ENGLISH, None),
    "copy": ("text", ENGLISH.upper(), "duplicate"),  # same text as "kept", other case
    "huge": ("text", ENGLISH * 100, "too_large"),
    "no-text": ("html", "<html><body><script>var x = 1;</script></body></html>",
                "empty_extraction"),
    "french": ("text", FRENCH, "language"),
    "short": ("text", "Too short to keep.", "too_short"),
    "long": ("text", " ".join([ENGLISH] * 4), "too_long"),
    "bullets": ("text", BULLETS, "low_quality"),
}


def test_every_rejection_reason_lands_in_page_rejections(tmp_path):
    raw = conform([
        {"page_id": page, "domain": "a.example", "url": f"https://a.example/{page}",
         "crawl_file": "/crawl/a.jsonl", "record_offset": offset, "content_type": kind,
         "body": body}
        for offset, (page, (kind, body, _)) in enumerate(PAGES.items())
    ], "raw_pages")
    settings = WebRSettings(max_page_chars=10_000, max_words=200)
    warehouse = DuckDBResource(database=str(tmp_path / "warehouse.duckdb"))
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("domain", ["a.example"])
    with build_asset_context(partition_key="a.example", instance=instance) as context:
        cleaned, rejections = cleaned_pages_and_rejections(
            context, raw_pages=raw, settings=settings, warehouse=warehouse)
        counted = {**rejections.metadata,
                   **(context.get_output_metadata("page_rejections") or {})}["reasons"]

    assert list(cleaned.value["page_id"]) == ["kept"]
    reasons = dict(zip(rejections.value["page_id"], rejections.value["reason"]))
    assert reasons == {page: reason for page, (_, _, reason) in PAGES.items() if reason}
    assert rejections.value["detail"].str.len().gt(0).all()
    assert (rejections.value["stage"] == "clean").all()
    assert "kept" in rejections.value.set_index("page_id").loc["copy", "detail"]
    assert counted.data == {reason: 1 for reason in reasons.values()}  # in the UI too
    # plain text has no declared language: the language is identified from the text
    assert rejections.value.set_index("page_id").loc["french", "detail"].startswith(
        "identified fr (score 0.99)")
    (kept,) = cleaned.value.to_dict("records")
    assert kept["language"] == "en" and kept["language_score"] > 0.9
    assert str(cleaned.value["language_score"].dtype) == "Float64"
