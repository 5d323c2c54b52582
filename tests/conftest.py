"""Settings for every test session (each pytest-xdist worker is its own session)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Synth's record of objects that passed schema validation (floe.manifest_checks._SchemaVerdicts):
# one per session, in its own temporary folder, so no test reads verdicts left by an earlier run
# or writes into the user's ~/.cache. Set at import, before any synth (subprocesses inherit it).
os.environ["FLOE_SCHEMA_CACHE"] = str(Path(tempfile.mkdtemp(prefix="floe-schema-cache-")) / "schema-passed")
