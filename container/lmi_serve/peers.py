"""What the API processes of one container share: which of them are ready, and the requests each has in flight.

With several API processes on one port, the kernel gives each new connection to whichever process accepts first,
and keep-alive connections stay there, so one process can hold far more than its share of the requests. The
container's admission limit (max_rolling_batch_size + job_queue_size) therefore counts every process's requests,
and /ping answers 200 only once every process can serve. Shared memory, no locks: each process writes only its
own slot; a reader may see another's count one request late.
"""

from __future__ import annotations

import multiprocessing
from typing import Any


class ApiPeers:
    """Created before the API processes start; handed to each of them when it is spawned."""

    def __init__(self, count: int) -> None:
        context = multiprocessing.get_context("spawn")  # vLLM starts its API processes with spawn
        self.count = count
        self.ready: Any = context.RawArray("b", count)
        self.in_flight: Any = context.RawArray("i", count)

    def slot(self, index: int) -> ApiSlot:
        return ApiSlot(self, index)


class ApiSlot:
    """One API process's view: its own slot to write, everyone's to read."""

    def __init__(self, peers: ApiPeers, index: int) -> None:
        self._peers, self.index = peers, index

    @property
    def count(self) -> int:
        return self._peers.count

    def mark_ready(self) -> None:
        self._peers.ready[self.index] = 1

    def all_ready(self) -> bool:
        return all(self._peers.ready)

    def set_in_flight(self, value: int) -> None:
        self._peers.in_flight[self.index] = value

    def total_in_flight(self) -> int:
        return int(sum(self._peers.in_flight))
