"""Sizing: from a model's architecture and an instance's GPUs to TP degree, context length and batch size."""
