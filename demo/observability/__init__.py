"""Lineage (OpenLineage) and traces (OpenTelemetry) for the demo pipeline; both off unless configured."""
