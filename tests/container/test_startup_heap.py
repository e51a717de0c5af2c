"""lmi-serve freezes its start-up heap once the engine is up, as vLLM's own server does."""

from __future__ import annotations

import gc

from lmi_serve.server import freeze_startup_heap


def test_freeze_moves_every_live_object_out_of_collection() -> None:
    kept = [[i] for i in range(10_000)]
    try:
        frozen = freeze_startup_heap()
        assert frozen == gc.get_freeze_count() >= len(kept)
        assert sum(gc.get_count()) < 50  # everything tracked before the call left the young generations
    finally:
        gc.unfreeze()
