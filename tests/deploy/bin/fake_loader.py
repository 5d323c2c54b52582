"""A stand-in for kind, k3d and minikube: appends its argv (tool name first) as a JSON line to
FAKE_LOADER_LOG and succeeds, or fails with FAKE_LOADER_FAIL's text on stderr (exit 1)."""

import json
import os
import sys
from pathlib import Path

tool = Path(sys.argv[0]).name.removeprefix("fake-")
if len(sys.argv) > 1 and sys.argv[1] == "--as":
    tool, args = sys.argv[2], sys.argv[3:]
else:
    args = sys.argv[1:]
with open(os.environ["FAKE_LOADER_LOG"], "a") as handle:
    handle.write(json.dumps([tool, *args]) + "\n")
if os.environ.get("FAKE_LOADER_FAIL"):
    print(os.environ["FAKE_LOADER_FAIL"], file=sys.stderr)
    sys.exit(1)
print(f"{tool}: loaded {' '.join(args)}")
