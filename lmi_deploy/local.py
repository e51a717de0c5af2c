"""Local endpoints: the container runtime (`lmi-serve`) as a process on this machine, with exactly the
environment a SageMaker endpoint gets, registered under its endpoint name. No Docker.

The registry is one JSON file per endpoint under $LMI_DEPLOY_HOME/local (default ~/.lmi-deploy/local).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from lmi_deploy.deploy.plan import REDACTED, DeploymentPlan
from lmi_deploy.errors import ConfigError, LmiDeployError

Progress = Callable[[str, float], None]
STARTUP_LIMIT_S = 900


class LocalEndpointError(LmiDeployError):
    """A local endpoint failed to start or to stop; exit code 1."""


@dataclass(frozen=True)
class LocalEndpoint:
    name: str
    pid: int
    port: int
    log: str
    model: str
    environment: dict[str, str]  # secrets shown as ***
    created: float

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def home(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    root = Path(environ.get("LMI_DEPLOY_HOME", Path.home() / ".lmi-deploy"))
    return root / "local"


def _record(name: str) -> Path:
    return home() / f"{name}.json"


def find(name: str) -> LocalEndpoint | None:
    path = _record(name)
    if not path.is_file():
        return None
    return LocalEndpoint(**json.loads(path.read_text()))


def all_endpoints() -> list[LocalEndpoint]:
    folder = home()
    return [LocalEndpoint(**json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))] if folder.is_dir() \
        else []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_command() -> list[str]:
    """The runtime to start: $LMI_SERVE_COMMAND (a client-only environment can point at a runtime installed
    elsewhere), else the lmi-serve next to this Python."""
    override = os.environ.get("LMI_SERVE_COMMAND")
    if override:
        return [*override.split(), "serve"]
    beside = Path(sys.executable).with_name("lmi-serve")
    return [str(beside), "serve"] if beside.exists() else [sys.executable, "-m", "lmi_serve.cli", "serve"]


def start(plan: DeploymentPlan, port: int | None, progress: Progress, extra_env: Mapping[str, str] | None = None
          ) -> LocalEndpoint:
    """Start lmi-serve with the plan's container environment and wait until /ping answers 200."""
    existing = find(plan.endpoint_name)
    if existing is not None and _alive(existing.pid):
        raise ConfigError(f"local endpoint {plan.endpoint_name} is already running on port {existing.port}.",
                          fix=f"`lmi-deploy delete {plan.endpoint_name}` first, or pass another --name")
    port = port or free_port()
    folder = home()
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"{plan.endpoint_name}.log"
    environment = {**os.environ, **plan.environment, **plan.secrets, **(extra_env or {}),
                   "SAGEMAKER_BIND_TO_PORT": str(port), "LMI_ENDPOINT_NAME": plan.endpoint_name}
    with log.open("wb") as out:
        process = subprocess.Popen(serve_command(), env=environment, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    endpoint = LocalEndpoint(plan.endpoint_name, process.pid, port, str(log),
                             plan.environment.get("OPTION_MODEL_ID", ""),
                             {**plan.environment, **dict.fromkeys(plan.secrets, REDACTED)}, time.time())
    _record(plan.endpoint_name).write_text(json.dumps(asdict(endpoint), indent=1))
    try:
        _wait_ready(endpoint, process, progress)
    except BaseException:
        stop(endpoint.name)
        raise
    return endpoint


def _wait_ready(endpoint: LocalEndpoint, process: subprocess.Popen[bytes], progress: Progress) -> None:
    started = time.monotonic()
    while True:
        elapsed = time.monotonic() - started
        if process.poll() is not None:
            tail = "\n".join(read_log(endpoint)[-15:])
            raise LocalEndpointError(f"local endpoint {endpoint.name} exited with code {process.returncode} while "
                                     f"starting. Last log lines:\n{tail}")
        status = status_of(endpoint)
        progress(status, elapsed)
        if status == "InService":
            return
        if elapsed > STARTUP_LIMIT_S:
            raise LocalEndpointError(f"local endpoint {endpoint.name} not ready after {STARTUP_LIMIT_S} s; see "
                                     f"{endpoint.log}")
        time.sleep(0.5)


def status_of(endpoint: LocalEndpoint) -> str:
    """InService when /ping answers 200, Creating while it answers otherwise, Failed once the process is gone."""
    if not _alive(endpoint.pid):
        return "Failed"
    try:
        with urllib.request.urlopen(endpoint.url + "/ping", timeout=2) as response:
            return "InService" if response.status == 200 else "Creating"
    except (urllib.error.URLError, OSError):
        return "Creating"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of this process counts as gone
        finished, _ = os.waitpid(pid, os.WNOHANG)
        return finished == 0
    except ChildProcessError:
        return True


def read_log(endpoint: LocalEndpoint) -> list[str]:
    path = Path(endpoint.log)
    return path.read_text(errors="replace").splitlines() if path.is_file() else []


def follow_log(endpoint: LocalEndpoint, poll_s: float = 0.5, polls: int | None = None) -> Iterator[str]:
    """Log lines so far, then new ones until the process ends (or `polls` rounds pass)."""
    seen, count = 0, 0
    while True:
        lines = read_log(endpoint)
        yield from lines[seen:]
        seen = len(lines)
        count += 1
        if not _alive(endpoint.pid) or (polls is not None and count >= polls):
            return
        time.sleep(poll_s)


def stop(name: str, grace_s: float = 60.0) -> bool:
    """SIGTERM the endpoint's process group (in-flight requests finish), SIGKILL after the grace period."""
    endpoint = find(name)
    if endpoint is None:
        return False
    if _alive(endpoint.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(endpoint.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while _alive(endpoint.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(endpoint.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(endpoint.pid, signal.SIGKILL)
    _record(name).unlink(missing_ok=True)
    return True
