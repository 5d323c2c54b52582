"""Dagster orchestration of the demo pipeline (definitions in demo.orchestration.definitions)."""
