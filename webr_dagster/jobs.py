"""Jobs the sensors and the UI launch: index one crawl source; run a range of domains; build
the splits. Runs that write the warehouse queue through the pool in instance.py."""

from dagster import AssetSelection, define_asset_job

DOMAIN_ASSETS = AssetSelection.assets(
    "raw_pages", "cleaned_pages", "page_rejections", "author_profiles",
    "instruction_side_pairs", "response_side_pairs", "filtered_pairs",
)

index_crawl_source_job = define_asset_job(
    "index_crawl_source",
    selection=AssetSelection.assets("crawl_index"),
    description="Index one crawl source (a partition): every record's URL, domain, offset "
    "and status, so domain runs read only their own records.",
)
domain_pipeline_job = define_asset_job(
    "webr_domain",
    selection=DOMAIN_ASSETS,
    description="The WebR method for a range of domain partitions: raw pages -> cleaned "
    "pages -> author profiles -> WI / WR pairs -> filtered pairs.",
)
SPLITS_ASSETS = ["decontaminated_pairs", "sft_splits", "sft_export"]
splits_job = define_asset_job(
    "webr_splits", selection=AssetSelection.assets(*SPLITS_ASSETS),
    description="Decontaminate and deduplicate every domain's kept pairs across the crawl, "
    "mix and split them, and export the set if every quality gate passes.",
)
