"""The user guide's two deployment templates, as users copy them (model id filled in per test)."""

from __future__ import annotations

SEED_MODEL = "mistralai/Mistral-7B-v0.1"


def seed_properties(model: str = SEED_MODEL) -> str:
    """The serving.properties template."""
    return (
        "engine=Python\n"
        "option.tensor_parallel_degree=max\n"
        f"option.model_id={model}\n"
        "option.max_rolling_batch_size=64\n"
        "option.rolling_batch=vllm\n"
    )


def seed_environment(model: str = SEED_MODEL) -> dict[str, str]:
    """The all-environment-variables template."""
    return {
        "SERVING_LOAD_MODELS": "test::Python=/opt/ml/model",
        "OPTION_MODEL_ID": model,
        "OPTION_TENSOR_PARALLEL_DEGREE": "max",
        "OPTION_MAX_ROLLING_BATCH_SIZE": "64",
        "OPTION_ROLLING_BATCH": "vllm",
    }
