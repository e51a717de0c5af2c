"""config.json of a Hugging Face Hub model, over plain HTTPS (the client needs no huggingface_hub)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

from lmi_deploy.errors import ConfigError

DEFAULT_HUB_URL = "https://huggingface.co"
TIMEOUT_S = 5.0


def fetch_config(model_id: str, revision: str | None, token: str | None) -> dict[str, Any]:
    """Download config.json; errors say what failed and how to fix it, never showing the token."""
    hub_url = os.environ.get("HF_ENDPOINT", DEFAULT_HUB_URL).rstrip("/")
    url = f"{hub_url}/{model_id}/resolve/{revision or 'main'}/config.json"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            config: dict[str, Any] = json.loads(response.read())
            return config
    except urllib.error.HTTPError as exc:
        fix = ("pass --hf-token (or set HF_TOKEN) with access to the model"
               if exc.code in (401, 403) else "check the model id and --option revision")
        raise ConfigError(f"the Hub answered {exc.code} for {model_id}'s config.json.", fix=fix) from None
    except (urllib.error.URLError, TimeoutError, OSError, json.JSONDecodeError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConfigError(
            f"{model_id} is not in the built-in catalog and its config.json could not be fetched ({reason}).",
            fix="pass --model-config PATH to a copy of its config.json, or a local model directory as --model",
        ) from None
