"""Token counts for the card's length plots, with the built-in model's tokenizer.

The built-in model's GGUF file is on every install and its vocabulary loads in a quarter
of a second with no network, so the counts are the same whichever provider generated the
data (a configured model's own tokenizer may need a download)."""

from __future__ import annotations

import threading

from .local_model import gguf_path

TOKENIZER_NAME = "SmolLM2"

_lock = threading.Lock()
_vocabulary = None


def _load_vocabulary():
    global _vocabulary
    with _lock:
        if _vocabulary is None:
            import llama_cpp
            from llama_cpp._logger import set_verbose

            set_verbose(False)  # llama.cpp logs every metadata key of the file otherwise
            params = llama_cpp.llama_model_default_params()
            params.vocab_only = True  # no weights are read, no context is made
            model = llama_cpp.llama_model_load_from_file(str(gguf_path()).encode(), params)
            if not model:
                raise RuntimeError(f"llama.cpp could not read the vocabulary of {gguf_path()}")
            _vocabulary = (model, llama_cpp.llama_model_get_vocab(model))
        return _vocabulary[1]


def count_tokens(texts: list[str]) -> list[int]:
    import llama_cpp

    vocabulary = _load_vocabulary()
    counts = []
    for text in texts:
        data = text.encode("utf-8")
        # With no output buffer llama.cpp returns minus the number of tokens it needs.
        counts.append(abs(llama_cpp.llama_tokenize(vocabulary, data, len(data), None, 0,
                                                   False, False)))
    return counts
