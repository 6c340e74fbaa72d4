"""The dataset card (the export's README.md): what the data is, how it was made, and what
was dropped on the way, in numbers."""

from __future__ import annotations

from .splits import TEST_SPLIT, TRAIN_SPLIT

SPLITS = (TRAIN_SPLIT, TEST_SPLIT)


def bullets(mapping: dict[str, object]) -> str:
    return "\n".join(f"- {key}: {value}" for key, value in mapping.items()) or "- none"


def table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def dataset_card(split_counts: dict[str, int], sections: list[tuple[str, str]]) -> str:
    """``sections``: (title, markdown body) in the order they appear, after the splits."""
    split_lines = "\n".join(
        f"  - split: {split}\n    path: data/{split}-*.parquet" for split in SPLITS
    )
    sizes = "\n".join(f"- {split}: {split_counts.get(split, 0)} examples" for split in SPLITS)
    body = "\n\n".join(f"## {title}\n{text}" for title, text in sections)
    return (
        "---\nconfigs:\n- config_name: default\n  data_files:\n"
        f"{split_lines}\n"
        "task_categories:\n- text-generation\n---\n\n"
        "# WebR instruction-tuning data\n\n"
        "Synthesised with webr-dagster from web pages by Web Reconstruction (WebR): each "
        "page is either part of the instruction (Web as Instruction) or the basis of the "
        "response (Web as Response). Rows follow the alignment-handbook SFT format "
        "(`prompt_id`, `messages`) plus lineage columns that trace every example to its "
        "source page, model and prompt templates. Splits are page-disjoint and stratified "
        "by web domain; examples that quote a benchmark prompt were removed.\n\n"
        f"## Splits\n{sizes}\n\n{body}\n\n"
        "JSON Lines copies of the splits are in `jsonl/`.\n"
    )
