"""Deployments: plan (pure), then execute against AWS."""
