"""Reliability tests reuse the end-to-end and client fixtures (real lmi-serve processes, moto's server)."""

from __future__ import annotations

from tests.client.conftest import aws, moto_server, role  # noqa: F401  (fixtures)
from tests.e2e.conftest import tiny_model  # noqa: F401  (fixture)
