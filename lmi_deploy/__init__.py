"""lmi-deploy: put an open LLM behind an Amazon SageMaker endpoint."""

__version__ = "0.1.0"
