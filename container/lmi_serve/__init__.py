"""lmi-serve: the container runtime. vLLM's async engine behind SageMaker's HTTP contract."""

__version__ = "0.1.0"
