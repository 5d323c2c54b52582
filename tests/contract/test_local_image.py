"""The local stand-in for the project image is built by the same steps as the Dockerfile."""

from __future__ import annotations

import re

from tests.support.pods import CUBE_OTEL_BUILD_STEPS, IMAGE_BUILD_STEPS, REPO


def test_dockerfile_has_every_step_the_local_image_mirrors() -> None:
    text = re.sub(r"\\\n\s*", " ", (REPO / "Dockerfile").read_text())
    lines = [" ".join(line.split()) for line in text.splitlines()]
    for step in (*IMAGE_BUILD_STEPS, *CUBE_OTEL_BUILD_STEPS):
        assert " ".join(step.split()) in lines, f"Dockerfile no longer says: {step}"


def test_manifest_is_baked_before_the_user_switch() -> None:
    """Baked as root at build time; at run time the app directory is read-only to uid 10100."""
    text = (REPO / "Dockerfile").read_text()
    assert text.index("ensure_manifest") < text.index("\nUSER ")
