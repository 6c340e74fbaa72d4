"""Method parameters, shared by every asset of a run (visible in the launchpad)."""

from dagster import ConfigurableResource
from pydantic import Field


class WebRSettings(ConfigurableResource):
    seed: int = Field(default=42, description="seeds every per-page random choice")
    sampling_mode: str = Field(default="uniform", description="'uniform' or 'gaussian' k")
    max_input_chars: int | None = Field(
        default=12000, description="cap on sampled page text sent to the model (None: no cap)"
    )
    pages_per_domain_limit: int | None = Field(default=None, description="cap pages per domain")
    min_words: int = Field(default=20, description="cleaned pages shorter than this are rejected")
    max_page_chars: int = Field(
        default=5_000_000, description="larger raw pages are refused before extraction"
    )
    max_words: int = Field(default=100_000, description="cleaned pages longer than this are rejected")
    languages: list[str] = Field(
        default=["en"], description="keep pages in these languages; empty keeps every language"
    )
    domain_grouping: str = Field(
        default="host", description="'host' or 'registrable' (public suffix list, offline)"
    )
    dedup_threshold: float = 0.7
    dedup_permutations: int = 128
    mix_tolerance: float = Field(default=0.05, description="slack on the 2:2:1:1 final mix")
    test_share: float = Field(default=0.1, description="share of pages in test_sft")
    export_dir: str = "webr_home/exports/webr-sft"
    webr_home: str = Field(default="webr_home", description="WEBR_HOME: the landing "
                           "folder and the registry of crawl sources by partition key")
