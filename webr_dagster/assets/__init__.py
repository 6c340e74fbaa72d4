"""Thin Dagster wiring of the method, one module per stage group, in data order."""

from .crawl import crawl_index
from .pages import cleaned_pages_and_rejections, raw_pages
from .profiles import author_profiles
from .pairs import instruction_and_response_pairs
from .filtered import filtered_pairs
from .decontaminated import decontaminated_pairs
from .splits import sft_splits
from .export import sft_export

ALL_ASSETS = [
    crawl_index,
    raw_pages,
    cleaned_pages_and_rejections,
    author_profiles,
    instruction_and_response_pairs,
    filtered_pairs,
    decontaminated_pairs,
    sft_splits,
    sft_export,
]
