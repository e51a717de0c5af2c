"""SageMaker GPU instance types for real-time endpoints (facts: ../shared/reference/sagemaker.md)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GpuInstance:
    name: str
    gpus: int
    gpu: str
    gib_per_gpu: float  # usable GPU memory per GPU (what the driver reports, not the marketing figure)
    local_nvme: bool = True  # instance storage: SageMaker refuses VolumeSizeInGB for these

    @property
    def total_gib(self) -> float:
        return self.gpus * self.gib_per_gpu

    @property
    def compute_capability(self) -> float:
        return COMPUTE_CAPABILITY[self.gpu]


#: CUDA compute capability of each GPU (NVIDIA's tables): what decides fp8 and bfloat16 support in vLLM.
COMPUTE_CAPABILITY = {"T4": 7.5, "A10G": 8.6, "L4": 8.9, "L40S": 8.9, "A100": 8.0, "H100": 9.0, "H200": 9.0}


def _family(prefix: str, gpu: str, gib: float, layout: dict[str, int], nvme: bool = True) -> list[GpuInstance]:
    return [GpuInstance(f"ml.{prefix}.{size}", gpus, gpu, gib, nvme) for size, gpus in layout.items()]


_ONE = {"xlarge": 1, "2xlarge": 1, "4xlarge": 1, "8xlarge": 1, "16xlarge": 1}

# Cheapest first within each GPU layout: sizing takes the first instance that fits.
INSTANCES: tuple[GpuInstance, ...] = (
    *_family("g4dn", "T4", 15.0, {**_ONE, "12xlarge": 4}),
    *_family("g5", "A10G", 22.4, {**_ONE, "12xlarge": 4, "24xlarge": 4, "48xlarge": 8}),
    *_family("g6", "L4", 22.4, {**_ONE, "12xlarge": 4, "24xlarge": 4, "48xlarge": 8}),
    *_family("g6e", "L40S", 44.5, {**_ONE, "12xlarge": 4, "24xlarge": 4, "48xlarge": 8}),
    *_family("p4d", "A100", 39.4, {"24xlarge": 8}),
    *_family("p4de", "A100", 79.1, {"24xlarge": 8}),
    *_family("p5", "H100", 79.1, {"4xlarge": 1, "48xlarge": 8}),
    *_family("p5e", "H200", 139.8, {"48xlarge": 8}),
    *_family("p5en", "H200", 139.8, {"48xlarge": 8}),
)

BY_NAME = {instance.name: instance for instance in INSTANCES}

# The order sizing tries them in: least GPU memory first, then fewest GPUs, then the table's order (price).
BY_CAPACITY = tuple(sorted(INSTANCES, key=lambda i: (i.total_gib, i.gpus, INSTANCES.index(i))))
