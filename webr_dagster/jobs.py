"""Jobs the sensors and the UI launch: index one crawl source; run one domain; build splits."""

from dagster import AssetSelection, define_asset_job

DOMAIN_ASSETS = AssetSelection.assets(
    "raw_pages", "cleaned_pages", "page_rejections", "author_profiles",
    "instruction_side_pairs", "response_side_pairs", "filtered_pairs",
)

index_crawl_source_job = define_asset_job(
    "index_crawl_source",
    selection=AssetSelection.assets("crawl_index"),
    tags={"webr/writes": "warehouse"},
)
domain_pipeline_job = define_asset_job(
    "webr_domain",
    selection=DOMAIN_ASSETS,
    tags={"webr/writes": "warehouse"},
)
splits_job = define_asset_job(
    "webr_splits", selection=AssetSelection.assets("sft_splits"),
    tags={"webr/writes": "warehouse"},
)
