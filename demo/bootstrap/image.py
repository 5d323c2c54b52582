"""Facts about the project image (Dockerfile) that the Kubernetes constructs must match.

The Dockerfile creates its user with these ids (tests/bootstrap/test_dockerfile.py checks that they
agree); pods that run the image set ``runAsUser``/``runAsGroup``/``fsGroup`` to them, and mount an
emptyDir at :data:`WRITABLE_DIR`: the image writes nowhere else (read-only root filesystem).
"""

from __future__ import annotations

#: uid and gid of the image's non-root user `floe`.
IMAGE_UID = 10100
IMAGE_GID = 10100

#: Where the project (with the demo package and the dbt project) lives in the image.
APP_DIR = "/opt/floe/app"

#: DuckDB extensions installed at build time from the duckdb-extension-* wheels, laid out as
#: DuckDB's extension_directory (`v<version>/<platform>/<name>.duckdb_extension`), so a Cube init
#: container can copy the folder into Cube's own DuckDB of the same version.
DUCKDB_EXTENSION_DIR = "/opt/floe/duckdb-extensions"

#: The OpenTelemetry Node SDK for Cube (demo/cube/otel: tracing.js, package.json and the lock's
#: production node_modules, installed at build time), copied by the Cube pods' init container into
#: an emptyDir that Cube preloads tracing.js from (constructs/cube.py).
CUBE_OTEL_DIR = "/opt/floe/cube-otel"

#: The only writable path at run time (an emptyDir in the pod).
WRITABLE_DIR = "/tmp"
