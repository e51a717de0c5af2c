"""Reading a running lmi-serve from outside: its /metrics and the memory of its process tree."""

from __future__ import annotations

import contextlib
import time

import httpx
import psutil  # type: ignore[import-untyped]


def metrics(url: str) -> dict[str, float]:
    """Every sample of /metrics, summed over labels except `finished_reason` (kept in the name)."""
    totals: dict[str, float] = {}
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_part, value = line.rsplit(" ", 1)
        name = name_part.split("{", 1)[0]
        if 'finished_reason="' in name_part:
            name += ":" + name_part.split('finished_reason="', 1)[1].split('"', 1)[0]
        totals[name] = totals.get(name, 0.0) + float(value)
    return totals


def idle(url: str) -> bool:
    sample = metrics(url)
    return all(sample.get(name, 0.0) == 0 for name in ("vllm:num_requests_running", "vllm:num_requests_waiting",
                                                          "lmi_requests_in_flight"))


def seconds_until_idle(url: str, limit_s: float) -> float:
    """How long until nothing runs, waits or is in flight; `limit_s` + 1 when that never happens in time."""
    started = time.monotonic()
    while time.monotonic() - started <= limit_s:
        if idle(url):
            return time.monotonic() - started
        time.sleep(0.1)
    return limit_s + 1


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants (lmi-serve, vLLM's engine core, helpers)."""
    root = psutil.Process(pid)
    total = 0
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += int(process.memory_info().rss)
    return total
