"""Container image URIs: AWS's LMI images per region and version, or the user's own (container/)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from lmi_deploy.errors import ConfigError


@cache
def _table() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(resources.files("lmi_deploy").joinpath("data/lmi_images.json").read_text())
    return data


def lmi_image_uri(region: str, version: str | None = None) -> str:
    """`<account>.dkr.ecr.<region>.amazonaws.com/djl-inference:<tag>` for an LMI version (default: newest)."""
    table = _table()
    version = version or table["latest"]
    tag = table["versions"].get(version) or (version if version in table["versions"].values() else None)
    if tag is None:
        raise ConfigError(f"--lmi-version {version} is not an LMI release lmi-deploy knows.",
                          fix="use one of " + ", ".join(table["versions"]) + ", or pass --image-uri")
    account = table["registries"].get(region)
    if account is None:
        raise ConfigError(f"no LMI image is known for region {region}.",
                          fix="pass --image-uri (e.g. your own image built from container/), or another --region")
    domain = table.get("domains", {}).get(region, "amazonaws.com")
    return f"{account}.dkr.ecr.{region}.{domain}/{table['repository']}:{tag}"


def check_image_uri(uri: str) -> str:
    if "/" not in uri or (":" not in uri.rsplit("/", 1)[-1] and "@" not in uri):
        raise ConfigError(f"--image-uri {uri} is not an image reference with a tag.",
                          fix="pass REGISTRY/REPOSITORY:TAG, e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com/"
                              "lmi-serve:latest (container/build_and_push.sh prints it)")
    return uri
