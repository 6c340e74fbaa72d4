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
    # Decontamination (webr/decontaminate.py): every example against benchmark prompts.
    benchmarks: list[str] = Field(
        default=["alpaca_eval", "arena_hard_v2", "ifeval"], description="bundled benchmark "
        "names and prompt files (WEBR_DECONTAMINATE=path.jsonl,... adds files)"
    )
    decontam_long_n: int = Field(default=13, description="WEBR_DECONTAM_LONG_N: one shared "
                                 "word n-gram of this length is a hit")
    decontam_short_n: int = Field(default=8, description="WEBR_DECONTAM_SHORT_N: the "
                                  "shorter n-gram of the coverage pass")
    decontam_short_coverage: float = Field(
        default=0.5, description="WEBR_DECONTAM_SHORT_COVERAGE: share of a prompt's short "
        "n-grams an example must contain to be a hit"
    )
    decontam_min_prompt_words: int = Field(
        default=6, description="WEBR_DECONTAM_MIN_PROMPT_WORDS: shorter prompts are not "
        "checked (too common to tell a quote from chance)"
    )
    # Quality gates (webr/quality_gates.py): blocking checks between sft_splits and the export.
    scope_tolerance: float = Field(
        default=0.1, description="WEBR_SCOPE_TOLERANCE: slack on all : part = 1 : 1 per role"
    )
    max_drop_share: float = Field(
        default=0.5, description="WEBR_MAX_DROP_SHARE: the most pairs one drop reason may take"
    )
    gate_min_pairs: int = Field(
        default=20, description="WEBR_GATE_MIN_PAIRS: fewer pairs are too few to judge a "
        "drop share"
    )
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
