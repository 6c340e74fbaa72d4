"""Small PNG histograms of the user and assistant turn lengths, for the dataset card and
the sft_splits materialization."""

from __future__ import annotations

import io
import statistics
from collections.abc import Callable, Sequence

# Tokenising every turn of a million-example set would take minutes for a picture; a
# sample of this many examples (the same ones every time) draws the same shape.
PLOT_SAMPLE = 4000
PLOT_FILES = {"user": "user_tokens.png", "assistant": "assistant_tokens.png"}


def sample_for_plots(prompt_ids: Sequence[str], limit: int = PLOT_SAMPLE) -> list[int]:
    """Positions of the examples to plot: all of them, or the ``limit`` with the smallest
    prompt ids (SHA-256 digests, so an unbiased and repeatable choice)."""
    order = sorted(range(len(prompt_ids)), key=prompt_ids.__getitem__)
    return sorted(order[:limit])


def histogram_png(lengths: Sequence[int], title: str, tokenizer_name: str) -> bytes:
    """A 480 x 220 px histogram with the median marked."""
    # The object API, not pyplot: no global figure state, safe in any thread or process.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.8, 2.2), dpi=100)
    axes = figure.subplots()
    if lengths:
        axes.hist(lengths, bins=30, color="#4C72B0")
        median = statistics.median(lengths)
        axes.axvline(median, color="#DD8452", linewidth=1.5, label=f"median {median:g}")
        axes.legend(loc="upper right", fontsize=7, frameon=False)
    axes.set_title(f"{title} (n = {len(lengths)})", fontsize=9)
    axes.set_xlabel(f"tokens ({tokenizer_name})", fontsize=8)
    axes.set_ylabel("examples", fontsize=8)
    axes.tick_params(labelsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def turn_length_plots(messages: Sequence[list[dict]], prompt_ids: Sequence[str],
                      count_tokens: Callable[[list[str]], list[int]],
                      tokenizer_name: str) -> tuple[dict[str, bytes], dict[str, dict]]:
    """(file name -> PNG, turn -> summary) for the user and assistant turns of a sample
    of the examples."""
    chosen = sample_for_plots(prompt_ids)
    pngs, summary = {}, {}
    for position, turn in enumerate(("user", "assistant")):
        lengths = count_tokens([messages[i][position]["content"] for i in chosen])
        pngs[PLOT_FILES[turn]] = histogram_png(lengths, f"{turn} turn length", tokenizer_name)
        summary[turn] = ({"examples": len(lengths), "median": statistics.median(lengths),
                          "min": min(lengths), "max": max(lengths)} if lengths else
                         {"examples": 0})
    return pngs, summary
