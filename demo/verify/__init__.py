"""The in-cluster verifier: ``python -m demo.verify [--trigger] [--timeout S]`` (see report.py)."""
