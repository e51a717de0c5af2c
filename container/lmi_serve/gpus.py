"""How many GPUs this process may use, found without importing torch or CUDA."""

from __future__ import annotations

import glob
import re
from collections.abc import Mapping

_DEVICE_FILE = re.compile(r"/dev/nvidia\d+$")
_NO_DEVICES = {"", "-1", "none", "void", "nodevfiles"}


def physical_gpu_count() -> int:
    """NVIDIA device files present (/dev/nvidia0, /dev/nvidia1, ...): what the container was given."""
    return sum(1 for path in glob.glob("/dev/nvidia*") if _DEVICE_FILE.match(path))


def visible_gpu_count(environ: Mapping[str, str], physical: int | None = None) -> int:
    """GPUs visible to CUDA: CUDA_VISIBLE_DEVICES (or NVIDIA_VISIBLE_DEVICES) when set, else the devices."""
    present = physical_gpu_count() if physical is None else physical
    for variable in ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES"):
        if variable not in environ:
            continue
        value = environ[variable].strip()
        if value.lower() in _NO_DEVICES:
            return 0
        if value.lower() == "all":
            return present
        return len([item for item in value.split(",") if item.strip()])
    return present
