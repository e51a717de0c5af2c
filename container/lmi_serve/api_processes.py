"""Several HTTP front-end processes on one port, each a client of every model copy: `vllm serve`'s layout for data
parallelism (its api_server_count defaults to the number of copies). With one front-end process, parsing,
tokenizing, detokenizing and streaming for every copy runs on one core, which caps what more copies add.

Once the model is on disk and its layout asks for several API processes, the main process stops its own HTTP
server and hands over here: vLLM's launcher starts the engines and runs `api_worker` in each API process. Each
serves lmi-serve's whole app (the same routes, /ping, metrics, drain on SIGTERM) on the shared socket; the kernel
hands each new connection to one of them and each sends every request to the least busy copy. They share their
readiness and requests in flight (`lmi_serve.peers`): /ping is 200 once all are ready, and the admission limit
counts every process's requests.
"""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lmi_deploy.errors import LmiDeployError
from lmi_serve.engine import VllmEngine, run_api_processes
from lmi_serve.peers import ApiPeers
from lmi_serve.server import GRACE_PERIOD_S, Runner
from lmi_serve.settings import RuntimeSettings

log = logging.getLogger("lmi_serve")


@dataclass(frozen=True)
class WorkerPayload:
    """What every API process needs beyond vLLM's own arguments."""

    settings: RuntimeSettings
    peers: ApiPeers


def serve_api_processes(settings: RuntimeSettings, engine_args: Mapping[str, Any], count: int) -> int:
    """Run the engines and `count` API processes until SIGTERM (exit 0 once drained) or until an engine or an API
    process fails (exit 1, so SageMaker replaces the instance). An API process that ends cleanly (a SIGTERM sent to
    it alone) leaves the others serving."""
    copies = int(engine_args.get("data_parallel_size") or 1)
    log.info("%d API processes share port %d, each a client of all %d model cop%s; starting vLLM with %s", count,
             settings.server.port, copies, "y" if copies == 1 else "ies", dict(engine_args))
    try:
        # After SIGTERM vLLM gives the API processes (and then the engines) this long to finish their requests
        # before it kills them: more than uvicorn's own grace period in each API process.
        run_api_processes(engine_args, settings.server.host, settings.server.port, count, api_worker,
                          WorkerPayload(settings, ApiPeers(count)), GRACE_PERIOD_S + 10)
    except SystemExit as exc:  # vLLM's SIGTERM handler (no code), once the API processes drained
        if exc.code in (None, 0):
            log.info("lmi-serve: stopped on SIGTERM")
            return 0
        log.error("lmi-serve: vLLM's launcher exited with %s", exc.code)
        return exc.code if isinstance(exc.code, int) else 1
    except LmiDeployError as exc:
        log.error("lmi-serve: %s", exc)
        return exc.exit_code
    except Exception as exc:
        log.error("lmi-serve: %s: %s; exiting so SageMaker replaces this instance", type(exc).__name__, exc)
        return 1
    log.error("lmi-serve: every API process ended without a SIGTERM; exiting so SageMaker replaces this instance")
    return 1


def api_worker(listen_address: str, sock: socket.socket, args: Any, client_config: dict[str, Any]) -> None:
    """One API process (vLLM's launcher starts it): lmi-serve's app on the shared socket, its engine a client of
    the running engines. Exits with the Runner's code."""
    payload: WorkerPayload = args.lmi_payload
    index = int(client_config["client_index"])
    logging.basicConfig(level=logging.INFO,
                        format=f"%(asctime)s %(levelname)s %(name)s[api {index}]: %(message)s", force=True)
    log.info("API process %d of %d on %s", index, payload.peers.count, listen_address)
    runner = Runner(payload.settings, start_engine=lambda: VllmEngine.connect(args, client_config),
                    sockets=[sock], peers=payload.peers.slot(index))
    sys.exit(runner.run())
