"""litellm, imported lazily and set up once per process: the built-in model registered
when it is used, and configured prices entered in its price map."""

from __future__ import annotations

import os


def import_litellm():
    """litellm takes seconds to import and must not fetch its price map: load it lazily."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    return litellm


def prepare_litellm(local_model_threads: int | None = None,
                    prices: dict[str, tuple[float, float]] | None = None):
    """litellm ready for one LLM resource. Entering a configured price also spares litellm
    a slow failing price lookup per call for models it does not know."""
    litellm = import_litellm()
    if local_model_threads is not None:
        from .local_model import register_local_provider

        register_local_provider(litellm, local_model_threads)
    for model, (input_price, output_price) in (prices or {}).items():
        litellm.register_model({model: {
            "input_cost_per_token": input_price / 1e6,
            "output_cost_per_token": output_price / 1e6,
            "litellm_provider": model.split("/", 1)[0] if "/" in model else "openai",
            "mode": "chat",
        }})
    return litellm
