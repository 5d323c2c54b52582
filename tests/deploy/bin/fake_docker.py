"""A stand-in docker: ``image inspect`` succeeds for the images in FAKE_DOCKER_IMAGES (comma-separated);
``version`` answers unless FAKE_DOCKER_ENGINE_DOWN is set."""

import os
import sys

args = sys.argv[1:]
if args[:1] == ["version"]:  # the preflight's "engine answers" check
    if os.environ.get("FAKE_DOCKER_ENGINE_DOWN"):
        print("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?", file=sys.stderr)
        sys.exit(1)
    print("28.2.2")
    sys.exit(0)
if args[:2] == ["image", "inspect"]:
    sys.exit(0 if args[-1] in os.environ.get("FAKE_DOCKER_IMAGES", "").split(",") else 1)
print(f"fake docker: unexpected {args}", file=sys.stderr)
sys.exit(1)
