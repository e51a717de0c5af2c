"""How many GPUs this process may use and their memory, found without importing torch or CUDA."""

from __future__ import annotations

import glob
import re
import subprocess
from collections.abc import Mapping

from lmi_deploy.errors import ConfigError

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
    """Memory of the smallest visible GPU in GiB: LMI_SERVE_GPU_MEMORY_GIB, else nvidia-smi; None if unknown
    (no nvidia-smi, or MIG slices, whose memory nvidia-smi's per-GPU query does not give)."""
    raw = environ.get(GPU_MEMORY_VARIABLE, "").strip()
    if raw:
        try:
            value = float(raw)
        except ValueError:
            value = 0.0
        if not 0 < value < 10_000:
            raise ConfigError(f"{GPU_MEMORY_VARIABLE}={raw} is not valid: a positive number of GiB per GPU.",
                              fix=f"set {GPU_MEMORY_VARIABLE} to e.g. 79.6, or unset it to ask nvidia-smi",
                              key=GPU_MEMORY_VARIABLE)
        return value
    visible = [item.strip() for item in environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if item.strip()]
    if any(item.startswith("MIG-") for item in visible):
        return None
    try:
        result = subprocess.run(["nvidia-smi", "--query-gpu=index,uuid,memory.total",
                                 "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=20,
                                check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return smallest_visible_gib(result.stdout, visible)


def smallest_visible_gib(query_output: str, visible: list[str]) -> float | None:
    """From nvidia-smi's `index,uuid,memory.total` CSV (MiB): the smallest of the visible GPUs (named by index
    or UUID in CUDA_VISIBLE_DEVICES), or of all of them when none is named."""
    sizes: dict[str, float] = {}
    for line in query_output.splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) == 3 and fields[2].isdigit():
            sizes[fields[0]] = sizes[fields[1]] = int(fields[2]) / 1024
    chosen = [sizes[item] for item in visible if item in sizes] or list(sizes.values())
    return min(chosen) if chosen else None
