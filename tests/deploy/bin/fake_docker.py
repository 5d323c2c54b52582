"""A stand-in docker: ``image inspect`` succeeds for the images in FAKE_DOCKER_IMAGES (comma-separated)."""

import os
import sys

args = sys.argv[1:]
if args[:2] == ["image", "inspect"]:
    sys.exit(0 if args[-1] in os.environ.get("FAKE_DOCKER_IMAGES", "").split(",") else 1)
print(f"fake docker: unexpected {args}", file=sys.stderr)
sys.exit(1)
