"""Method parameters, shared by every asset of a run (visible in the launchpad)."""

from dagster import ConfigurableResource
from pydantic import Field


class WebRSettings(ConfigurableResource):
    seed: int = Field(default=42, description="seeds every per-page random choice")
    sampling_mode: str = Field(default="uniform", description="'uniform' or 'gaussian' k")
    max_input_chars: int | None = Field(
        default=None, description="WEBR_MAX_INPUT_CHARS: cut page text sent to the model at "
        "this many characters (0: no cut); None: sized from the model's context window"
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
    dedup_features: str = Field(
        default="unigram", description="MinHash features of a request: 'unigram' (its set "
        "of words, the method's rule) or '3gram' (word 3-grams: only near-verbatim copies)"
    )
    mix_tolerance: float = Field(default=0.05, description="slack on the 2:2:1:1 final mix")
    test_share: float = Field(default=0.1, description="share of pages in test_sft")
    export_dir: str = "webr_home/exports/webr-sft"
    webr_home: str = Field(default="webr_home", description="WEBR_HOME: the landing "
                           "folder and the registry of crawl sources by partition key")
    templates_path: str | None = Field(
        default=None, description="WEBR_TEMPLATES: a TOML file of prompt templates that "
        "replace the defaults of the same name (None: the defaults)"
    )
    variant: str = Field(
        default="default", description="WEBR_VARIANT: one of the paper's ablations "
        "(webr/variants.py: wi-only, wr-only, all-only, part-only, wr-no-refine, no-profile); "
        "'default' is the method as published"
    )
