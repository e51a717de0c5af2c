"""How many GPUs this process may use and their memory, found without importing torch or CUDA."""

from __future__ import annotations

import glob
import re
import subprocess
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


GPU_MEMORY_VARIABLE = "LMI_SERVE_GPU_MEMORY_GIB"  # per GPU; for machines where nvidia-smi cannot tell


def gpu_memory_gib(environ: Mapping[str, str]) -> float | None:
    """Memory of the smallest visible GPU in GiB: LMI_SERVE_GPU_MEMORY_GIB, else nvidia-smi; None if unknown."""
    if environ.get(GPU_MEMORY_VARIABLE, "").strip():
        return float(environ[GPU_MEMORY_VARIABLE])
    try:
        result = subprocess.run(["nvidia-smi", "--query-gpu=index,memory.total", "--format=csv,noheader,nounits"],
                                capture_output=True, text=True, timeout=20, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    sizes = {}
    for line in result.stdout.splitlines():
        index, _, mib = line.partition(",")
        if index.strip().isdigit() and mib.strip().isdigit():
            sizes[index.strip()] = int(mib) / 1024
    visible = environ.get("CUDA_VISIBLE_DEVICES", "").split(",")
    chosen = [sizes[i.strip()] for i in visible if i.strip() in sizes] or list(sizes.values())
    return min(chosen) if chosen else None
