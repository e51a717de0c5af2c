"""The exceptions lmi-deploy raises on purpose. Each names the offending input and how to fix it."""

from __future__ import annotations


class LmiDeployError(Exception):
    """Base class: an error whose message is meant for the user, one line."""

    exit_code = 1


class ConfigError(LmiDeployError):
    """Invalid configuration: an option, a file, a flag. Raised before anything is created or loaded."""

    exit_code = 2

    def __init__(self, message: str, *, fix: str | None = None, key: str | None = None) -> None:
        self.message = message
        self.fix = fix
        self.key = key
        super().__init__(f"{message} Fix: {fix}." if fix else message)
